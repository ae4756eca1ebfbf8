"""Claude Code (npm ``@anthropic-ai/claude-code``, pinned by the Makefile) against /v1/messages.

``claude -p`` runs non-interactively with ``ANTHROPIC_BASE_URL`` pointed at the server and its
non-essential traffic off, as a user would set it up, and no model named: the entry's
``claude-*`` alias answers the models Claude Code asks for. Its request carries about 12,000 tokens
of system prompt and tools (streamed, with adaptive thinking, context management and a
mid-conversation system turn); the conftest's long-context entry holds them.
"""

from __future__ import annotations

import collections
import os
import subprocess
from pathlib import Path

import pytest

from tests.server.clients.conftest import RequestLog, client_binary
from tests.server.ops.test_metrics import scrape

CLAUDE = client_binary("claude", "MODELPORT_CLAUDE")

pytestmark = pytest.mark.skipif(not CLAUDE, reason="Claude Code is not installed (make install puts it in .tools/node)")


def test_a_turn_on_the_real_model_ends_with_its_answer(agent_url: str, agent_log: RequestLog, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        HOME=str(tmp_path),  # its settings and sessions, apart from the user's
        ANTHROPIC_BASE_URL=agent_url.removesuffix("/v1"),
        ANTHROPIC_AUTH_TOKEN="local",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    before, answered = len(agent_log.posts), len(agent_log.statuses)
    done = subprocess.run(
        [str(CLAUDE), "-p", "Say hello in one short sentence."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        stdin=subprocess.DEVNULL,
    )
    posts, statuses = agent_log.posts[before:], agent_log.statuses[answered:]
    assert [p for p, _ in posts if p == "/v1/messages"], posts
    # No model named: Claude Code asked for its default models, which the entry's alias answers.
    served = scrape(agent_url.removesuffix("/v1"))
    assert any("model_alias=claude-*" in k and "model_name=smollm2-long" in k for k in served), served
    assert set(statuses) == {200}, statuses  # nothing refused, nothing failed
    # Each request once: a client that got an error, or gave up on a silent stream, resends the
    # same body. (Claude Code's own continuations differ: they add a turn.)
    assert max(collections.Counter(posts).values()) == 1, posts
    if len(posts) > 1 and "output token maximum" in done.stdout:
        pytest.xfail(
            "SmolLM2-135M, reading 12,000 tokens through YaRN scaling, did not end its answer within the "
            "entry's cap; Claude Code asked it to continue three times and gave up (the model's limit)"
        )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert done.stdout.strip(), done.stderr[-3000:]
    assert "API Error" not in done.stdout and "<tool_call>" not in done.stdout

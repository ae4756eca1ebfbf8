"""Graceful shutdown of a real ``modelport serve`` process: drain, cut with an error event, exit 0."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from tests.loopback import ServeProcess, serve_process

# SmolLM2's end-of-text and end-of-turn tokens, banned so that the long answer really runs long.
NO_EOS = {"0": -100, "2": -100}


def _stream(base: str, max_tokens: int, events: list[Any], started: threading.Event) -> None:
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}],
        "max_tokens": max_tokens,
        "stream": True,
        "logit_bias": NO_EOS if max_tokens > 100 else None,
    }
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=120) as response:
        events.append(response.status_code)
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
                started.set()


def _start(server: ServeProcess, max_tokens: int) -> tuple[threading.Thread, list[Any], threading.Event]:
    events: list[Any] = []
    started = threading.Event()
    thread = threading.Thread(target=_stream, args=(server.base, max_tokens, events, started), daemon=True)
    thread.start()
    assert started.wait(60), "the stream never began"
    return thread, events, started


def _text(events: list[Any]) -> str:
    chunks = [e for e in events if isinstance(e, dict) and "choices" in e]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.fixture
def server() -> Any:
    with serve_process("--drain-timeout", "3", "--log-level", "info") as running:
        yield running


def test_sigterm_drains_then_cuts_with_an_error_event_and_exits_0(server: ServeProcess) -> None:
    long_thread, long_events, _ = _start(server, 2000)
    short_thread, short_events, _ = _start(server, 12)
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.3)
    refused = httpx.post(
        f"{server.base}/v1/chat/completions",
        json={"model": "smollm2-135m", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert refused.json()["error"]["code"] == "server_shutting_down"
    assert httpx.get(f"{server.base}/health/ready", timeout=10).status_code == 503

    short_thread.join(30)
    assert short_events[-1] == "[DONE]"
    finishes = [c["choices"][0]["finish_reason"] for c in short_events if isinstance(c, dict) and c.get("choices")]
    assert finishes[-1] in ("stop", "length") and not any("error" in e for e in short_events if isinstance(e, dict))

    long_thread.join(30)
    assert server.finish(timeout=15) == 0
    elapsed = time.monotonic() - signalled
    assert elapsed < 3 + 5, elapsed
    last = [e for e in long_events if e != "[DONE]"][-1]
    assert last["error"]["code"] == "server_shutting_down", last
    assert len(_text(long_events)) > 20  # it was generating when the signal came
    assert "Traceback" not in server.output and "CancelledError" not in server.output
    # The cut stream's access line counts what it used: its prompt, and the tokens it sent.
    cut = next(li for li in server.output.splitlines() if "status=503" in li and "completion_tokens=" in li)
    counts = dict(part.split("=", 1) for part in cut.split() if part.endswith(tuple("0123456789")) and "=" in part)
    sent = sum(
        1 for e in long_events if isinstance(e, dict) and e.get("choices") and e["choices"][0]["delta"].get("content")
    )
    assert int(counts["prompt_tokens"]) > 10, cut
    assert int(counts["completion_tokens"]) >= sent > 20, (cut, sent)


def test_a_second_signal_cuts_at_once_and_still_exits_cleanly(server: ServeProcess) -> None:
    thread, events, _ = _start(server, 2000)
    server.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    thread.join(30)
    assert server.finish(timeout=15) == 0
    assert time.monotonic() - signalled < 3  # well before the 3 s drain timeout would end
    assert events[-1] == "[DONE]"
    assert [e for e in events if e != "[DONE]"][-1]["error"]["code"] == "server_shutting_down"
    assert "Traceback" not in server.output and "CancelledError" not in server.output

"""Request ids and the access log: one line per request, tied to the id the client sees."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from modelport.server import create_app
from modelport.server.ops.logs import ACCESS_LOGGER, JsonFormatter, RequestIdFilter
from modelport.workers import ModelRegistry
from tests.loopback import serve


@pytest.fixture(scope="module")
def url(server_registry: ModelRegistry) -> Iterator[str]:
    with serve(create_app(server_registry, api_keys=["sk-tracked"])) as root:
        yield root


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_the_clients_request_id_is_echoed_and_ends_the_completion_id(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    headers = {"Authorization": "Bearer sk-tracked", "X-Request-Id": "trace-42.a"}
    body = {"model": "fake", "messages": [{"role": "user", "content": "hello"}]}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
    assert response.headers["x-request-id"] == "trace-42.a"
    assert response.json()["id"] == "chatcmpl-trace-42.a"
    (line,) = [r for r in access_lines(caplog) if getattr(r, "request_id", "") == "trace-42.a"]
    fields = line.access  # type: ignore[attr-defined]
    assert fields["status"] == 200 and fields["model"] == "fake" and fields["key"] == "key-1"
    usage = response.json()["usage"]
    assert fields["prompt_tokens"] == usage["prompt_tokens"]
    assert fields["completion_tokens"] == usage["completion_tokens"]
    assert fields["finish_reason"] == "stop" and fields["ttft_ms"] >= 0 and fields["total_ms"] >= fields["ttft_ms"]
    assert "sk-tracked" not in line.getMessage()


def test_every_request_gets_an_id_and_one_access_line(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    auth = {"Authorization": "Bearer sk-tracked"}
    responses = [
        httpx.get(f"{url}/v1/models", headers=auth),
        httpx.post(f"{url}/v1/chat/completions", json={"model": "fake"}, headers=auth),  # 400
        httpx.post(f"{url}/v1/embeddings", json={"model": "minilm-l6", "input": "x"}),  # 401
        httpx.post(
            f"{url}/v1/chat/completions", headers={**auth, "X-Request-Id": "bad id <script>" + "x" * 200}, json={}
        ),
        httpx.get(f"{url}/health"),
    ]
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)  # fresh ids; an odd one is replaced
    lines = access_lines(caplog)
    assert sorted(getattr(r, "request_id", "") for r in lines) == sorted(ids)
    statuses = {r.request_id: r.access["status"] for r in lines}  # type: ignore[attr-defined]
    assert [statuses[i] for i in ids] == [200, 400, 401, 400, 200]


def test_a_streamed_answer_is_logged_when_it_ends(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = {"model": "fake", "messages": [{"role": "user", "content": "a b c"}], "stream": True}
    headers = {"Authorization": "Bearer sk-tracked", "X-Request-Id": "streamed-1"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as response:
        chunks = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert all(json.loads(c.removeprefix("data: "))["id"] == "chatcmpl-streamed-1" for c in chunks)
    # The line is written as the server finishes the response, which may be just after the
    # client read its last byte: on a loaded machine, wait for it a little.
    deadline = time.monotonic() + 5
    while not (found := [r for r in access_lines(caplog) if getattr(r, "request_id", "") == "streamed-1"]):
        assert time.monotonic() < deadline, "no access line for the stream"
        time.sleep(0.02)
    (line,) = found
    assert line.access["finish_reason"] == "stop" and line.access["completion_tokens"] > 0  # type: ignore[attr-defined]


def test_json_lines_carry_the_request_id_and_the_access_fields() -> None:
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "POST %s", ("/v1/x",), None)
    record.access = {"status": 200, "model": "m", "key": "alice"}
    RequestIdFilter().filter(record)
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "POST /v1/x" and out["request_id"] == "-"
    assert out["status"] == 200 and out["key"] == "alice" and out["logger"] == ACCESS_LOGGER


def test_log_lines_from_the_generating_thread_carry_the_request_id(url: str) -> None:
    from modelport.server.ops.tracking import REQUEST_ID

    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(REQUEST_ID.get())  # read where the line is logged: the worker's thread

    logger = logging.getLogger("modelport.tool_choice")
    handler, level = Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        body = {
            "model": "smollm2-135m",
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [tool],
            "max_tokens": 24,
        }
        headers = {"Authorization": "Bearer sk-tracked", "X-Request-Id": "from-thread-7"}
        assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120).status_code == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert seen and set(seen) == {"from-thread-7"}

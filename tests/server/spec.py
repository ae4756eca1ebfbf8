"""Validation against the official OpenAI spec (the patched copy in ../shared/reference)."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

# The shared reference when this checkout has it, else the copy kept with the tests.
SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "openai-openapi.yaml"
VENDORED = Path(__file__).resolve().parents[1] / "data" / "openai-openapi.yaml.gz"


@functools.cache
def _components() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if SHARED.is_file():
        text = SHARED.read_text(encoding="utf-8")
    else:
        text = gzip.decompress(VENDORED.read_bytes()).decode("utf-8")
    spec = yaml.load(text, Loader=loader)
    return {"components": spec["components"]}


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", **_components()})


def problems(schema: str, data: Any) -> list[str]:
    """Every way ``data`` breaks ``schema``, as readable lines (empty when valid)."""
    return [
        f"{schema}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(data)
    ]


def assert_valid(schema: str, data: Any) -> None:
    found = problems(schema, data)
    assert not found, "\n".join(found[:5]) + f"\n{json.dumps(data)[:500]}"


# Which schema describes a response, by path and by whether it is streamed.
JSON_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionResponse",
    "/v1/completions": "CreateCompletionResponse",
    "/v1/embeddings": "CreateEmbeddingResponse",
    "/v1/models": "ListModelsResponse",
}
STREAM_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionStreamResponse",
    "/v1/completions": "CreateCompletionResponse",
}


@functools.cache
def _anthropic_types() -> dict[str, Any]:
    from anthropic import types
    from pydantic import TypeAdapter

    return {
        "message": TypeAdapter(types.Message),
        "event": TypeAdapter(types.RawMessageStreamEvent),
        "count": TypeAdapter(types.MessageTokensCount),
        "error": TypeAdapter(types.ErrorResponse),
    }


def anthropic_problems(path: str, status: int, streamed: bool, data: Any) -> list[str]:
    """How an answer of Anthropic's API breaks the ``anthropic`` SDK's types, parsed strictly."""
    from pydantic import ValidationError

    if streamed and data.get("type") == "ping":
        return [] if data == {"type": "ping"} else [f"{path}: a ping with fields: {data}"]
    failed = status >= 400 or data.get("type") == "error"
    kind = "error" if failed else "event" if streamed else "count" if path.endswith("/count_tokens") else "message"
    try:
        _anthropic_types()[kind].validate_python(data, strict=True)
    except ValidationError as error:
        return [f"{path} {kind}: {e['loc']}: {e['msg']}" for e in error.errors()]
    return []


def schema_for(path: str, status: int, streamed: bool, method: str = "POST") -> str | None:
    if status >= 400:
        return "ErrorResponse"
    if path.startswith("/v1/models/"):
        return "Model"
    if path == "/v1/responses":
        return "ResponseStreamEvent" if streamed else "Response"
    if path == "/v1/responses/input_tokens":
        return "TokenCountsResource"
    if path.startswith("/v1/responses/"):
        if path.endswith("/input_items"):
            return "ResponseItemList"
        return "Response" if method == "GET" else None
    return (STREAM_SCHEMAS if streamed else JSON_SCHEMAS).get(path)


class SpecCheck:
    """ASGI middleware for the tests: validates every response body and SSE chunk the app sends."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.checked = 0
        self.failures: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"status": 200, "sse": False, "buffer": b""}

        async def spy(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = dict(message.get("headers") or [])
                state["sse"] = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            elif message["type"] == "http.response.body":
                state["buffer"] += message.get("body", b"")
                if state["sse"]:
                    *events, state["buffer"] = state["buffer"].split(b"\n\n")
                    for event in events:
                        self._check_event(scope["path"], event)
                elif not message.get("more_body"):
                    self._check(scope["path"], state["status"], False, state["buffer"], scope["method"])
            await send(message)

        await self.app(scope, receive, spy)

    def _check_event(self, path: str, event: bytes) -> None:
        data = b"\n".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if not data or data == b"[DONE]":
            return
        body = json.loads(data)
        if path == "/v1/completions" and "choices" in body:
            # A gap in the spec: it reuses the whole-response schema for the legacy stream, whose
            # chunks (as OpenAI sends them) carry finish_reason null until the last one.
            for choice in body["choices"]:
                if choice.get("finish_reason", "") is None:
                    choice["finish_reason"] = "stop"
            data = json.dumps(body).encode()
        if path.startswith("/v1/messages"):
            self._check(path, 200, True, data)
            return
        failed = "error" in body and body.get("type") != "error"  # Responses' error event is an event
        self._check(path, 400 if failed else 200, True, data)

    def _check(self, path: str, status: int, streamed: bool, raw: bytes, method: str = "POST") -> None:
        if path.startswith("/v1/messages"):  # Anthropic's API: checked against its SDK's types
            self.checked += 1
            self.failures += anthropic_problems(path, status, streamed, json.loads(raw))
            return
        schema = schema_for(path, status, streamed, method)
        if schema is None:
            return
        try:
            data = json.loads(raw)
        except ValueError:
            self.failures.append(f"{path}: not JSON: {raw[:200]!r}")
            return
        self.checked += 1
        self.failures += [f"{path} {p}" for p in problems(schema, data)]

"""DashScope's native API (``input`` / ``parameters`` / ``output``), as a client speaks it.

Answers are rewritten into OpenAI's chunk shape so that one decoder folds both
APIs into core events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from modelport.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ModelNotFoundError,
    ModelPortError,
    RateLimitedError,
    TimeoutError,
    UpstreamUnavailableError,
)
from modelport.core.events import StreamEvent
from modelport.core.messages import content_text, message_to_dict
from modelport.core.request import ChatRequest
from modelport.core.rerank import RerankRequest
from modelport.workers.remote.http import HttpStatusError
from modelport.workers.remote.openai_format import ChunkDecoder, request_options
from modelport.workers.remote.rerank_format import rerank_results
from modelport.workers.remote.sse import SSEDecoder

__all__ = [
    "GENERATION_PATH",
    "REGIONS",
    "DashScopeDecoder",
    "chat_body",
    "decode_embeddings",
    "decode_text_rerank",
    "text_rerank_body",
    "embedding_body",
    "RERANK_PATH",
    "map_dashscope_error",
    "to_openai_chunk",
]

REGIONS: Mapping[str, str] = {
    "cn": "https://dashscope.aliyuncs.com/api/v1",
    "intl": "https://dashscope-intl.aliyuncs.com/api/v1",
}
GENERATION_PATH = "services/aigc/text-generation/generation"
EMBEDDING_PATH = "services/embeddings/text-embedding/text-embedding"
RERANK_PATH = "services/rerank/text-rerank/text-rerank"


def _message(message: Any) -> dict[str, Any]:
    wire = message_to_dict(message)
    # The text-generation endpoint takes plain string content.
    if isinstance(wire.get("content"), list):
        wire["content"] = content_text(message.content)
    if wire.get("content") is None:
        wire["content"] = ""
    return wire


def chat_body(request: ChatRequest, *, model: str, stream: bool) -> dict[str, Any]:
    """The native generation body; ``request.extra`` lands in ``parameters``."""
    parameters: dict[str, Any] = {"result_format": "message", **request_options(request)}
    if stream:
        # Each event then carries only the new text, not everything so far.
        parameters["incremental_output"] = True
    parameters.update(request.extra)
    return {"model": model, "input": {"messages": [_message(m) for m in request.messages]}, "parameters": parameters}


def map_dashscope_error(failure: HttpStatusError) -> ModelPortError:
    """Maps a DashScope error (``{"code", "message", "request_id"}``) to a core error."""
    body = failure.body if isinstance(failure.body, Mapping) else {}
    code = str(body.get("code") or "")
    message = str(body.get("message") or failure.text[:300] or f"HTTP {failure.status_code}")
    if body.get("request_id"):
        message += f" (request_id {body['request_id']})"
    status = failure.status_code
    if code == "DataInspectionFailed" or code.startswith("DataInspection"):
        return ContentFilteredError(message)
    if code in ("InvalidApiKey", "AccessDenied", "Arrearage") or code.startswith("AccessDenied") or status == 401:
        return AuthenticationError(message)
    if code.startswith("Throttling") or status == 429:
        return RateLimitedError(message)
    if code in ("ModelNotFound", "Model.NotFound", "ModelNotExist") or "model not exist" in message.lower():
        return ModelNotFoundError(str(body.get("model") or "?"), ())
    if code in ("RequestTimeOut", "InternalError.Timeout") or status in (408, 504):
        return TimeoutError(message)
    if status == 403:
        return AuthenticationError(message)
    if 400 <= status < 500:
        return BadRequestError(message, param="parameters" if code == "InvalidParameter" else None, code=code or None)
    return UpstreamUnavailableError(f"DashScope answered HTTP {status} {code}: {message}", status_code=502)


def _usage(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, Mapping):
        return None
    out: dict[str, Any] = {
        "prompt_tokens": data.get("input_tokens") or 0,
        "completion_tokens": data.get("output_tokens") or 0,
    }
    if isinstance(data.get("output_tokens_details"), Mapping):
        out["completion_tokens_details"] = data["output_tokens_details"]
    if isinstance(data.get("prompt_tokens_details"), Mapping):
        out["prompt_tokens_details"] = data["prompt_tokens_details"]
    return out


def to_openai_chunk(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrites one native answer (whole or streamed) into an OpenAI chunk."""
    output = data.get("output")
    if not isinstance(output, Mapping):
        raise UpstreamUnavailableError("the DashScope answer has no output object")
    choices = []
    raw = output.get("choices")
    if isinstance(raw, list):
        for position, choice in enumerate(raw):
            if not isinstance(choice, Mapping):
                continue
            reason = choice.get("finish_reason")
            choices.append(
                {
                    "index": choice.get("index", position),
                    "delta": choice.get("message") or {},
                    "logprobs": choice.get("logprobs"),
                    "finish_reason": None if reason in (None, "", "null") else reason,
                }
            )
    elif "text" in output:  # result_format=text, should a caller ask for it through extra
        reason = output.get("finish_reason")
        choices.append(
            {
                "index": 0,
                "delta": {"content": output["text"]},
                "finish_reason": None if reason in (None, "null") else reason,
            }
        )
    return {"choices": choices, "usage": _usage(data.get("usage"))}


class DashScopeDecoder:
    """Folds DashScope's SSE stream (``event:result`` / ``event:error``) into core events.

    Args:
        scrub: Removes secrets from text quoted in errors.
    """

    def __init__(self, scrub: Any = str) -> None:
        self._sse = SSEDecoder()
        self._chunks = ChunkDecoder(scrub)
        self._scrub = scrub
        self.filtered = False

    def _on_event(self, event: str, data: str, comments: list[str]) -> list[StreamEvent]:
        try:
            body = json.loads(data)
        except ValueError:
            raise UpstreamUnavailableError(f"the stream sent malformed JSON: {self._scrub(data[:200])!r}") from None
        if not isinstance(body, Mapping):
            raise UpstreamUnavailableError("the stream sent an event that is not a JSON object")
        if event == "error" or ("code" in body and "output" not in body):
            status = next((int(c.split("/")[1]) for c in comments if c.startswith("HTTP_STATUS/")), 500)
            raise map_dashscope_error(HttpStatusError(status, {}, self._scrub(data)))
        return list(self._chunks.feed_chunk(to_openai_chunk(body)))

    def feed_line(self, line: str) -> list[StreamEvent]:
        """Consumes one line of the response body."""
        event = self._sse.feed(line)
        return self._on_event(event.event, event.data, event.comments) if event is not None else []

    def finish(self) -> Iterator[StreamEvent]:
        """Ends the stream (DashScope sends no end marker; the last event has a finish reason)."""
        tail = self._sse.flush()
        if tail is not None:
            yield from self._on_event(tail.event, tail.data, tail.comments)
        yield from self._chunks.finish()


def embedding_body(texts: list[str], *, model: str, dimensions: int | None, input_type: str | None) -> dict[str, Any]:
    """The native text-embedding body."""
    parameters: dict[str, Any] = {}
    if dimensions is not None:
        parameters["dimension"] = dimensions
    if input_type is not None:
        parameters["text_type"] = input_type
    return {"model": model, "input": {"texts": texts}, "parameters": parameters}


def decode_embeddings(data: Any, expected: int) -> tuple[list[list[float]], int]:
    """Reads a native embeddings answer: vectors in input order and the tokens used."""
    output = data.get("output") if isinstance(data, Mapping) else None
    items = output.get("embeddings") if isinstance(output, Mapping) else None
    if not isinstance(items, list):
        raise UpstreamUnavailableError("the DashScope embeddings answer has no output.embeddings list")
    ordered: dict[int, list[float]] = {}
    for position, item in enumerate(items):
        if isinstance(item, Mapping) and isinstance(item.get("embedding"), list):
            ordered[int(item.get("text_index", position))] = [float(x) for x in item["embedding"]]
    if sorted(ordered) != list(range(expected)):
        raise UpstreamUnavailableError(f"asked for {expected} embeddings, got {len(ordered)}")
    usage = data.get("usage") or {}
    return [ordered[i] for i in range(expected)], int(usage.get("total_tokens") or 0)


def text_rerank_body(request: RerankRequest, *, model: str) -> dict[str, Any]:
    """The native text-rerank body, asking for every document's score and no texts back."""
    documents = list(request.documents)
    return {
        "model": model,
        "input": {"query": request.query, "documents": documents},
        "parameters": {"return_documents": False, "top_n": len(documents)},
    }


def decode_text_rerank(data: Any, expected: int) -> tuple[list[float], int]:
    """Reads a native text-rerank answer (``output.results``): scores in document order, tokens."""
    output = data.get("output") if isinstance(data, Mapping) else None
    scores = rerank_results(output.get("results") if isinstance(output, Mapping) else None, expected, what="DashScope")
    usage = data.get("usage") if isinstance(data, Mapping) else None
    return scores, int(usage.get("total_tokens") or 0) if isinstance(usage, Mapping) else 0

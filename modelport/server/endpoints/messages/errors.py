"""Failures in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Anthropic's statuses differ from OpenAI's in one place: a model whose queue is full is
overloaded (529 ``overloaded_error``), where the OpenAI endpoints say 429.
"""

from __future__ import annotations

import json
from typing import Any

from modelport.core.errors import ModelPortError, OverloadedError

__all__ = ["ERROR_TYPES", "error_body", "error_event", "status_and_type"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def status_and_type(status: int, error: BaseException | None = None) -> tuple[int, str]:
    """The status Anthropic would answer with, and its error type."""
    if isinstance(error, OverloadedError):
        return 529, "overloaded_error"
    if status in ERROR_TYPES:
        return status, ERROR_TYPES[status]
    if 400 <= status < 500:
        return status, "invalid_request_error"
    return status, "api_error"


def error_body(
    status: int, message: str, request_id: str | None = None, error: BaseException | None = None
) -> tuple[int, bytes]:
    """The status and JSON body of one error."""
    status, kind = status_and_type(status, error)
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return status, json.dumps(body, ensure_ascii=False).encode()


def error_event(error: ModelPortError) -> bytes:
    """A failure after the stream began: an ``error`` event."""
    _, kind = status_and_type(error.status_code, error)
    data = json.dumps({"type": "error", "error": {"type": kind, "message": error.message}}, ensure_ascii=False)
    return f"event: error\ndata: {data}\n\n".encode()

"""Every failure as OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``.

Under ``/v1/messages`` (Anthropic's API), failures take Anthropic's shape instead
(``endpoints.messages.errors``): its clients read no other.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from modelport.core.errors import ModelPortError
from modelport.server.endpoints.messages import errors as anthropic
from modelport.server.protocol import ErrorBody, ErrorResponse

__all__ = ["error_body", "error_response", "install_error_handlers", "sse_error"]

logger = logging.getLogger("modelport.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(error: ModelPortError) -> ErrorResponse:
    """The error object for a typed error."""
    param = getattr(error, "param", None)
    return ErrorResponse(error=ErrorBody(message=error.message, type=error.error_type, param=param, code=error.code))


_ANTHROPIC_PREFIX = "/v1/messages"


def _speaks_anthropic(request: Request | None) -> bool:
    if request is None:
        return False
    path, root = request.scope.get("path", ""), request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return bool(path == _ANTHROPIC_PREFIX or path.startswith(_ANTHROPIC_PREFIX + "/"))


def _anthropic_response(
    request: Request, status: int, message: str, error: BaseException | None = None, headers: Any = None
) -> Response:
    record = request.scope.get("state", {}).get("record")
    status, body = anthropic.error_body(status, message, getattr(record, "id", None), error)
    return Response(body, status, headers=headers, media_type="application/json")


def error_response(error: ModelPortError, request: Request | None = None) -> Response:
    """The JSON response for a typed error, with Retry-After when the error says when to retry."""
    headers = {}
    retry_after = getattr(error, "retry_after", None)  # 429s, and 503s while draining or loading
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if error.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if request is not None and _speaks_anthropic(request):
        param = getattr(error, "param", None)
        message = error.message if not param or error.message.startswith(param) else f"{param}: {error.message}"
        return _anthropic_response(request, error.status_code, message, error, headers)
    return Response(error_body(error).json_bytes(), error.status_code, headers=headers, media_type="application/json")


def sse_error(error: ModelPortError) -> bytes:
    """A mid-stream failure as an SSE event; the stream then ends with ``[DONE]``."""
    return b"data: " + error_body(error).json_bytes() + b"\n\n"


def _plain(
    status: int, message: str, *, param: str | None = None, code: str | None = None, request: Request | None = None
) -> Response:
    if request is not None and _speaks_anthropic(request):
        return _anthropic_response(request, status, message)
    body = ErrorResponse(
        error=ErrorBody(message=message, type=_TYPES.get(status, "server_error"), param=param, code=code)
    )
    return Response(body.json_bytes(), status, media_type="application/json")


def _location(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        text = f"The request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".strip()
        return _plain(400, text, request=request)
    loc = tuple(first.get("loc", ()))
    if loc == ("body",):
        return _plain(
            400, "The request body must be a JSON object (with Content-Type: application/json).", request=request
        )
    param = _location(loc)
    message = str(first.get("msg", "invalid request"))
    if first.get("type") == "missing":
        message = "a required field is missing"
    where = f"{param}: " if param else ""
    return _plain(400, f"{where}{message}", param=param, request=request)


async def _on_modelport(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelPortError)
    if exc.status_code >= 500:
        logger.warning("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(exc, request)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    code = "not_found" if exc.status_code == 404 else None
    return _plain(exc.status_code, detail, code=code, request=request)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return _plain(500, f"internal error: {type(exc).__name__}", request=request)


def install_error_handlers(app: FastAPI) -> None:
    """Routes every exception through OpenAI's error shape."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ModelPortError, _on_modelport)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)

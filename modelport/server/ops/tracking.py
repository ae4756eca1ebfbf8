"""One record per HTTP request: its id, what it asked for, how it went; filled as it runs.

``RequestTracking`` is a plain ASGI middleware (it must see a stream's last byte, which
``BaseHTTPMiddleware`` hides). It gives each request an id (the client's ``X-Request-Id`` when
it sent a sane one), echoes it, refuses new API work while the server drains, and hands the
finished record to a callback: the metrics and the access log.
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.core.errors import ShuttingDownError
from modelport.core.events import Finish, StreamEvent, TextDelta, ToolCallDelta
from modelport.server.errors import error_response
from modelport.server.ops.auth import ApiKey
from modelport.server.ops.lifecycle import Lifecycle

__all__ = [
    "GENERATING",
    "REQUEST_ID",
    "SCORING",
    "is_api_path",
    "RequestRecord",
    "RequestTracking",
    "aclose",
    "record_of",
    "tracked_events",
]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("modelport_request_id", default="-")
"""The id of the request being served, for log lines (see ``modelport.server.ops.logs``)."""

# A client's id is echoed and logged, so only short, plain ones are kept.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Requests that do model work: counted for draining, refused while draining. Rerank also
# answers at the paths other servers use for it (Jina's and Cohere's clients).
_API_PREFIXES = ("/v1/", "/v2/rerank", "/rerank", "/score")


def is_api_path(path: str) -> bool:
    """Whether ``path`` is model work (drained, metered), not health, metrics or the playground."""
    return path.startswith(_API_PREFIXES)


# The endpoints whose requests generate (and so have tokens, a TTFT and a finish reason).
GENERATING = frozenset({"chat", "completions", "responses", "messages"})
# The endpoints that score query-document pairs (``inputs`` counts the pairs).
SCORING = frozenset({"rerank", "score"})


@dataclass
class RequestRecord:
    """What one request did.

    Attributes:
        id: The request id (also the suffix of the completion id).
        endpoint: ``chat``, ``completions``, ``embeddings``, ``rerank``... for model work, else ``""``.
        status: The HTTP status; a stream cut after it began carries the cut's status
            (499 when the client left, the error's own status otherwise).
        started: ``time.perf_counter()`` at arrival.
        queued_s: Time spent waiting for a model slot.
        first_token_at: When the first text or tool-call delta came.
        token_gaps: Seconds between successive deltas after the first.
        deltas: Text and tool-call deltas seen: a cut stream's completion tokens, since a cut
            answer never gets the worker's usage.
        inputs: Texts an embedding request held, or pairs a rerank or score request scored.
        usage_known: Whether the worker reported the usage (its last ``Finish`` did).
        input_tokens: The prompt's tokens where the endpoint counted them (``None`` if not).
        reserved_tokens: Tokens held against the key's tokens per minute while it runs.
        requested_model: The name the client sent, when it was an alias of ``model``.
        alias: The alias that matched, as declared (a glob's pattern), for metrics.
        model_known: Whether ``model`` names a registered model (else it is what the client
            sent, which metrics leave out: its values are unbounded).
        leases: The models it holds loaded (anything with ``release()``), given back when it ends.
    """

    id: str
    method: str
    path: str
    started: float
    model: str = ""
    endpoint: str = ""
    key: ApiKey | None = None
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    inputs: int = 0
    queued_s: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    token_gaps: list[float] = field(default_factory=list)
    finish_reason: str | None = None
    finished_at: float | None = None
    error: str | None = None
    deltas: int = 0
    usage_known: bool = False
    input_tokens: int | None = None
    leases: list[Any] = field(default_factory=list)
    reserved_tokens: int = 0
    requested_model: str | None = None
    alias: str | None = None
    model_known: bool = False

    @property
    def key_name(self) -> str:
        """The key's name, or ``""`` on an open server."""
        return self.key.name if self.key is not None else ""

    @property
    def ttft_s(self) -> float | None:
        """Seconds to the first delta (to the end, for an answer without any)."""
        end = self.first_token_at or self.finished_at
        return None if end is None else end - self.started

    @property
    def total_s(self) -> float | None:
        """Seconds from arrival to the last byte."""
        return None if self.finished_at is None else self.finished_at - self.started

    def fail(self, status: int, message: str) -> None:
        """Marks a stream that was cut after its 200 went out."""
        self.status, self.error = status, message

    def see(self, event: StreamEvent) -> None:
        """Notes one worker event: delta timings, usage, finish reason."""
        if isinstance(event, TextDelta | ToolCallDelta):
            self.deltas += 1
            now = time.perf_counter()
            if self.first_token_at is None:
                self.first_token_at = now
            elif self.last_token_at is not None:
                self.token_gaps.append(now - self.last_token_at)
            self.last_token_at = now
        elif isinstance(event, Finish):
            if event.choice == 0:
                self.finish_reason = event.reason
            if event.usage is not None:
                self.prompt_tokens = event.usage.prompt_tokens
                self.completion_tokens = event.usage.completion_tokens
                self.usage_known = True


async def aclose(items: object) -> None:
    """Closes an async generator (which stops a worker's generation); other iterators are left be."""
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


def record_of(request: Request) -> RequestRecord:
    """The record of ``request`` (a bare one when the middleware is not installed)."""
    record = getattr(request.state, "record", None)
    if record is None:
        record = RequestRecord(uuid.uuid4().hex, request.method, request.url.path, time.perf_counter())
        request.state.record = record
    return record


async def tracked_events(events: AsyncIterator[StreamEvent], record: RequestRecord) -> AsyncIterator[StreamEvent]:
    """Passes ``events`` through, noting each on ``record``; closing it closes ``events``."""
    try:
        async for event in events:
            record.see(event)
            yield event
    finally:
        await aclose(events)


class RequestTracking:
    """ASGI middleware: request ids, draining refusals and one finished record per request.

    Args:
        app: The wrapped application.
        lifecycle: The app's drain state.
        on_done: Called with each finished record.
    """

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle, on_done: Callable[[RequestRecord], None]) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.on_done = on_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves one ASGI connection event, tracking HTTP requests."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
        # Behind a mount or a proxy's route prefix (Ray Serve's route_prefix), the path starts with
        # the root path; the app's own routes are what follows it.
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        record = RequestRecord(request_id, scope["method"], path, time.perf_counter())
        scope.setdefault("state", {})["record"] = record
        token = REQUEST_ID.set(request_id)
        finished = False

        async def send_with_id(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                if record.status == 0:
                    record.status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                headers["request-id"] = request_id  # Anthropic's name for it
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        api = is_api_path(path)
        try:
            if api and self.lifecycle.draining:
                response = error_response(ShuttingDownError())
                await response(scope, receive, send_with_id)
                return
            if api:
                self.lifecycle.enter()
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as error:
                # Unhandled errors answer 500 further out, in Starlette's outermost middleware.
                record.fail(500, f"internal error: {type(error).__name__}")
                raise
            finally:
                if api:
                    self.lifecycle.leave()
        finally:
            if not finished and record.status < 400:
                record.fail(499, "the client closed the connection")
            record.finished_at = time.perf_counter()
            try:
                self.on_done(record)
            finally:
                REQUEST_ID.reset(token)

"""Real HTTP servers on 127.0.0.1 for the tests: uvicorn in a thread, and a scripted fake upstream."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Runs ``app`` on a free loopback port and yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Broken(Exception):
    """Raised inside a streaming body: uvicorn then drops the connection mid-message."""


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    events: Sequence[str] = ()
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    event_delay: float = 0.0
    break_after: int | None = None

    async def respond(self) -> Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return Response(self.raw, self.status, self.headers, media_type="application/json")
        if not self.events:
            return JSONResponse(self.body, self.status, self.headers)

        async def body() -> AsyncIterator[bytes]:
            for i, event in enumerate(self.events):
                if self.break_after is not None and i >= self.break_after:
                    raise Broken("connection reset by the script")
                if self.event_delay:
                    await asyncio.sleep(self.event_delay)
                yield event.encode()

        return StreamingResponse(body(), self.status, self.headers, media_type="text/event-stream")


@dataclass
class Seen:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: Any


class Upstream:
    """A fake upstream API that answers from a script, in order, and records every request."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def answer(path: str, request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            self.seen.append(Seen(path, {k.lower(): v for k, v in request.headers.items()}, body))
            if not self.replies:
                return JSONResponse({"error": {"message": "the script has no more replies"}}, 599)
            return await self.replies.popleft().respond()

    def reset(self) -> None:
        self.replies.clear()
        self.seen.clear()

    def add(self, *replies: Reply) -> Upstream:
        self.replies.extend(replies)
        return self


def sse(*payloads: Any, done: bool = True) -> list[str]:
    """OpenAI-style SSE events: one ``data:`` line per payload, then ``[DONE]``."""
    events = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
    if done:
        events.append("data: [DONE]\n\n")
    return events


def drain(events: Iterable[Any]) -> tuple[list[Any], BaseException | None]:
    """Everything a stream delivered, and the error it ended with (if any)."""
    seen: list[Any] = []
    try:
        for event in events:
            seen.append(event)
    except Exception as error:  # noqa: BLE001 - the tests inspect it
        return seen, error
    return seen, None

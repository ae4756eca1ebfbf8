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


def free_port() -> int:
    """A loopback port nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(
    *args: str, env: dict[str, str] | None = None, ready: str = "/health", port: int | None = None
) -> Iterator[ServeProcess]:
    """Runs ``modelport serve ARGS`` as a real process (on a free port by default) until ``ready`` answers 200."""
    import os
    import subprocess
    import sys
    import tempfile

    port = port or free_port()
    command = [sys.executable, "-m", "modelport.cli", "serve", "--port", str(port), *args]
    # A file, not a pipe: a server that logs more than a pipe holds would block on a full pipe.
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        running = ServeProcess(proc, f"http://127.0.0.1:{port}", log)
        yield from _until_ready(running, ready)


def _until_ready(running: ServeProcess, ready: str = "/health") -> Iterator[ServeProcess]:
    import httpx

    proc = running.proc
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(running.base + ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                running.finish()
                raise RuntimeError(f"modelport serve did not become ready:\n{running.output[-3000:]}")
            time.sleep(0.2)
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
        running.finish()


@dataclass
class ServeProcess:
    """A ``modelport serve`` process: its base URL and its output (stdout and stderr together)."""

    proc: Any
    base: str
    log: Any

    @property
    def output(self) -> str:
        """Everything it has printed so far."""
        self.log.seek(0)
        return str(self.log.read())

    def finish(self, timeout: float = 30) -> int:
        """Waits for the process to end and returns its exit status."""
        return int(self.proc.wait(timeout=timeout))


class Forwarder:
    """An ASGI reverse proxy to ``target``, streaming both ways: puts a checker in front of a server
    that runs elsewhere (a Ray Serve proxy), as ``SpecCheck`` sits in front of an in-process app."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import httpx

        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        url = self.target + scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() not in (b"host",)]
        async with (
            httpx.AsyncClient(timeout=120) as client,
            client.stream(scope["method"], url, content=body, headers=headers) as response,
        ):
            kept = [
                (k.encode(), v.encode())
                for k, v in response.headers.multi_items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            ]
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

"""One HTTP client for the remote kinds: JSON posts and SSE streams, with retries.

Retries happen only before any of the answer has been delivered: on connection
errors, timeouts waiting for the response, 429 and 5xx. Once a stream has
started, a failure raises a typed error after the deltas already yielded, so
nothing is silently truncated or repeated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from modelport.core.errors import ModelPortError, RateLimitedError, TimeoutError, UpstreamUnavailableError
from modelport.workers.remote.retry import RetryPolicy, parse_retry_after
from modelport.workers.remote.secret import Secret

__all__ = ["ErrorMapper", "HttpClient", "HttpStatusError"]

logger = logging.getLogger("modelport.remote")

# 529 is Anthropic's "overloaded", which its own SDKs retry.
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class HttpStatusError:
    """What an error mapper is given: the status, headers and decoded body of a failed response."""

    __slots__ = ("body", "headers", "status_code", "text")

    def __init__(self, status_code: int, headers: Mapping[str, str], text: str) -> None:
        self.status_code = status_code
        self.headers = headers
        self.text = text
        try:
            self.body: Any = json.loads(text) if text else None
        except ValueError:
            self.body = None


ErrorMapper = Callable[[HttpStatusError], ModelPortError]


class HttpClient:
    """Posts JSON to one base URL, with credentials, timeouts and a retry policy.

    Args:
        base_url: Every path is relative to it.
        secret: The API key, sent as ``Authorization: Bearer``; ``None`` sends none.
        key_header: A header to send the key in as it is instead (Anthropic's ``x-api-key``).
        headers: Extra headers for every request.
        timeout: Seconds to wait to connect, and for each read (including the first byte).
        retry: When to retry and for how long.
        map_error: Turns a failed response into a typed error.
        name: Names the backend in messages, e.g. ``openai``.
        transport: A custom httpx transport for the sync client (tests, proxies).
        async_transport: The same for the async client.
    """

    def __init__(
        self,
        *,
        base_url: str,
        secret: Secret | None,
        key_header: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        map_error: ErrorMapper,
        name: str,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.name = name
        self._secret = secret
        self._key_header = key_header
        self._headers = dict(headers or {})
        self._map_error = map_error
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        # An AsyncClient's pooled connections belong to the loop that opened them.
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"HttpClient(name={self.name!r}, base_url={self.base_url!r})"

    def _all_headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._headers, **(extra or {})}
        if self._secret is not None and self._key_header is not None:
            headers[self._key_header] = self._secret.reveal()
        elif self._secret is not None:
            headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        return headers

    def _sync(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, transport=self._transport)
        return self._client

    def _async(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(timeout=self.timeout, transport=self._async_transport)
            self._async_clients[loop] = client
        return client

    def _request(
        self, client: httpx.Client | httpx.AsyncClient, path: str, body: Any, headers: Mapping[str, str] | None
    ) -> httpx.Request:
        return client.build_request(
            "POST", f"{self.base_url}/{path.lstrip('/')}", json=body, headers=self._all_headers(headers)
        )

    def scrub(self, text: str) -> str:
        """Removes the credential from text that came from elsewhere."""
        return self._secret.scrub(text) if self._secret is not None else text

    # -- errors and retries -------------------------------------------------------------------

    def _transport_error(self, error: httpx.HTTPError, path: str, *, started: bool) -> ModelPortError:
        where = f"{self.name} {path}"
        detail = self.scrub(str(error)) or type(error).__name__
        if isinstance(error, httpx.TimeoutException):
            phase = "while streaming the answer" if started else "waiting for the response"
            return TimeoutError(f"{where}: no data for {self.timeout:g} s {phase} ({detail})")
        if started:
            return UpstreamUnavailableError(f"{where}: the connection broke mid-answer ({detail})")
        return UpstreamUnavailableError(f"{where}: cannot reach {self.base_url} ({detail})")

    def _status_error(self, response: httpx.Response, text: str) -> ModelPortError:
        error = self._map_error(HttpStatusError(response.status_code, response.headers, self.scrub(text)))
        if isinstance(error, RateLimitedError) and error.retry_after is None:
            error.retry_after = parse_retry_after(response.headers)
        return error

    def _wait(self, error: ModelPortError, status: int | None, retry: int, started: float, path: str) -> float:
        retryable = status is None or status in _RETRY_STATUSES
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        wait = self.retry.next_wait(retry, started, retry_after) if retryable else None
        if wait is None:
            raise error
        logger.warning(
            "%s %s failed (%s); retry %d of %d in %.2f s",
            self.name,
            path,
            status if status is not None else type(error).__name__,
            retry + 1,
            self.retry.max_retries,
            wait,
        )
        return wait

    def _open(self, path: str, body: Any, headers: Mapping[str, str] | None) -> httpx.Response:
        client = self._sync()
        started, retry = time.monotonic(), 0
        while True:
            status: int | None = None
            try:
                response = client.send(self._request(client, path, body, headers), stream=True)
                if response.status_code < 400:
                    return response
                status = response.status_code
                try:
                    text = response.read().decode("utf-8", "replace")
                finally:
                    response.close()
                error = self._status_error(response, text)
            except httpx.HTTPError as failure:
                error = self._transport_error(failure, path, started=False)
            time.sleep(self._wait(error, status, retry, started, path))
            retry += 1

    async def _aopen(self, path: str, body: Any, headers: Mapping[str, str] | None) -> httpx.Response:
        client = self._async()
        started, retry = time.monotonic(), 0
        while True:
            status: int | None = None
            try:
                response = await client.send(self._request(client, path, body, headers), stream=True)
                if response.status_code < 400:
                    return response
                status = response.status_code
                try:
                    text = (await response.aread()).decode("utf-8", "replace")
                finally:
                    await response.aclose()
                error = self._status_error(response, text)
            except httpx.HTTPError as failure:
                error = self._transport_error(failure, path, started=False)
            await asyncio.sleep(self._wait(error, status, retry, started, path))
            retry += 1

    # -- public API -----------------------------------------------------------------------------

    def _decode(self, path: str, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            snippet = self.scrub(text[:200])
            raise UpstreamUnavailableError(f"{self.name} {path}: the response is not JSON: {snippet!r}") from None

    def post_json(self, path: str, body: Any, headers: Mapping[str, str] | None = None) -> Any:
        """Posts ``body`` and returns the decoded JSON answer."""
        response = self._open(path, body, headers)
        try:
            text = response.read().decode("utf-8", "replace")
        except httpx.HTTPError as failure:
            raise self._transport_error(failure, path, started=True) from failure
        finally:
            response.close()
        return self._decode(path, text)

    async def apost_json(self, path: str, body: Any, headers: Mapping[str, str] | None = None) -> Any:
        """Posts ``body`` and returns the decoded JSON answer, without blocking the loop."""
        response = await self._aopen(path, body, headers)
        try:
            text = (await response.aread()).decode("utf-8", "replace")
        except httpx.HTTPError as failure:
            raise self._transport_error(failure, path, started=True) from failure
        finally:
            await response.aclose()
        return self._decode(path, text)

    @contextmanager
    def stream_lines(self, path: str, body: Any, headers: Mapping[str, str] | None = None) -> Iterator[Iterator[str]]:
        """Posts ``body`` and yields an iterator over the response's lines."""
        response = self._open(path, body, headers)

        def lines() -> Iterator[str]:
            try:
                yield from response.iter_lines()
            except httpx.HTTPError as failure:
                raise self._transport_error(failure, path, started=True) from failure

        try:
            yield lines()
        finally:
            response.close()

    @asynccontextmanager
    async def astream_lines(
        self, path: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Posts ``body`` and yields an async iterator over the response's lines."""
        response = await self._aopen(path, body, headers)

        async def lines() -> AsyncIterator[str]:
            try:
                async for line in response.aiter_lines():
                    yield line
            except httpx.HTTPError as failure:
                raise self._transport_error(failure, path, started=True) from failure

        try:
            yield lines()
        finally:
            await response.aclose()

    def probe(self, path: str, timeout: float) -> None:
        """One GET of ``path``, no retries: the health check of a remote replica.

        Raises:
            UpstreamUnavailableError: If the server cannot be reached or does not answer 200.
            TimeoutError: If it does not answer within ``timeout``.
        """
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = self._sync().get(url, headers=self._all_headers(None), timeout=timeout)
        except httpx.HTTPError as error:
            raise self._transport_error(error, path, started=False) from None
        if response.status_code != 200:
            raise UpstreamUnavailableError(f"{self.name} {path}: answered {response.status_code}")

    def close(self) -> None:
        """Closes the sync client; async clients close with their loops."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._async_clients.clear()

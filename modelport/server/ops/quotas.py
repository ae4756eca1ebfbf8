"""Per-key requests-per-minute and tokens-per-minute limits over a sliding one-minute window.

A request is counted when it is let in. Before a generation starts, the most tokens it may use
(its prompt plus ``n`` times its output budget after the context clamp) are reserved against
the key's tokens per minute; when it ends, the reservation gives way to the tokens it used. So
a key cannot start more work than its limit covers, and a request larger than the whole limit
is refused before any work. A key over either limit gets 429 with ``Retry-After`` set to when
enough of the window will have passed; other keys are not affected.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelport.core.errors import RateLimitedError
from modelport.server.ops.auth import ApiKey

__all__ = ["KeyQuotas"]

WINDOW_S = 60.0


@dataclass
class _Window:
    requests: collections.deque[float] = field(default_factory=collections.deque)
    tokens: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    token_sum: int = 0
    reserved: int = 0  # held by requests still running

    def expire(self, now: float) -> None:
        while self.requests and self.requests[0] <= now - WINDOW_S:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW_S:
            self.token_sum -= self.tokens.popleft()[1]


class KeyQuotas:
    """Sliding-window counters by key name.

    Args:
        clock: Seconds, monotonic; tests pass their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = collections.defaultdict(_Window)

    def admit(self, key: ApiKey) -> None:
        """Counts one request for ``key``.

        Raises:
            RateLimitedError: If the key is over its requests or tokens per minute.
        """
        if key.rpm is None and key.tpm is None:
            return
        now = self._clock()
        window = self._windows[key.name]
        window.expire(now)
        if key.rpm is not None and len(window.requests) >= key.rpm:
            wait = window.requests[len(window.requests) - key.rpm] + WINDOW_S - now
            raise self._refuse(key, f"{key.rpm} requests per minute", wait)
        if key.tpm is not None and window.token_sum >= key.tpm:
            # Wait until enough charged tokens leave the window to bring the sum below the limit.
            over, wait = window.token_sum - key.tpm, 0.0
            for at, tokens in window.tokens:
                over -= tokens
                wait = at + WINDOW_S - now
                if over < 0:
                    break
            raise self._refuse(key, f"{key.tpm} tokens per minute", wait)
        window.requests.append(now)

    def reserve(self, key: ApiKey, tokens: int, detail: str = "") -> int:
        """Holds ``tokens`` of ``key``'s tokens per minute for a request about to run.

        Args:
            key: The request's key.
            tokens: The most the request may use.
            detail: How ``tokens`` was reckoned, for the refusal's message.

        Returns:
            The tokens held (0 when the key has no token limit), to give back to ``charge``.

        Raises:
            RateLimitedError: If the request alone is over the limit, or the window's tokens,
                those held by running requests and these together are.
        """
        if key.tpm is None or tokens <= 0:
            return 0
        how = f" ({detail})" if detail else ""
        if tokens > key.tpm:
            raise RateLimitedError(
                f"Request too large for key {key.name!r}: it may use {tokens} tokens{how}, over its limit of "
                f"{key.tpm} tokens per minute. Lower max_tokens or shorten the prompt."
            )
        now = self._clock()
        window = self._windows[key.name]
        window.expire(now)
        if window.token_sum + window.reserved + tokens > key.tpm:
            over, wait = window.token_sum + window.reserved + tokens - key.tpm, 1.0
            for at, used in window.tokens:
                over -= used
                wait = at + WINDOW_S - now
                if over <= 0:
                    break
            raise self._refuse(key, f"{key.tpm} tokens per minute, and this request may use {tokens}{how}", wait)
        window.reserved += tokens
        return tokens

    def charge(self, key: ApiKey, tokens: int, *, reserved: int = 0) -> None:
        """Adds a finished request's tokens to ``key``'s window, releasing what it had reserved."""
        if key.tpm is None:
            return
        window = self._windows[key.name]
        window.reserved = max(window.reserved - reserved, 0)
        if tokens <= 0:
            return
        window.tokens.append((self._clock(), tokens))
        window.token_sum += tokens

    @staticmethod
    def _refuse(key: ApiKey, limit: str, wait: float) -> RateLimitedError:
        return RateLimitedError(
            f"Rate limit reached for key {key.name!r}: {limit}. Retry in {math.ceil(max(wait, 0.0))} s.",
            retry_after=max(wait, 1.0),
        )

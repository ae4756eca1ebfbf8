"""When to retry a failed request, and how long to wait first."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RetryPolicy", "parse_retry_after"]


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Reads ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``, in seconds."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time.

    Attributes:
        max_retries: Retries after the first attempt; 0 turns retrying off.
        initial_delay: The first wait, in seconds, before jitter.
        max_delay: The longest single wait.
        total_timeout: No retry starts once this many seconds have passed since the first attempt.
        jitter: Fraction of each wait that is randomised, in [0, 1].
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    total_timeout: float = 60.0
    jitter: float = 0.25

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry`` (0-based); the server's Retry-After wins."""
        if retry_after is not None:
            return retry_after
        base = min(self.max_delay, self.initial_delay * 2**retry)
        # Jitter spreads out clients that failed together; it needs no cryptographic randomness.
        return float(base * (1 - self.jitter * random.random()))

    def next_wait(self, retry: int, started: float, retry_after: float | None = None) -> float | None:
        """The wait before retry ``retry``, or ``None`` when the count or the time bound forbids it."""
        if retry >= self.max_retries:
            return None
        wait = self.delay(retry, retry_after)
        if time.monotonic() - started + wait > self.total_timeout:
            return None
        return wait

"""The residency settings: a memory budget, a cap on loaded models, ``keep_alive``, load timeouts."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from modelport.core.durations import parse_duration
from modelport.core.errors import BadRequestError

__all__ = ["DEFAULT_MAX_WAITING", "NEVER", "ResidencyPolicy", "parse_keep_alive", "parse_size", "total_memory"]

NEVER = math.inf
"""``keep_alive`` of a model that stays loaded (``-1``, the default)."""

DEFAULT_MAX_WAITING = 64
"""Requests that may wait for one model's load when nothing else says (the server's ``max_queue``)."""

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*|%)\s*$", re.IGNORECASE)


def total_memory() -> int:
    """The machine's physical memory in bytes."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def parse_size(value: int | float | str, *, param: str = "memory_budget") -> int:
    """Bytes in ``value``: a number of bytes, ``"6GiB"``, ``"512MB"``, or ``"50%"`` of the machine's RAM.

    Raises:
        BadRequestError: Naming ``param`` when the value is not a size.
    """
    if isinstance(value, bool):
        raise BadRequestError(f"must be a size such as 6GiB or 50%, got {value!r}", param=param)
    if isinstance(value, int | float):
        amount, unit = float(value), ""
    else:
        match = _SIZE.match(value)
        if match is None or match.group(2).lower() not in (*_UNITS, "%"):
            raise BadRequestError(f"must be a size such as 6GiB, 512MB or 50%, got {value!r}", param=param)
        amount, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        if not 0 < amount <= 100:
            raise BadRequestError(f"a percentage of RAM must be in (0, 100], got {value!r}", param=param)
        return int(total_memory() * amount / 100)
    size = int(amount * _UNITS[unit])
    if size <= 0:
        raise BadRequestError(f"must be a positive size, got {value!r}", param=param)
    return size


def parse_keep_alive(value: int | float | str | None, *, param: str = "keep_alive") -> float | None:
    """Seconds a model stays loaded once idle: ``"5m"``, ``30``, ``0`` (at once), ``-1`` (``NEVER``).

    ``None`` stays ``None`` (not set here: the next level's setting applies).

    Raises:
        BadRequestError: Naming ``param`` when the value is not a duration.
    """
    if value is None:
        return None
    return parse_duration(value, param=param)


@dataclass(frozen=True, slots=True)
class ResidencyPolicy:
    """How many models may be in memory, and for how long.

    Attributes:
        memory_budget: Bytes every loaded model's footprint may add up to (``None``: no budget).
        max_loaded_models: Models loaded at once (``None``: no cap).
        keep_alive_s: Seconds an idle model stays loaded, unless its entry or a request says
            otherwise (``NEVER`` by default: models stay until the process ends).
        load_timeout_s: How long a request may wait for room and for its model's load together.
        max_waiting: Requests that may wait for one model's load (past them, 429).
        retry_after_failure_s: The first wait before a failed load is tried again; it doubles
            with each failure, up to ``max_retry_after_s``.
        max_retry_after_s: The longest wait before retrying a failed load.
    """

    memory_budget: int | None = None
    max_loaded_models: int | None = None
    keep_alive_s: float = NEVER
    load_timeout_s: float = 300.0
    max_waiting: int = DEFAULT_MAX_WAITING
    retry_after_failure_s: float = 2.0
    max_retry_after_s: float = 60.0

    def backoff(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` failed loads in a row."""
        return float(min(self.retry_after_failure_s * 2 ** max(failures - 1, 0), self.max_retry_after_s))

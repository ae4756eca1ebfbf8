"""Durations as config files write them: ``90``, ``45s``, ``30m``, ``24h``, ``7d``, ``-1`` (never)."""

from __future__ import annotations

import math
import re

from modelport.core.errors import BadRequestError

__all__ = ["parse_duration"]

_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)\s*$")


def parse_duration(value: float | int | str, *, param: str = "duration") -> float:
    """Seconds in ``value`` (a number of seconds, or a number and a unit); a negative one is ``inf``.

    Raises:
        BadRequestError: Naming ``param`` when the value is not a duration.
    """
    if isinstance(value, bool):
        raise BadRequestError(f"must be a duration such as 30m or 24h, got {value!r}", param=param)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise BadRequestError(f"must be a duration such as 30m or 24h, got {value!r}", param=param)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if math.isnan(seconds):
        raise BadRequestError("must be a duration, got NaN", param=param)
    return math.inf if seconds < 0 else seconds

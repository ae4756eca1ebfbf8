"""Token prefixes the batching engines share between requests."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["common_prefix"]


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    """How many leading token ids ``first`` and ``second`` have in common."""
    n = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        n += 1
    return n

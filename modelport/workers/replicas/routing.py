"""Routing strategies: which of the replicas that can take a request gets it.

Each strategy sees only replicas that are ready, out of cooldown and under their concurrency
limit; busy-ness is the replica's own in-flight count, taken at dispatch and released when its
stream ends (never a heartbeat's report).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "LeastBusy",
    "PowerOfTwo",
    "RoundRobin",
    "Routable",
    "STRATEGIES",
    "Strategy",
    "Weighted",
    "strategy",
]


class Routable(Protocol):
    """What a strategy reads from a replica."""

    @property
    def id(self) -> str: ...  # noqa: D102

    @property
    def in_flight(self) -> int: ...  # noqa: D102

    @property
    def weight(self) -> float: ...  # noqa: D102


class Strategy(Protocol):
    """Picks one of a non-empty list of candidates."""

    def pick(self, candidates: Sequence[Routable]) -> Routable: ...  # noqa: D102


class LeastBusy:
    """The replica with the fewest requests in flight; ties broken at random (LiteLLM's least-busy)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, candidates: Sequence[Routable]) -> Routable:
        """The least busy candidate."""
        low = min(c.in_flight for c in candidates)
        return self._rng.choice([c for c in candidates if c.in_flight == low])


class PowerOfTwo:
    """The less busy of two candidates drawn at random (Ray Serve's default router)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, candidates: Sequence[Routable]) -> Routable:
        """The less busy of a random pair."""
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._rng.sample(list(candidates), 2)
        return a if a.in_flight <= b.in_flight else b


class Weighted:
    """A candidate drawn with probability proportional to its ``weight``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, candidates: Sequence[Routable]) -> Routable:
        """A weighted draw."""
        return self._rng.choices(list(candidates), weights=[c.weight for c in candidates])[0]


class RoundRobin:
    """Each candidate in turn, by id order."""

    def __init__(self, rng: random.Random) -> None:
        self._turn = itertools.count()

    def pick(self, candidates: Sequence[Routable]) -> Routable:
        """The next candidate in turn."""
        ordered = sorted(candidates, key=lambda c: c.id)
        return ordered[next(self._turn) % len(ordered)]


STRATEGIES: dict[str, type[LeastBusy | PowerOfTwo | Weighted | RoundRobin]] = {
    "least_busy": LeastBusy,
    "power_of_two": PowerOfTwo,
    "weighted": Weighted,
    "round_robin": RoundRobin,
}


def strategy(name: str, seed: int | None = None) -> Strategy:
    """The strategy called ``name``.

    Raises:
        ValueError: For an unknown name (the config schema refuses it earlier, by its path).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](random.Random(seed))

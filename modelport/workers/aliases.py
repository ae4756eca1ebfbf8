"""Model aliases: other names a model answers to, exact (``claude-haiku``) or globs (``claude-*``).

Clients that hard-code model names (Claude Code asks for a main and a fast model) reach a local
model through them. A name resolves in this order: a registered model's own name, then an exact
alias, then the longest matching glob (among globs of one length, the first declared).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from modelport.core.errors import BadRequestError

__all__ = ["AliasMatch", "AliasTable", "Aliased", "alias_clashes", "is_glob"]

_GLOB_CHARS = frozenset("*?[")


def is_glob(alias: str) -> bool:
    """Whether ``alias`` is a pattern (holds ``*``, ``?`` or ``[``) rather than an exact name."""
    return not _GLOB_CHARS.isdisjoint(alias)


@dataclass(frozen=True, slots=True)
class AliasMatch:
    """What a requested name resolved to.

    Attributes:
        model: The registered model's own name.
        alias: The alias that matched, as declared (the pattern for a glob); ``None`` when the
            name was the model's own. Metrics label with it: the raw name could grow without bound.
    """

    model: str
    alias: str | None = None


class Aliased(Protocol):
    """What the table reads of a model entry."""

    @property
    def name(self) -> str: ...  # noqa: D102

    @property
    def aliases(self) -> tuple[str, ...]: ...  # noqa: D102


class AliasTable:
    """Every entry's aliases, for lookups by requested name (rebuilt whenever entries change).

    Raises:
        BadRequestError: From the constructor, naming ``aliases``, when two models claim the
            same alias.
    """

    def __init__(self, entries: Iterable[Aliased] = ()) -> None:
        self._exact: dict[str, str] = {}
        self._globs: list[tuple[str, str]] = []
        for entry in entries:
            for alias in entry.aliases:
                self._claim(alias, entry.name)
        # Longest first; sorted() keeps declaration order among patterns of one length.
        self._globs = sorted(self._globs, key=lambda item: -len(item[0]))

    def _claim(self, alias: str, model: str) -> None:
        owner = self._exact.get(alias) or next((m for g, m in self._globs if g == alias), None)
        if owner == model:
            return
        if owner is not None:
            raise BadRequestError(f"the alias {alias!r} is claimed by both {owner!r} and {model!r}", param="aliases")
        if is_glob(alias):
            self._globs.append((alias, model))
        else:
            self._exact[alias] = model

    def match(self, name: str) -> AliasMatch | None:
        """The model an alias names, exact aliases before globs; ``None`` when none matches."""
        model = self._exact.get(name)
        if model is not None:
            return AliasMatch(model, name)
        for pattern, owner in self._globs:
            if fnmatchcase(name, pattern):
                return AliasMatch(owner, pattern)
        return None

    def __bool__(self) -> bool:
        return bool(self._exact or self._globs)


def alias_clashes(claims: Sequence[tuple[str, Sequence[str]]]) -> Iterator[tuple[int, int, str]]:
    """Aliases that a second model claims again, as ``(claim index, alias index, message)``.

    Args:
        claims: ``(model name, aliases)`` in declaration order; one name may appear more than
            once (replicas), and claiming an alias again for the same model is no clash.
    """
    owners: dict[str, str] = {}
    for i, (model, aliases) in enumerate(claims):
        for j, alias in enumerate(aliases):
            owner = owners.setdefault(alias, model)
            if owner != model:
                yield i, j, f"the alias {alias!r} is already {owner!r}'s"

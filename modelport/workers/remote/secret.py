"""An API key that never shows itself in a repr, a log line or an error message."""

from __future__ import annotations

import os
from typing import Any

from modelport.core.errors import AuthenticationError

__all__ = ["Secret"]


class Secret:
    """Holds a credential; ``reveal()`` is the only way to read it back.

    Args:
        value: The credential.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def resolve(cls, value: str | Secret | None, env: str | None, *, required: bool, what: str) -> Secret | None:
        """Returns ``value``, else the environment variable ``env``.

        Raises:
            AuthenticationError: If neither is set and ``required`` is true.
        """
        if isinstance(value, Secret):
            return value
        if value:
            return cls(value)
        found = os.environ.get(env) if env else None
        if found:
            return cls(found)
        if required:
            where = f" or set {env}" if env else ""
            raise AuthenticationError(f"{what} needs an API key: pass api_key{where}")
        return None

    def reveal(self) -> str:
        """The credential itself, for the one header that needs it."""
        return self._value

    def scrub(self, text: str) -> str:
        """Replaces every occurrence of the credential in ``text``."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Pickling would write the key to disk or to another process in clear text.
        raise TypeError("a Secret cannot be pickled")

"""Bearer API keys, compared in constant time; the keys themselves are never logged."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from modelport.core.errors import AuthenticationError

__all__ = ["ApiKeys"]


class ApiKeys:
    """The keys a client may present. With none configured, every request is let in.

    Args:
        keys: The accepted keys.
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys = tuple(k.encode() for k in keys if k)

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._keys)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    def check(self, authorization: str | None) -> None:
        """Accepts ``Authorization: Bearer <key>`` when the key is one of ours.

        Raises:
            AuthenticationError: If keys are required and this one is missing or wrong.
        """
        if not self._keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
        presented = token.strip().encode()
        # Compare against every key so timing does not reveal which (or whether one) matched early.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(presented, key)
        if not matched:
            raise AuthenticationError("Incorrect API key provided.")

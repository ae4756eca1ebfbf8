"""Bearer API keys, each with a name, an optional model allow-list and optional limits.

Keys are kept only as SHA-256 digests and compared in constant time. Everything that reports
on a request (logs, errors, metrics) uses the key's name, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from modelport.core.errors import AuthenticationError, ModelNotFoundError

__all__ = ["ApiKey", "ApiKeys", "digest"]


def digest(key: str) -> bytes:
    """The SHA-256 digest a key is stored as."""
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One accepted key.

    Attributes:
        name: How the key appears in logs and metrics.
        sha256: The digest of the key.
        models: The models it may use; ``None`` allows every model.
        rpm: Requests per minute, or ``None`` for no limit.
        tpm: Prompt plus completion tokens per minute, or ``None`` for no limit.
    """

    name: str
    sha256: bytes
    models: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None

    @classmethod
    def from_secret(cls, name: str, key: str, **limits: object) -> ApiKey:
        """A key given in clear (hashed at once)."""
        return cls(name, digest(key), **limits)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"ApiKey({self.name!r})"

    def allows(self, model: str) -> bool:
        """Whether this key may use ``model``."""
        return self.models is None or model in self.models

    def check_model(self, model: str, known: Iterable[str], *, requested: str | None = None) -> None:
        """Refuses a model outside the allow-list as OpenAI does: as if it did not exist.

        Args:
            model: The model (an alias already resolved).
            known: Every model's name.
            requested: The name the client sent, for the error, when it differs.

        Raises:
            ModelNotFoundError: Naming what was sent and listing only the models this key may use.
        """
        if not self.allows(model):
            raise ModelNotFoundError(requested or model, [m for m in known if self.allows(m)])


class ApiKeys:
    """The keys a client may present. With none configured, every request is let in.

    Args:
        keys: Flat keys (``--api-key``, ``server.api_keys``), named ``key-1``, ``key-2``...
        rules: Named keys with their own allow-lists and limits (``server.keys``).
    """

    def __init__(self, keys: Iterable[str] = (), rules: Iterable[ApiKey] = ()) -> None:
        flat = [ApiKey.from_secret(f"key-{i}", k) for i, k in enumerate((k for k in keys if k), 1)]
        self._keys: tuple[ApiKey, ...] = (*rules, *flat)

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._keys)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    def check(self, authorization: str | None) -> ApiKey | None:
        """Accepts ``Authorization: Bearer <key>`` when the key is one of ours.

        Returns:
            The matching key, or ``None`` when the server is open.

        Raises:
            AuthenticationError: If keys are required and this one is missing or wrong.
        """
        if not self._keys:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
        presented = digest(token.strip())
        # Compare against every key so timing does not reveal which (or whether one) matched early.
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(presented, key.sha256) and found is None:
                found = key
        if found is None:
            raise AuthenticationError("Incorrect API key provided.")
        return found

"""Sealed reasoning: ``encrypted_content`` that only servers sharing one key can read back.

A stateless client (``store: false``) that asks for ``reasoning.encrypted_content`` gets each
reasoning item sealed (Fernet: AES in CBC mode with an HMAC, so a client can neither read nor
forge it) and returns it with the next request, where it becomes the reasoning of the assistant
turn it belongs to again. The key comes from the environment variable the config names
(``server.responses.secret_env``); without one, each process makes its own, and sealed reasoning
then survives only that process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["Sealer"]


class Sealer:
    """Seals and unseals reasoning text.

    Args:
        secret: Any string; every process that must read another's seals uses the same one.
            ``None`` makes a random key for this process alone.
    """

    def __init__(self, secret: str | None = None) -> None:
        raw = secret.encode() if secret else secrets.token_bytes(32)
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))

    @classmethod
    def from_env(cls, variable: str | None) -> Sealer:
        """The sealer keyed by ``$variable`` (a random key when unset or empty)."""
        return cls(os.environ.get(variable) if variable else None)

    def seal(self, reasoning: str) -> str:
        """``reasoning`` as an opaque token."""
        return self._fernet.encrypt(json.dumps({"reasoning": reasoning}).encode()).decode()

    def unseal(self, token: str) -> str | None:
        """The reasoning sealed in ``token``, or ``None`` when another key (or nobody) sealed it."""
        try:
            value = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            return None
        text = value.get("reasoning") if isinstance(value, dict) else None
        return text if isinstance(text, str) else None

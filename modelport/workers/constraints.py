"""Engine-neutral decoding constraints.

A constraint says "the output must be ``prefix`` + JSON matching ``schema`` +
``suffix``". Each local engine turns it into its own machinery: llama.cpp into a
GBNF grammar, transformers into an xgrammar logits processor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JsonConstraint", "ebnf_literal"]


def ebnf_literal(text: str) -> str:
    """Quotes ``text`` as a GBNF/EBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class JsonConstraint:
    """Output must be ``prefix``, then one JSON value matching ``schema``, then ``suffix``."""

    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    prefix: str = ""
    suffix: str = ""

    @property
    def schema_json(self) -> str:
        """The schema as canonical JSON text (also a cache key)."""
        return json.dumps(self.schema, sort_keys=True, ensure_ascii=False)

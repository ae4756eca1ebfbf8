"""Engine-neutral decoding constraints.

A constraint says "the output must be ``prefix`` + JSON matching ``schema`` +
``suffix``". It compiles to one GBNF grammar, which llama.cpp enforces natively
and transformers enforces through an xgrammar logits processor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.workers.local.constrained.grammar import schema_to_gbnf

__all__ = ["JsonConstraint"]


@dataclass(frozen=True, slots=True)
class JsonConstraint:
    """Output must be ``prefix``, then one JSON value matching ``schema``, then ``suffix``.

    ``root``, when set, is a GBNF root rule of its own in which ``{value}`` stands for a value
    matching ``schema``: how tool-call formats frame one call or several.

    ``closes_in_budget``: as ``max_tokens`` runs out, the engine closes the value with the
    shortest valid text (``modelport.workers.local.constrained.budget_closer``) rather than let the budget cut it; where
    even that does not fit, the budget cuts the output as usual. ``closing_after`` names the
    marker after whose last occurrence the value being closed begins (a call's opening, for
    tool calls), and ``closing_schema`` that value's schema when it is not ``schema`` (a list
    of calls, say).
    """

    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    prefix: str = ""
    suffix: str = ""
    root: str | None = None
    closes_in_budget: bool = False
    closing_after: str = ""
    closing_schema: Mapping[str, Any] | None = None

    @property
    def key(self) -> str:
        """A cache key for compiled forms of this constraint."""
        return json.dumps([self.prefix, self.schema, self.suffix, self.root], sort_keys=True, ensure_ascii=False)

    def gbnf(self) -> str:
        """The grammar every local engine enforces (see ``modelport.workers.local.constrained.grammar``)."""
        return schema_to_gbnf(self.schema, prefix=self.prefix, suffix=self.suffix, root=self.root)

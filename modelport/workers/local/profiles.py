"""Per-family model profiles: which tool-call format a model writes.

A profile is picked from what the chat template says about itself (its tool
markup) and, failing that, from the model's name. A model entry can override the
choice with ``tool_parser``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelProfile", "PROFILES", "profile_for"]


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What modelport needs to know about a model family.

    Attributes:
        family: A short family name.
        tool_parser: The registered tool-call parser for its output.
        template_markers: Substrings of a chat template that identify the family.
        name_markers: Substrings of a model name or path that identify it.
    """

    family: str
    tool_parser: str
    template_markers: tuple[str, ...] = ()
    name_markers: tuple[str, ...] = ()


# Order matters: the first match wins, and the generic Hermes profile comes last.
PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile("mistral", "mistral", ("[TOOL_CALLS]", "[AVAILABLE_TOOLS]"), ("mistral", "mixtral")),
    ModelProfile("llama3", "llama3-json", ("<|python_tag|>", "ipython"), ("llama-3", "llama3")),
    ModelProfile("qwen", "hermes", ("<tool_call>",), ("qwen",)),
    ModelProfile("smollm", "hermes", (), ("smollm",)),
    ModelProfile("hermes", "hermes", ("<tools>",), ("hermes",)),
)

DEFAULT_PROFILE = ModelProfile("generic", "hermes")


def profile_for(template: str | None, name: str | None = None) -> ModelProfile:
    """Returns the profile that matches the chat template, else the model name, else the default."""
    for profile in PROFILES:
        if template and any(marker in template for marker in profile.template_markers):
            return profile
    lowered = (name or "").lower()
    for profile in PROFILES:
        if any(marker in lowered for marker in profile.name_markers):
            return profile
    return DEFAULT_PROFILE

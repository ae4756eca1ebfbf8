"""The local generation pipeline: prompts, templates, the decoding loop, tool choice, constraints.

Shared by every in-process chat kind (``llama-cpp``, ``transformers``). It may import ``core``,
the worker protocol (``workers.base``) and the engines' plumbing (``workers.engines``); never a
surface (integrations, server, ray) or a kind.
"""

__all__: list[str] = []

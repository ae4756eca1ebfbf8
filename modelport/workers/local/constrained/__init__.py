"""Constrained decoding: JSON schema to grammar, the engine-neutral constraint, budget closing.

Pure Python, no engine: each engine enforces the grammar its own way. May import ``core`` only.
"""

__all__: list[str] = []

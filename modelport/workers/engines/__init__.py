"""The batching engines, one module each, with its sampler beside it; and what they share.

Each engine owns one thread that runs every call into its library (llama.cpp, torch,
sentence-transformers), so concurrent requests batch. Names follow one scheme: ``XEngine`` runs,
``XJob`` is one request's hand-off, ``XSampler`` samples a row. May import ``core`` and
``workers.local`` (generation types, constraints); never a kind or a surface.
"""

__all__: list[str] = []

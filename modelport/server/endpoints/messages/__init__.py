"""Anthropic's Messages API (``POST /v1/messages``): what Claude Code and the ``anthropic`` SDK speak.

``wire`` holds the request bodies, ``translate`` turns them into a ``ChatRequest``, ``output``
turns the worker's events into a message and its stream events, ``errors`` gives failures
Anthropic's shape, and ``endpoint`` runs it on the shared endpoint base.
"""

__all__: list[str] = []

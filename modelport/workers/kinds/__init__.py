"""Built-in worker kinds, one thin module each, found through the ``modelport.workers`` entry points.

A kind wires an engine or a client to the worker protocol. May import ``core`` and the rest of
``workers``; never a surface.
"""

__all__: list[str] = []

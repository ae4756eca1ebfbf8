"""The API endpoints, one module per family, on one shared base (``base.Endpoint``).

Each translates its wire request onto a core ``ChatRequest`` (or ``EmbeddingRequest``) and the
worker's event stream back onto its wire shapes. May import ``core``, ``workers``, the server's
wire types, encoders and state; never ``modelport.ray`` or the CLI.
"""

__all__: list[str] = []

"""``/v1/responses``: OpenAI's Responses API, a translation onto the same ``ChatRequest`` and events.

``endpoint`` serves the routes on the shared ``Endpoint`` base; ``wire`` is the request body;
``translate`` turns input items, tools and formats into core types; ``output`` folds the worker's
events into output items and stream events; ``store`` keeps responses for
``previous_response_id``; ``sealing`` seals reasoning for stateless clients. This package's
``__init__`` imports nothing, so the server's state can import the store without a circle.
"""

__all__: list[str] = []

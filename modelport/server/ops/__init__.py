"""Operating the server: keys, quotas, admission limits, request tracking, metrics, logs, draining.

Nothing here knows an endpoint's wire format (errors leave in the server's error shape). May
import ``core``, ``workers.base`` and ``server.errors``; never an endpoint, ``modelport.ray`` or
the CLI.
"""

__all__: list[str] = []

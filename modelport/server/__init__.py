"""The OpenAI-compatible HTTP server: ``create_app`` and its settings.

Endpoints live in ``endpoints/``, operations in ``ops/``, the app's assembly at the top. May
import ``core``, ``workers`` and ``config``; never ``modelport.ray`` or the CLI.
"""

from modelport.server.app import create_app
from modelport.server.ops.limits import Limits
from modelport.server.state import ServerSettings

__all__ = ["Limits", "ServerSettings", "create_app"]

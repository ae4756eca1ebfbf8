"""The OpenAI-compatible HTTP server: ``create_app`` and its settings."""

from modelport.server.app import create_app
from modelport.server.limits import Limits
from modelport.server.state import ServerSettings

__all__ = ["Limits", "ServerSettings", "create_app"]

"""What the remote worker kinds share: the HTTP client with retries, SSE, secrets, wire formats.

May import ``core`` and ``workers.base``; never a surface.
"""

from modelport.workers.remote.http import HttpClient, HttpStatusError
from modelport.workers.remote.retry import RetryPolicy
from modelport.workers.remote.secret import Secret
from modelport.workers.remote.sse import ServerSentEvent, SSEDecoder
from modelport.workers.remote.tool_deltas import ToolDeltaNormalizer

__all__ = [
    "HttpClient",
    "HttpStatusError",
    "RetryPolicy",
    "SSEDecoder",
    "Secret",
    "ServerSentEvent",
    "ToolDeltaNormalizer",
]

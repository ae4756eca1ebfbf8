"""What the remote worker kinds share.

The HTTP client with retries, SSE decoding, secret handling and the tool-call
delta normaliser.
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

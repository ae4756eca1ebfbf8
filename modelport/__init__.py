"""modelport: one registry of model workers for LangChain, LlamaIndex and the OpenAI API.

Importing this package loads no ML framework, web framework or LangChain; each
backend is imported when a model of its kind is first loaded.
"""

from modelport._version import __version__ as __version__
from modelport.core import (
    Accumulator,
    AssistantMessage,
    AuthenticationError,
    BadRequestError,
    Capabilities,
    ChatRequest,
    ChatResult,
    ContextLengthExceededError,
    EmbeddingRequest,
    EmbeddingResult,
    Finish,
    ImagePart,
    Message,
    ModelNotFoundError,
    ModelPortError,
    ModelUnavailableError,
    PermissionDeniedError,
    RateLimitedError,
    ReasoningDelta,
    RerankRequest,
    RerankResult,
    ResponseFormat,
    StreamEvent,
    SystemMessage,
    TextDelta,
    TextPart,
    TimeoutError,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    ToolSpec,
    UpstreamUnavailableError,
    Usage,
    UserMessage,
)
from modelport.workers import (
    ChatWorker,
    EmbeddingWorker,
    ModelEntry,
    ModelRegistry,
    RerankWorker,
    Worker,
    register_worker,
)

__all__ = [
    "Accumulator",
    "AssistantMessage",
    "AuthenticationError",
    "BadRequestError",
    "Capabilities",
    "ChatRequest",
    "ChatResult",
    "ChatWorker",
    "ContextLengthExceededError",
    "EmbeddingRequest",
    "EmbeddingResult",
    "EmbeddingWorker",
    "FakeChatWorker",
    "Finish",
    "ImagePart",
    "Message",
    "ModelEntry",
    "ModelNotFoundError",
    "ModelPortError",
    "ModelUnavailableError",
    "PermissionDeniedError",
    "ModelRegistry",
    "RateLimitedError",
    "ReasoningDelta",
    "RerankRequest",
    "RerankResult",
    "RerankWorker",
    "ResponseFormat",
    "StreamEvent",
    "SystemMessage",
    "TextDelta",
    "TextPart",
    "TimeoutError",
    "ToolCall",
    "ToolCallDelta",
    "ToolMessage",
    "ToolSpec",
    "UpstreamUnavailableError",
    "Usage",
    "UserMessage",
    "Worker",
    "register_worker",
]


def __getattr__(name: str) -> object:
    # The fake worker is a test double users import from here; keep it out of import time.
    if name == "FakeChatWorker":
        from modelport.workers.kinds.fake import FakeChatWorker

        return FakeChatWorker
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")

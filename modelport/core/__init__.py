"""Neutral types shared by every layer: messages, tools, requests, events, errors.

Nothing here imports an ML framework or an HTTP library.
"""

from modelport.core.accumulator import Accumulator, ChatResult, Choice
from modelport.core.capabilities import Capabilities
from modelport.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    ModelNotFoundError,
    ModelPortError,
    ModelUnavailableError,
    NotSupportedError,
    PermissionDeniedError,
    RateLimitedError,
    TimeoutError,
    UpstreamUnavailableError,
)
from modelport.core.events import (
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    Usage,
)
from modelport.core.messages import (
    AssistantMessage,
    Content,
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
    content_text,
    message_from_dict,
    message_to_dict,
)
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult, ResponseFormat
from modelport.core.tools import NamedToolChoice, ToolCall, ToolChoice, ToolSpec, new_tool_call_id, parse_tool_choice

__all__ = [
    "Accumulator",
    "AssistantMessage",
    "AuthenticationError",
    "BadRequestError",
    "Capabilities",
    "ChatRequest",
    "ChatResult",
    "Choice",
    "Content",
    "ContextLengthExceededError",
    "EmbeddingRequest",
    "EmbeddingResult",
    "Finish",
    "FinishReason",
    "ImagePart",
    "Message",
    "ModelNotFoundError",
    "ModelPortError",
    "ModelUnavailableError",
    "NotSupportedError",
    "PermissionDeniedError",
    "NamedToolChoice",
    "RateLimitedError",
    "ReasoningDelta",
    "ResponseFormat",
    "StreamEvent",
    "SystemMessage",
    "TextDelta",
    "TextPart",
    "TimeoutError",
    "TokenLogprob",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolMessage",
    "ToolSpec",
    "Usage",
    "UpstreamUnavailableError",
    "UserMessage",
    "content_text",
    "message_from_dict",
    "message_to_dict",
    "new_tool_call_id",
    "parse_tool_choice",
]

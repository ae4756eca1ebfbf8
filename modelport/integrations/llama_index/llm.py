"""``ModelPortLLM``: any modelport chat worker as a LlamaIndex function-calling LLM."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from modelport.core import (
    Accumulator,
    ChatRequest,
    ChatResult,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    content_text,
)
from modelport.core.capabilities import SAMPLING_FIELDS
from modelport.integrations.llama_index.messages import assistant_message, to_core_messages, tool_selections
from modelport.workers import ChatWorker, ModelRegistry, default_registry

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["ModelPortLLM"]

# Keyword arguments of chat() that become fields of the core request.
_REQUEST_KEYS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "n",
    "logprobs",
    "top_logprobs",
    "tool_call_threshold",
    *sorted(SAMPLING_FIELDS),
)


class _Folding:
    """Folds events into the growing message that LlamaIndex streams (text, reasoning, tool calls)."""

    def __init__(self) -> None:
        self.text = ""
        self.reasoning = ""
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self.accumulator = Accumulator()

    def add(self, event: StreamEvent) -> tuple[str, str]:
        self.accumulator.add(event)
        if event.choice != 0:
            return "", ""
        if isinstance(event, TextDelta):
            self.text += event.text
            return event.text, ""
        if isinstance(event, ReasoningDelta):
            self.reasoning += event.text
            return "", event.text
        if isinstance(event, ToolCallDelta):
            slot = self.calls.setdefault(event.index, [event.id or "", event.name or "", ""])
            slot[2] += event.arguments
        return "", ""

    def response(self, delta: str, thinking: str, event: StreamEvent) -> ChatResponse:
        calls = [ToolCall(i, n, a) for i, n, a in self.calls.values()]
        extra: dict[str, Any] = {"thinking_delta": thinking} if thinking else {}
        if isinstance(event, Finish) and event.usage is not None:
            extra.update(prompt_tokens=event.usage.prompt_tokens, completion_tokens=event.usage.completion_tokens)
        return ChatResponse(
            message=assistant_message(self.text, calls, self.reasoning),
            delta=delta,
            raw=event,
            additional_kwargs=extra,
        )


def _chat_response(result: ChatResult) -> ChatResponse:
    message = result.message
    usage = result.usage
    return ChatResponse(
        message=assistant_message(content_text(message.content), message.tool_calls, message.reasoning or ""),
        raw=result,
        additional_kwargs={
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "finish_reason": result.finish_reason,
        },
    )


class ModelPortLLM(FunctionCallingLLM):
    """A LlamaIndex function-calling LLM backed by a modelport worker, local or remote.

    Tool calling, ``tool_required`` and named tool choices work on every worker, small
    local models included (forced calls use constrained decoding). Async methods are
    native: a local worker generates in its own thread and never blocks the loop.

    Example:
        ``ModelPortLLM(model="smollm2-135m")`` or ``ModelPortLLM(worker=my_worker)``.
    """

    model: str = Field(default="", description="A model name in the registry.")
    temperature: float | None = Field(default=None, description="Sampling temperature; 0 is greedy.")
    max_tokens: int | None = Field(default=None, description="Completion token limit.")
    top_p: float | None = Field(default=None, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, description="Seed for reproducible sampling.")
    stop: list[str] | None = Field(default=None, description="Stop sequences.")
    context_window: int | None = Field(default=None, description="Override the worker's declared context window.")

    _worker: ChatWorker = PrivateAttr()

    def __init__(
        self,
        model: str = "",
        *,
        worker: ChatWorker | None = None,
        registry: ModelRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        if worker is None:
            if not model:
                raise ValueError("ModelPortLLM needs a model name or a worker")
            worker = (registry or default_registry()).chat(model)
        super().__init__(model=model or type(worker).__name__, **kwargs)
        self._worker = worker

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serialises this class under."""
        return "ModelPortLLM"

    @property
    def worker(self) -> ChatWorker:
        """The worker that generates."""
        return self._worker

    @property
    def metadata(self) -> LLMMetadata:
        """What the worker really declares it can do."""
        caps = self._worker.capabilities
        return LLMMetadata(
            context_window=self.context_window or caps.max_context or 4096,
            num_output=self.max_tokens or caps.max_output_tokens or 256,
            is_chat_model=True,
            is_function_calling_model=caps.tools,
            model_name=self.model,
        )

    # -- requests -------------------------------------------------------------------------------

    def _request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> ChatRequest:
        options: dict[str, Any] = {
            "temperature": kwargs.pop("temperature", self.temperature),
            "max_tokens": kwargs.pop("max_tokens", self.max_tokens),
            "top_p": kwargs.pop("top_p", self.top_p),
            "seed": kwargs.pop("seed", self.seed),
            "stop": kwargs.pop("stop", self.stop) or (),
        }
        options.update({key: kwargs.pop(key) for key in _REQUEST_KEYS if key in kwargs})
        return ChatRequest(to_core_messages(messages), **options)

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Turns LlamaIndex tools and options into ``chat`` keyword arguments."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        specs = [
            ToolSpec.from_dict(
                {
                    "name": t.metadata.get_name(),
                    "description": t.metadata.description,
                    "parameters": t.metadata.get_parameters_dict(),
                },
                where=f"tools[{i}]",
            )
            for i, t in enumerate(tools)
        ]
        choice = tool_choice if tool_choice is not None else ("required" if tool_required else "auto")
        return {
            "messages": messages,
            "tools": specs,
            "tool_choice": choice if specs else None,
            "parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keeps only the first call when parallel calls were not allowed."""
        if allow_parallel_tool_calls:
            return response
        calls = tool_selections(response.message)
        if len(calls) > 1:
            first = calls[0]
            text = response.message.content or ""
            response.message = assistant_message(
                text, [ToolCall(first.tool_id, first.tool_name, _json(first.tool_kwargs))]
            )
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The calls in ``response``; partial streamed calls parse to what is there so far.

        Raises:
            ValueError: If there is no call and ``error_on_no_tool_call`` is true.
        """
        calls = tool_selections(response.message)
        if not calls and error_on_no_tool_call:
            raise ValueError(f"Expected at least one tool call, got none: {response.message.content!r}")
        return calls

    # -- chat -----------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """One whole answer."""
        return _chat_response(self._worker.invoke(self._request(messages, kwargs)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """One whole answer, natively async."""
        return _chat_response(await self._worker.ainvoke(self._request(messages, kwargs)))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Streams the growing message; ``delta`` holds the new text."""
        request = self._request(messages, kwargs)

        def generate() -> ChatResponseGen:
            folding = _Folding()
            for event in self._worker.stream(request):
                delta, thinking = folding.add(event)
                yield folding.response(delta, thinking, event)

        return generate()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Streams natively async."""
        request = self._request(messages, kwargs)

        async def generate() -> ChatResponseAsyncGen:
            folding = _Folding()
            async for event in self._worker.astream(request):
                delta, thinking = folding.add(event)
                yield folding.response(delta, thinking, event)

        return generate()

    # -- completion (a prompt as one user message) ------------------------------------------------

    def _prompt_messages(self, prompt: str) -> list[ChatMessage]:
        return [ChatMessage(role=MessageRole.USER, content=prompt)]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Completes ``prompt``, sent as one user message through the chat template."""
        response = self.chat(self._prompt_messages(prompt), **kwargs)
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Completes ``prompt``, natively async."""
        response = await self.achat(self._prompt_messages(prompt), **kwargs)
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Streams the completion of ``prompt``."""
        chunks = self.stream_chat(self._prompt_messages(prompt), **kwargs)

        def generate() -> CompletionResponseGen:
            for chunk in chunks:
                yield CompletionResponse(text=chunk.message.content or "", delta=chunk.delta, raw=chunk.raw)

        return generate()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        """Streams the completion of ``prompt``, natively async."""
        chunks = await self.astream_chat(self._prompt_messages(prompt), **kwargs)

        async def generate() -> CompletionResponseAsyncGen:
            async for chunk in chunks:
                yield CompletionResponse(text=chunk.message.content or "", delta=chunk.delta, raw=chunk.raw)

        return generate()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)

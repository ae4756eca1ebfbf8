"""``ChatModelPort``: any modelport chat worker as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, model_validator

from modelport.core import ChatRequest, ResponseFormat, ToolSpec
from modelport.core.accumulator import Accumulator
from modelport.core.capabilities import SAMPLING_FIELDS
from modelport.integrations.langchain.messages import chunk_from_event, generation_from_choice, to_core_messages
from modelport.workers import ChatWorker, ModelRegistry, default_registry

__all__ = ["ChatModelPort"]

_REQUEST_FIELDS = ("temperature", "top_p", "max_tokens", "seed", "n", "tool_call_threshold", *sorted(SAMPLING_FIELDS))


class ChatModelPort(BaseChatModel):
    """A LangChain chat model backed by a modelport worker.

    Build it from a registered name (``ChatModelPort(model="smollm2-135m")``) or
    around a worker (``ChatModelPort(worker=my_worker)``). Streaming, async, tool
    calling with every ``tool_choice`` form, and structured output work on every
    worker, local ones included.

    Example:
        >>> llm = ChatModelPort(model="smollm2-135m", temperature=0)
        >>> llm.invoke("What is the capital of France?").content
    """

    model: str = Field(default="", alias="model_name")
    """The registered model name (also reported as ``model_name``)."""
    worker: ChatWorker | None = Field(default=None, exclude=True)
    """The worker; resolved from ``model`` in ``registry`` when not given."""
    registry: ModelRegistry | None = Field(default=None, exclude=True)
    """Where ``model`` is looked up; the shared built-in registry by default."""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    n: int = 1
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[int, float] | None = None
    repetition_penalty: float | None = None
    """vLLM's and transformers' multiplicative penalty (1 is off)."""
    top_k: int | None = None
    min_p: float | None = None
    tool_call_threshold: float | None = None
    """For local models in auto tool mode: how sure the model must be before it calls (lower calls more)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    timeout: float | None = None
    """Seconds a remote worker may take; local workers ignore it."""
    max_retries: int | None = None
    """Retries a remote worker may make; local workers ignore it."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Backend-specific options passed through in ``ChatRequest.extra``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    @model_validator(mode="after")
    def _resolve_worker(self) -> ChatModelPort:
        if self.worker is None:
            if not self.model:
                raise ValueError("ChatModelPort needs a model name or a worker")
            self.worker = (self.registry or default_registry()).chat(self.model)
        elif not self.model:
            self.model = type(self.worker).__name__
        if self.profile is None:
            # LangChain's own validator ran before the worker existed.
            self.profile = self._resolve_model_profile()
        return self

    @property
    def _llm_type(self) -> str:
        return "modelport"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model, **{f: getattr(self, f) for f in _REQUEST_FIELDS}}

    def _resolve_model_profile(self) -> ModelProfile | None:
        assert self.worker is not None
        caps = self.worker.capabilities
        profile = ModelProfile(
            text_inputs=True,
            text_outputs=True,
            image_inputs=caps.vision,
            tool_calling=caps.tools,
            tool_choice=caps.tool_choice,
            tool_call_streaming=caps.tool_call_streaming,
            structured_output=caps.structured_output,
            reasoning_output=caps.reasoning,
        )
        if caps.max_context:
            profile["max_input_tokens"] = caps.max_context
        if caps.max_output_tokens:
            profile["max_output_tokens"] = caps.max_output_tokens
        return profile

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> ChatRequest:
        fields: dict[str, Any] = {f: getattr(self, f) for f in _REQUEST_FIELDS}
        fields.update({f: kwargs.pop(f) for f in _REQUEST_FIELDS if f in kwargs})
        if "max_completion_tokens" in kwargs:
            fields["max_tokens"] = kwargs.pop("max_completion_tokens")
        tools = [ToolSpec.from_dict(t, where=f"tools[{i}]") for i, t in enumerate(kwargs.pop("tools", None) or ())]
        fmt = kwargs.pop("response_format", None)
        return ChatRequest(
            to_core_messages(messages),
            stop=stop if stop is not None else (self.stop or ()),
            tools=tools,
            tool_choice=kwargs.pop("tool_choice", None),
            response_format=ResponseFormat.from_dict(fmt) if isinstance(fmt, dict) else fmt,
            parallel_tool_calls=kwargs.pop("parallel_tool_calls", None),
            extra={**self.model_kwargs, **kwargs},
            **fields,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        assert self.worker is not None
        acc = Accumulator()
        for event in self.worker.stream(self._request(messages, stop, **kwargs)):
            acc.add(event)
        return self._result(acc)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        assert self.worker is not None
        acc = Accumulator()
        async for event in self.worker.astream(self._request(messages, stop, **kwargs)):
            acc.add(event)
        return self._result(acc)

    def _result(self, acc: Accumulator) -> ChatResult:
        result = acc.result()
        generations = [generation_from_choice(result, i, self.model) for i in range(len(result.choices))]
        return ChatResult(generations=generations, llm_output={"model_name": self.model})

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        assert self.worker is not None
        for event in self.worker.stream(self._request(messages, stop, **kwargs)):
            if event.choice:
                continue  # LangChain streams one choice
            chunk = ChatGenerationChunk(message=chunk_from_event(event, self.model))
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        assert self.worker is not None
        async for event in self.worker.astream(self._request(messages, stop, **kwargs)):
            if event.choice:
                continue
            chunk = ChatGenerationChunk(message=chunk_from_event(event, self.model))
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Binds tools; ``tool_choice`` takes a name, ``auto``, ``none``, ``any``, ``required``, True or a dict."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Returns output shaped by ``schema`` (a pydantic class, TypedDict or JSON schema).

        ``function_calling`` forces a call to a tool built from the schema;
        ``json_schema`` and ``json_mode`` constrain the text itself. ``json_mode`` takes no schema
        (``None``), as ChatOpenAI's does; the answer is then parsed as any JSON object.

        Raises:
            ValueError: If ``schema`` is ``None`` for a method that needs one.
        """
        if schema is None and method != "json_mode":
            raise ValueError(f"method {method!r} needs a schema; only json_mode takes none")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        parser: Runnable[Any, Any]
        if method == "function_calling":
            assert schema is not None
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            traced: dict[str, Any] = {"kwargs": {"method": method, "strict": strict}, "schema": tool}
            llm = self.bind_tools([tool], tool_choice=name, ls_structured_output_format=traced, **kwargs)
            if is_pydantic:
                parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            else:
                parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        elif method in ("json_schema", "json_mode"):
            fmt: dict[str, Any]
            if method == "json_schema":
                assert schema is not None
                json_schema = convert_to_json_schema(schema)
                fmt = {
                    "type": "json_schema",
                    "json_schema": {"name": json_schema.get("title", "response"), "schema": json_schema},
                }
            else:
                fmt = {"type": "json_object"}
            # Without a schema, LangChain's tracing leaves the format out (as for ChatOpenAI's).
            traced = {"kwargs": {"method": method}, "schema": convert_to_json_schema(schema) if schema else None}
            llm = self.bind(response_format=fmt, ls_structured_output_format=traced, **kwargs)
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()  # type: ignore[arg-type]
        else:
            raise ValueError(f"unknown method {method!r}; use function_calling, json_schema or json_mode")
        if not include_raw:
            return llm | parser
        with_parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        without = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | with_parsed.with_fallbacks([without], exception_key="parsing_error")

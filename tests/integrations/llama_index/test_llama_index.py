"""ModelPortLLM and ModelPortEmbedding on the built-in models, in the style of LlamaIndex's own tests."""

from __future__ import annotations

import asyncio
import time

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from modelport.core import Capabilities, EmbeddingRequest, ToolMessage
from modelport.core.events import Finish, ToolCallDelta, Usage
from modelport.integrations.llama_index import ModelPortEmbedding, ModelPortLLM
from modelport.integrations.llama_index.messages import to_core_messages
from modelport.workers import ModelRegistry
from modelport.workers.kinds.fake import FakeChatWorker

SYSTEM = ChatMessage(role=MessageRole.SYSTEM, content="You are a helpful assistant.")
EXECUTED: list[str] = []


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    EXECUTED.append(city)
    return f"It is 22 degrees and sunny in {city}."


WEATHER = FunctionTool.from_defaults(get_weather)


@pytest.fixture(scope="module")
def llm() -> ModelPortLLM:
    return ModelPortLLM("smollm2-135m", temperature=0, max_tokens=48)


def ask(text: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage(role=MessageRole.USER, content=text)]


def test_chat_and_complete(llm: ModelPortLLM) -> None:
    response = llm.chat(ask("Name the capital of France."))
    assert "Paris" in (response.message.content or "")
    assert response.additional_kwargs["completion_tokens"] > 0
    assert llm.complete("Say hello.").text.strip()


def test_stream_chat_and_stream_complete(llm: ModelPortLLM) -> None:
    chunks = list(llm.stream_chat(ask("Name three colours.")))
    assert len(chunks) > 2
    assert "".join(c.delta or "" for c in chunks) == chunks[-1].message.content
    assert chunks[-1].message.content == llm.chat(ask("Name three colours.")).message.content
    completions = list(llm.stream_complete("Name three colours."))
    assert "".join(c.delta or "" for c in completions) == completions[-1].text


async def test_async_forms(llm: ModelPortLLM) -> None:
    whole = await llm.achat(ask("Name the capital of France."))
    assert "Paris" in (whole.message.content or "")
    assert (await llm.acomplete("Say hello.")).text.strip()
    chunks = [c async for c in await llm.astream_chat(ask("Name three colours."))]
    assert "".join(c.delta or "" for c in chunks) == chunks[-1].message.content
    completions = [c async for c in await llm.astream_complete("Say hello.")]
    assert completions[-1].text.strip()


async def test_async_never_blocks_the_loop(llm: ModelPortLLM) -> None:
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await llm.achat(ask("Write a short poem about the sea."), max_tokens=64)
    ticker.cancel()
    assert gaps and max(gaps) < 0.25


def test_metadata_comes_from_the_worker(llm: ModelPortLLM) -> None:
    meta = llm.metadata
    assert meta.is_chat_model and meta.is_function_calling_model
    assert meta.context_window == 4096 and meta.num_output == 48 and meta.model_name == "smollm2-135m"
    plain = ModelPortLLM(worker=FakeChatWorker(capabilities=Capabilities(max_context=512)))
    assert not plain.metadata.is_function_calling_model and plain.metadata.context_window == 512


def test_chat_with_tools_then_the_tool_runs(llm: ModelPortLLM) -> None:
    EXECUTED.clear()
    response = llm.chat_with_tools(
        [WEATHER], user_msg="What's the weather in Paris?", chat_history=[SYSTEM], tool_required=True
    )
    (selection,) = llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "get_weather" and selection.tool_id.startswith("call_")
    output = WEATHER.call(**selection.tool_kwargs)
    assert [selection.tool_kwargs["city"]] == EXECUTED and "22 degrees" in output.content
    blocks = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    assert blocks and blocks[0].tool_name == "get_weather"
    assert response.message.additional_kwargs["tool_calls"][0]["function"]["name"] == "get_weather"


def test_stream_chat_with_tools(llm: ModelPortLLM) -> None:
    chunks = list(
        llm.stream_chat_with_tools([WEATHER], user_msg="Weather in Rome?", chat_history=[SYSTEM], tool_required=True)
    )
    for chunk in chunks:  # FunctionAgent does this on every chunk: partial calls must not raise
        llm.get_tool_calls_from_response(chunk, error_on_no_tool_call=False)
    (selection,) = llm.get_tool_calls_from_response(chunks[-1])
    assert selection.tool_name == "get_weather" and isinstance(selection.tool_kwargs["city"], str)


async def test_astream_chat_with_tools_and_a_named_choice(llm: ModelPortLLM) -> None:
    stream = await llm.astream_chat_with_tools(
        [WEATHER], user_msg="Tell me about Oslo.", chat_history=[SYSTEM], tool_choice="get_weather"
    )
    chunks = [c async for c in stream]
    assert llm.get_tool_calls_from_response(chunks[-1])[0].tool_name == "get_weather"


def test_no_tool_call(llm: ModelPortLLM) -> None:
    response = llm.chat_with_tools([WEATHER], user_msg="Say hello.", chat_history=[SYSTEM], tool_choice="none")
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="tool call"):
        llm.get_tool_calls_from_response(response)


def test_parallel_calls_are_cut_to_one_unless_allowed() -> None:
    two = [
        ToolCallDelta(0, "call_a", "get_weather", '{"city": "Oslo"}'),
        ToolCallDelta(1, "call_b", "get_weather", '{"city": "Rome"}'),
        Finish("tool_calls", Usage(1, 1)),
    ]
    llm = ModelPortLLM(worker=FakeChatWorker([two, two]))
    single = llm.chat_with_tools([WEATHER], user_msg="both", allow_parallel_tool_calls=False)
    both = llm.chat_with_tools([WEATHER], user_msg="both", allow_parallel_tool_calls=True)
    assert [s.tool_kwargs["city"] for s in llm.get_tool_calls_from_response(single)] == ["Oslo"]
    assert [s.tool_kwargs["city"] for s in llm.get_tool_calls_from_response(both)] == ["Oslo", "Rome"]


def test_tool_results_name_their_tool() -> None:
    history = [
        ChatMessage(role=MessageRole.USER, content="weather?"),
        ChatMessage(
            role=MessageRole.ASSISTANT,
            blocks=[ToolCallBlock(tool_call_id="call_1", tool_name="get_weather", tool_kwargs={"city": "Paris"})],
        ),
        ChatMessage(role=MessageRole.TOOL, content="sunny", additional_kwargs={"tool_call_id": "call_1"}),
    ]
    core = to_core_messages(history)
    assert core[1].tool_calls[0].name == "get_weather"  # type: ignore[union-attr]
    assert isinstance(core[2], ToolMessage) and core[2].name == "get_weather" and core[2].tool_call_id == "call_1"


class City(BaseModel):
    name: str
    country: str


def test_structured_predict(llm: ModelPortLLM) -> None:
    city = llm.structured_predict(
        City, PromptTemplate("Give the city and country of the Eiffel Tower: {hint}"), hint="Paris"
    )
    assert isinstance(city, City) and city.name


def test_embeddings_batch_and_async(registry: ModelRegistry) -> None:
    model = ModelPortEmbedding("minilm-l6", embed_batch_size=2)
    texts = ["a lighthouse", "bread", "roses", "tides", "ovens"]
    batch = model.get_text_embedding_batch(texts)
    direct = registry.embedder("minilm-l6").embed(EmbeddingRequest(texts)).vectors
    assert len(batch) == 5 and all(
        got == pytest.approx(want, abs=1e-5) for got, want in zip(batch, direct, strict=True)
    )
    assert model.get_query_embedding("a lighthouse") == pytest.approx(batch[0], abs=1e-5)
    assert asyncio.run(model.aget_query_embedding("a lighthouse")) == pytest.approx(batch[0], abs=1e-5)
    assert len(asyncio.run(model.aget_text_embedding_batch(texts))) == 5


def test_embedding_takes_model_as_openai_embedding_does(registry: ModelRegistry) -> None:
    by_model = ModelPortEmbedding(model="minilm-l6")
    assert by_model.model_name == "minilm-l6"
    assert by_model.get_query_embedding("bread") == pytest.approx(
        ModelPortEmbedding("minilm-l6").get_query_embedding("bread"), abs=1e-5
    )
    with pytest.raises(ValueError, match="disagree"):
        ModelPortEmbedding("minilm-l6", model="other")


def test_structured_predict_fits_a_small_max_tokens() -> None:
    class Joke(BaseModel):
        setup: str
        punchline: str

    small = ModelPortLLM(model="smollm2-135m", max_tokens=64, temperature=0)
    joke = small.structured_predict(Joke, PromptTemplate("Tell me a joke about {topic}."), topic="cats")
    assert isinstance(joke, Joke) and joke.setup


def test_a_tool_with_an_invalid_schema_is_a_typed_error_naming_it() -> None:
    from llama_index.core.tools import ToolMetadata

    from modelport.core import BadRequestError

    bad = FunctionTool(
        fn=lambda city: city,
        metadata=ToolMetadata(name="weather", description="w", fn_schema=None),
    )
    bad.metadata.get_parameters_dict = lambda: {"type": "objekt"}  # type: ignore[method-assign]
    llm = ModelPortLLM(worker=FakeChatWorker(["x"]))
    with pytest.raises(BadRequestError) as info:
        llm.chat_with_tools([bad], user_msg="weather?")
    assert info.value.param == "tools[0].function.parameters"

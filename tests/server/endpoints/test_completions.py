"""/v1/completions: local models continue raw text (no chat template), through the openai SDK.

Every body and chunk is checked against the spec by the suite's middleware.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelport.core import ChatRequest, UserMessage
from modelport.workers import ModelRegistry

PROMPT = "The capital of France is"


def test_the_prompt_is_continued_as_raw_text(client: Any, registry: ModelRegistry) -> None:
    out = client.completions.create(model="smollm2-135m", prompt=PROMPT, max_tokens=8, temperature=0)
    worker = registry.chat("smollm2-135m")
    direct = worker.invoke(ChatRequest([UserMessage(PROMPT)], raw_prompt=PROMPT, max_tokens=8, temperature=0))
    assert out.object == "text_completion" and out.choices[0].text == direct.text
    # No template around it: the prompt is its own few tokens (plus BOS where the model adds one).
    assert out.usage.prompt_tokens <= worker.count_tokens(PROMPT) + 1
    templated = worker.invoke(ChatRequest([UserMessage(PROMPT)], max_tokens=1, temperature=0))
    assert templated.usage.prompt_tokens > out.usage.prompt_tokens + 5


def test_echo_stop_n_and_seed(client: Any) -> None:
    echoed = client.completions.create(model="smollm2-135m", prompt=PROMPT, max_tokens=6, temperature=0, echo=True)
    assert echoed.choices[0].text.startswith(PROMPT) and len(echoed.choices[0].text) > len(PROMPT)
    two = client.completions.create(
        model="smollm2-135m", prompt="One, two, three,", max_tokens=12, n=2, seed=5, temperature=1.0, stop=["\n"]
    )
    assert [c.index for c in two.choices] == [0, 1]
    assert all("\n" not in c.text and c.finish_reason in ("stop", "length") for c in two.choices)
    again = client.completions.create(
        model="smollm2-135m", prompt="One, two, three,", max_tokens=12, n=2, seed=5, temperature=1.0, stop=["\n"]
    )
    assert [c.text for c in again.choices] == [c.text for c in two.choices]


def test_logprobs_line_up_with_the_text_whole_and_streamed(client: Any) -> None:
    kwargs: dict[str, Any] = {"model": "smollm2-135m", "prompt": PROMPT, "max_tokens": 6, "temperature": 0}
    out = client.completions.create(**kwargs, logprobs=2)
    choice = out.choices[0]
    lp = choice.logprobs
    assert "".join(lp.tokens) == choice.text
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
    assert all(v <= 0 for v in lp.token_logprobs) and all(len(top) <= 2 for top in lp.top_logprobs)
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    chunks = list(client.completions.create(**kwargs, logprobs=2, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == choice.text
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert streamed == lp.tokens


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "smollm2-135m", "suffix": "!"}, "suffix"),
        ({"model": "smollm2-135m", "best_of": 3}, "best_of"),
        ({"model": "smollm2-135m", "echo": True, "logprobs": 1}, "logprobs"),
        ({"model": "smollm2-135m", "logprobs": 9}, "logprobs"),
        ({"model": "rag-bot", "echo": True}, "echo"),
        ({"model": "fake", "logprobs": 1}, "logprobs"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(client: Any, fields: dict[str, Any], param: str) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(prompt=PROMPT, max_tokens=4, **fields)
    assert caught.value.body["param"] == param


def test_chains_still_answer_through_their_chat_template(client: Any) -> None:
    out = client.completions.create(model="rag-bot", prompt="How tall is the Harbour Lighthouse?")
    assert out.choices[0].text


@pytest.mark.parametrize(("prompt", "param"), [("word " * 6000, "prompt"), (["fits", "word " * 6000], "prompt[1]")])
def test_a_prompt_beyond_the_context_names_prompt(client: Any, prompt: Any, param: str) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="smollm2-135m", prompt=prompt, max_tokens=4)
    error = caught.value.body
    assert error["code"] == "context_length_exceeded" and error["param"] == param
    assert "messages" not in error["message"]

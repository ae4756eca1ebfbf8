"""Sampling fields over HTTP: applied where the model's worker can, refused by name elsewhere."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelport.server.ops.limits import Limits, ModelLimiter

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
LOOP = [SYSTEM, {"role": "user", "content": "Repeat the word 'apple' fifty times, separated by spaces."}]


def chat(base_url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/chat/completions", json={"temperature": 0, **body}, timeout=120)


def test_penalties_change_a_looping_answer(base_url: str) -> None:
    plain = chat(base_url, model="smollm2-135m", messages=LOOP, max_tokens=40).json()
    text = plain["choices"][0]["message"]["content"]
    for field in ("frequency_penalty", "presence_penalty"):
        out = chat(base_url, model="smollm2-135m", messages=LOOP, max_tokens=40, **{field: 2.0})
        assert out.status_code == 200, out.text
        assert out.json()["choices"][0]["message"]["content"] != text, field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("frequency_penalty", 2.5),
        ("presence_penalty", -2.01),
        ("repetition_penalty", 0),
        ("top_k", -1),
        ("min_p", 1.5),
        ("logit_bias", {"x": 1}),
        ("logit_bias", {"5": 101}),
    ],
)
def test_out_of_range_is_400_naming_the_field(base_url: str, field: str, value: Any) -> None:
    out = chat(base_url, model="smollm2-135m", messages=LOOP, max_tokens=4, **{field: value})
    assert out.status_code == 400
    assert out.json()["error"]["param"].startswith(field)


def test_a_model_that_cannot_apply_a_field_refuses_it_by_name(base_url: str) -> None:
    # The served chain has no sampler: it refuses, while the local model next to it applies it.
    out = chat(base_url, model="rag-bot", messages=LOOP, presence_penalty=0.5)
    assert out.status_code == 400 and out.json()["error"]["param"] == "presence_penalty"
    ok = chat(base_url, model="smollm2-135m", messages=LOOP, max_tokens=4, presence_penalty=0.5, top_k=5, min_p=0.1)
    assert ok.status_code == 200


def test_concurrency_defaults_to_the_workers_parallelism() -> None:
    limiter = ModelLimiter(Limits(4, 64), partial={"tuned": {"max_queue": 3}, "capped": {"max_concurrency": 2}})
    assert limiter.limits_for("smollm2-135m", 8) == Limits(8, 64)
    assert limiter.limits_for("remote", None) == Limits(4, 64)
    assert limiter.limits_for("tuned", 8) == Limits(8, 3)
    assert limiter.limits_for("capped", 8) == Limits(2, 64)

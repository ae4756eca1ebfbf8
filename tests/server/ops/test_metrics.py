"""``/metrics``: Prometheus text that counts exactly the requests made, with their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelport.server import create_app
from modelport.workers import ModelRegistry
from tests.loopback import serve


@pytest.fixture(scope="module")
def metrics_url(server_registry: ModelRegistry) -> Iterator[str]:
    # An app of its own: its registry counts this module's requests and nobody else's.
    with serve(create_app(server_registry)) as url:
        yield url


def scrape(root: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    response = httpx.get(f"{root}/metrics", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            # An empty label (model_alias on a request that named the model itself) is left out.
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le" and v)
            if "le" in sample.labels:
                labels += f",le={sample.labels['le']}"
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_counters_equal_the_requests_and_tokens_served(metrics_url: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{metrics_url}/v1", api_key="unused", max_retries=0, timeout=120)
    messages: Any = [{"role": "user", "content": "Name the capital of France."}]
    prompt = completion = 0
    reasons: dict[str, int] = {}
    for max_tokens in (4, 40):  # one cut by max_tokens, one that may stop
        out = client.chat.completions.create(
            model="smollm2-135m", messages=messages, max_tokens=max_tokens, temperature=0
        )
        assert out.usage is not None
        prompt += out.usage.prompt_tokens
        completion += out.usage.completion_tokens
        reason = out.choices[0].finish_reason
        reasons[reason] = reasons.get(reason, 0) + 1
    stream = client.chat.completions.create(
        model="smollm2-135m",
        messages=messages,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            prompt += chunk.usage.prompt_tokens
            completion += chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].finish_reason:
            reason = chunk.choices[0].finish_reason
            reasons[reason] = reasons.get(reason, 0) + 1
    bad = httpx.post(f"{metrics_url}/v1/chat/completions", json={"model": "smollm2-135m", "messages": []})
    assert bad.status_code == 400
    missing = httpx.post(f"{metrics_url}/v1/chat/completions", json={"model": "nope", "messages": messages})
    assert missing.status_code == 404
    vectors = client.embeddings.create(model="minilm-l6", input=["one", "two", "three"])
    assert len(vectors.data) == 3

    m = scrape(metrics_url)
    smol = "model_name=smollm2-135m"
    for reason, n in reasons.items():
        assert m[f"modelport_request_success_total{{finished_reason={reason},{smol}}}"] == n
    assert sum(v for k, v in m.items() if k.startswith("modelport_request_success_total")) == 3
    assert m[f"modelport_prompt_tokens_total{{{smol}}}"] == prompt
    assert m[f"modelport_generation_tokens_total{{{smol}}}"] == completion
    for histogram in ("time_to_first_token", "e2e_request_latency", "request_queue_time"):
        assert m[f"modelport_{histogram}_seconds_count{{{smol}}}"] == 3
    assert m[f"modelport_inter_token_latency_seconds_count{{{smol}}}"] > 0
    assert m[f"modelport_request_failure_total{{{smol},status=400}}"] == 1
    # An unknown name is no label value: clients could send endless new ones.
    assert m["modelport_request_failure_total{status=404}"] == 1 and not [k for k in m if "nope" in k]
    assert m["modelport_embedding_requests_total{model_name=minilm-l6}"] == 1
    assert m["modelport_embedding_inputs_total{model_name=minilm-l6}"] == 3
    assert m["modelport_embedding_latency_seconds_count{model_name=minilm-l6}"] == 1
    # Live gauges: nothing runs or waits now; the engine has run steps and holds no KV cells.
    assert m[f"modelport_num_requests_running{{{smol}}}"] == 0
    assert m[f"modelport_num_requests_waiting{{{smol}}}"] == 0
    assert m[f"modelport_batch_size_count{{{smol}}}"] > 0
    assert m[f"modelport_kv_cache_usage_perc{{{smol}}}"] == 0


def test_gauges_show_a_request_while_it_runs(metrics_url: str) -> None:
    import threading

    body = {"model": "fake-slow", "messages": [{"role": "user", "content": "x"}], "stream": True}
    seen = threading.Event()

    def run() -> None:
        with httpx.stream("POST", f"{metrics_url}/v1/chat/completions", json=body, timeout=60) as response:
            for _ in response.iter_lines():
                seen.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert seen.wait(30)
    assert scrape(metrics_url)["modelport_num_requests_running{model_name=fake-slow}"] == 1
    thread.join(60)
    assert scrape(metrics_url)["modelport_num_requests_running{model_name=fake-slow}"] == 0


def test_metrics_follow_the_keys_unless_made_public(server_registry: ModelRegistry) -> None:
    with serve(create_app(server_registry, api_keys=["k-123"])) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        scrape(url, {"Authorization": "Bearer k-123"})
    with serve(create_app(server_registry, api_keys=["k-123"], metrics_public=True)) as url:
        scrape(url)

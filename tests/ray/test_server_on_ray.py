"""The server's own suite, run against the Ray backend.

One local cluster for the module. The models are written as config, as a Ray user would: the
``fake`` kind with scripted replies, the real SmolLM2 and MiniLM, and the example RAG chain.
A ``Forwarder`` behind ``SpecCheck`` sits between the clients and Serve's proxy, so every body
and chunk is checked against the OpenAI spec exactly as on the plain server.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.loopback import Forwarder, serve
from tests.ray.conftest import NO_CPU, Cluster, builtin, local_cluster

# The plain suite's client fixtures and its spec check, over this module's base_url.
from tests.server.conftest import (  # noqa: F401
    KEYS,
    _every_response_follows_the_spec,
    aclient,
    client,
)
from tests.server.endpoints.test_chat import (  # noqa: F401
    test_a_bad_threshold_is_a_400_naming_it,
    test_async_client_stream,
    test_auto_mode_calls_and_the_threshold_is_an_extra_body_field,
    test_create_on_the_real_model,
    test_forced_tool_call_on_the_real_model,
    test_json_schema_response_format_validates,
    test_legacy_completions,
    test_logprobs_elsewhere_are_a_clear_400,
    test_logprobs_on_the_real_model,
    test_n_stop_seed_and_max_completion_tokens,
    test_stream_helper_with_tools,
    test_stream_matches_the_whole_answer,
    test_streamed_tool_call_deltas_are_shaped_like_openais,
    test_tool_results_round_trip,
    test_without_include_usage_there_is_no_usage_chunk,
)
from tests.server.endpoints.test_completions import (  # noqa: F401
    test_chains_still_answer_through_their_chat_template,
    test_echo_stop_n_and_seed,
    test_logprobs_line_up_with_the_text_whole_and_streamed,
    test_the_prompt_is_continued_as_raw_text,
    test_what_cannot_be_honoured_is_refused_by_name,
)
from tests.server.endpoints.test_embeddings import (  # noqa: F401
    test_a_chat_model_is_not_an_embedder,
    test_float_format_and_dimensions,
    test_langchain_openai_embeddings,
    test_sdk_default_base64_decodes_to_the_workers_vectors,
    test_token_arrays_are_refused_by_name,
)

# The plain server's tests that need no in-process objects, imported to run here as well.
from tests.server.ops.test_auth import (  # noqa: F401
    test_a_bad_key_is_the_sdks_authentication_error,
    test_a_missing_key_is_401,
    test_every_configured_key_works,
    test_health_and_docs_need_no_key,
)
from tests.server.spec import SpecCheck
from tests.server.test_docs import test_docs_work_offline  # noqa: F401
from tests.server.test_errors import (  # noqa: F401
    test_a_body_that_is_not_an_object_is_400,
    test_a_failure_mid_stream_sends_an_error_event_then_done,
    test_legacy_and_embedding_errors,
    test_malformed_json_is_400,
    test_max_tokens_beyond_the_context_is_clamped_not_refused,
    test_prompt_too_long_is_context_length_exceeded,
    test_the_sdk_raises_on_a_mid_stream_error,
    test_unknown_model_is_404,
    test_unknown_path_is_404_in_openai_shape,
    test_upstream_failures_keep_their_status,
    test_validation_errors_name_the_field,
)
from tests.server.test_health import test_health  # noqa: F401
from tests.server.test_models import (  # noqa: F401
    test_list_and_retrieve,
    test_unknown_model_is_404_model_not_found,
)

FAKE = {
    "name": "fake",
    "kind": "fake",
    "params": {
        "capabilities": {"tools": True, "tool_call_streaming": True, "tool_choice": True, "structured_output": True},
        # The plain suite's scripted fake, written as data.
        "replies": {
            "call get_weather": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            "fail before": {"error": {"status": 503, "message": "the upstream model is down"}},
            "time out": {"error": {"status": 504, "message": "the upstream model did not answer in time"}},
            "fail midway": {
                "text": "partial answer",
                "error": {"status": 502, "message": "connection to the upstream model lost"},
            },
        },
    },
}

CONFIG: dict[str, Any] = {
    "models": [
        FAKE,
        {"name": "fake-nologprobs", "kind": "fake", "params": {"capabilities": {"tools": True}}},
        builtin("smollm2-135m", n_parallel=4),
        builtin("minilm-l6"),
        # One request at a time and one waiting: the rest of a burst is past Serve's queue.
        {
            "name": "narrow",
            "kind": "fake",
            "params": {"responses": ["tick " * 20], "delay": 0.05},
            "ray": {"max_ongoing_requests": 1, "max_queued_requests": 1},
        },
    ],
    "chains": [{"name": "rag-bot", "factory": "examples.rag:build_chain"}],
    "ray": {"ingress": NO_CPU, "deployment_defaults": NO_CPU},
}

KEYED: dict[str, Any] = {
    "models": [{"name": "fake", "kind": "fake"}],
    "server": {"api_keys": list(KEYS), "admin_keys": ["admin-key-5e1d"]},
    "ray": {"app_name": "keyed", "route_prefix": "/keyed", "ingress": NO_CPU, "deployment_defaults": NO_CPU},
}

# Two ingress replicas: stored responses must be shared for any of them to continue a conversation.
SHARED: dict[str, Any] = {
    "models": [{"name": "fake", "kind": "fake"}],
    "server": {"api_keys": list(KEYS)},
    "ray": {
        "app_name": "shared",
        "route_prefix": "/shared",
        "ingress": {**NO_CPU, "num_replicas": 2},
        "deployment_defaults": NO_CPU,
    },
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    from ray import serve as ray_serve

    from modelport.ray import build_app

    with local_cluster() as running:
        ray_serve.run(build_app(CONFIG), name="modelport", route_prefix="/")
        ray_serve.run(build_app(KEYED), name="keyed", route_prefix="/keyed")
        ray_serve.run(build_app(SHARED), name="shared", route_prefix="/shared")
        yield running


@pytest.fixture(scope="module")
def spec_check() -> list[SpecCheck]:
    return []


@pytest.fixture(scope="module")
def base_url(cluster: Cluster, spec_check: list[SpecCheck]) -> Iterator[str]:
    checked = SpecCheck(Forwarder(cluster.url))
    spec_check.append(checked)
    with serve(checked) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def keyed_url(cluster: Cluster) -> str:
    return f"{cluster.url}/keyed/v1"


def test_every_response_was_checked(base_url: str, spec_check: list[SpecCheck]) -> None:
    httpx.get(f"{base_url}/models")
    assert spec_check[0].checked > 0


def test_admin_changes_are_not_implemented_on_ray_and_listing_works(keyed_url: str) -> None:
    root = keyed_url.removesuffix("/v1")
    admin = {"Authorization": "Bearer admin-key-5e1d"}
    listing = httpx.get(f"{root}/admin/models", headers=admin)
    assert listing.status_code == 200 and listing.json()["data"][0]["name"] == "fake"
    body = {"models": [{"name": "fake", "kind": "fake"}]}
    for response in (
        httpx.post(f"{root}/admin/models", json=body, headers=admin),
        httpx.post(f"{root}/admin/models/fake/replace", json=body, headers=admin),
        httpx.delete(f"{root}/admin/models/fake", headers=admin),
        httpx.delete(f"{root}/admin/models/fake/replicas/fake", headers=admin),
    ):
        assert response.status_code == 501, response.text
        error = response.json()["error"]
        assert error["code"] == "not_supported" and "serve deploy" in error["message"]


def test_metrics_count_the_requests_the_ingress_served(keyed_url: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    body = {"model": "fake", "messages": [{"role": "user", "content": "counted"}]}
    assert httpx.post(f"{keyed_url}/chat/completions", json=body, headers=headers).status_code == 200
    text = httpx.get(keyed_url.removesuffix("/v1") + "/metrics", headers=headers).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    served = [
        s.value
        for s in families["modelport_request_success"].samples
        if s.name == "modelport_request_success_total" and s.labels.get("model_name") == "fake"
    ]
    assert served and sum(served) >= 1


def test_ready_once_every_deployment_has_answered(base_url: str) -> None:
    ready = httpx.get(base_url.removesuffix("/v1") + "/health/ready", timeout=30)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_past_max_queued_requests_is_openais_429_with_retry_after(base_url: str) -> None:
    def send(n: int) -> httpx.Response:
        body = {"model": "narrow", "messages": [{"role": "user", "content": f"burst {n}"}], "stream": n % 2 == 0}
        return httpx.post(f"{base_url}/chat/completions", json=body, timeout=60)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(send, range(6)))
    statuses = sorted(r.status_code for r in responses)
    print("statuses of a burst of 6 against 1 running + 1 queued:", statuses)
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    for refused in (r for r in responses if r.status_code == 429):
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and "narrow" in error["message"]
        assert float(refused.headers["retry-after"]) > 0


def test_stored_responses_are_shared_by_every_ingress_replica(cluster: Cluster) -> None:
    import ray

    url = f"{cluster.url}/shared/v1"
    mine, theirs = ({"Authorization": f"Bearer {key}"} for key in KEYS)
    previous = None
    for turn in range(8):
        body = {"model": "fake", "input": f"turn {turn}", "previous_response_id": previous}
        answer = httpx.post(f"{url}/responses", json=body, headers=mine, timeout=30)
        assert answer.status_code == 200, answer.text
        previous = answer.json()["id"]
    # Whichever replica answers: the whole conversation, and only for the key that made it.
    for _ in range(8):
        items = httpx.get(f"{url}/responses/{previous}/input_items", headers=mine, timeout=30)
        assert items.status_code == 200 and items.json()["data"][0]["content"][0]["text"] == "turn 7"
        assert httpx.get(f"{url}/responses/{previous}", headers=theirs, timeout=30).status_code == 404
    # One named, detached actor holds them, whoever made it.
    actor = ray.get_actor("modelport-responses-shared", namespace="modelport")
    assert ray.get(actor.get.remote(previous, "key-1")) is not None  # the first flat key's name
    assert ray.get(actor.get.remote(previous, "key-2")) is None


def test_rerank_and_score_run_on_the_deployments(base_url: str) -> None:
    documents = ["Berlin is the capital of Germany.", "Paris is the capital of France.", "Bread rises."]
    query = "Which city is the capital of France?"
    for model in ("minilm-l6", "smollm2-135m"):
        response = httpx.post(
            f"{base_url}/rerank", json={"model": model, "query": query, "documents": documents}, timeout=120
        )
        assert response.status_code == 200, response.text
        scores = [r["relevance_score"] for r in response.json()["results"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    score = httpx.post(
        f"{base_url}/score", json={"model": "minilm-l6", "text_1": query, "text_2": documents}, timeout=120
    ).json()
    assert [d["index"] for d in score["data"]] == [0, 1, 2]
    assert max(score["data"], key=lambda d: d["score"])["index"] == 1
    refused = httpx.post(f"{base_url}/rerank", json={"model": "minilm-l6", "query": query, "documents": []})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "documents"

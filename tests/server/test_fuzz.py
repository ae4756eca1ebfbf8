"""Fuzzing the server for at least 60 s: no input may cause a 5xx or a hang.

Bodies are drawn from the server's own OpenAPI document: each endpoint's fields, filled
with plausible values, arbitrary JSON, or left out, plus unknown fields and raw garbage.
Every answer must also follow the OpenAI spec, or under /v1/messages Anthropic's SDK types
(checked by the autouse fixture).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

SECONDS = float(os.environ.get("MODELPORT_FUZZ_SECONDS", "60"))
MODELS = ["fake", "fake-nologprobs", "fake-embeddings", "minilm-l6", "no-such-model", ""]

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=12)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
text = st.text(max_size=40)
content = (
    text
    | st.none()
    | st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "audio"]), "text": text}), max_size=2
    )
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "bot"])},
    optional={
        "content": content,
        "tool_call_id": text,
        "name": text,
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {
                    "id": text,
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries({"name": text, "arguments": text | anything}),
                }
            ),
            max_size=2,
        ),
    },
)
tool = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["function", "custom"]),
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["get_weather", ""]) | text},
            optional={"parameters": st.just({"type": "object", "properties": {"city": {"type": "string"}}}) | anything},
        ),
    }
)

# Plausible values by field name; any field may also get arbitrary JSON.
PLAUSIBLE: dict[str, Any] = {
    "model": st.sampled_from(MODELS),
    "messages": st.lists(message, max_size=3),
    "temperature": st.floats(-1, 3),
    "top_p": st.floats(-0.5, 1.5),
    "max_tokens": st.integers(-5, 50),
    "max_completion_tokens": st.integers(-5, 50),
    "n": st.integers(-1, 3),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
    "stop": text | st.lists(text, max_size=3),
    "seed": st.integers(-10, 10**12),
    "tools": st.lists(tool, max_size=2),
    "tool_choice": st.sampled_from(["auto", "none", "required", "any", "get_weather"])
    | st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": text})}),
    "response_format": st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema", "xml"])},
        optional={"json_schema": st.fixed_dictionaries({"name": text}, optional={"schema": anything})},
    ),
    "logprobs": st.booleans() | st.integers(-1, 5),
    "top_logprobs": st.integers(-2, 25),
    "prompt": text | st.lists(text, max_size=3) | st.lists(st.integers(0, 100), max_size=3),
    "input": text | st.lists(text, max_size=4) | st.lists(st.integers(0, 100), max_size=3),
    "encoding_format": st.sampled_from(["float", "base64", "hex"]),
    "dimensions": st.integers(-2, 600),
}


def _body(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    fields = {
        name: (PLAUSIBLE.get(name, anything) | anything) if name not in ("model", "messages") else PLAUSIBLE[name]
        for name in schema.get("properties", {})
    }
    required = [f for f in schema.get("required", []) if f in fields]
    optional = {k: v for k, v in fields.items() if k not in required}
    body = st.fixed_dictionaries({k: fields[k] for k in required}, optional=optional)
    return body | st.dictionaries(st.text(max_size=8), anything, max_size=3) | anything


# A well-formed body per endpoint: the fuzz also perturbs one or two of its fields, so that it
# reaches past validation into the workers (a body drawn wholly at random almost never does).
WELL_FORMED: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "fake", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/completions": {"model": "fake", "prompt": "hi"},
    "/v1/embeddings": {"model": "fake-embeddings", "input": "hi"},
    "/v1/responses": {"model": "fake", "input": "hi"},
    # Counting needs a tokenizer (the fake model has none); it generates nothing, so it is cheap.
    "/v1/responses/input_tokens": {"model": "smollm2-135m", "input": "hi"},
    "/v1/messages": {"model": "fake", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages/count_tokens": {"model": "smollm2-135m", "messages": [{"role": "user", "content": "hi"}]},
}


def _perturbed(path: str, schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    names = sorted(schema.get("properties", {}))
    field = st.sampled_from(names).flatmap(lambda name: st.tuples(st.just(name), PLAUSIBLE.get(name, anything)))
    return st.lists(field, max_size=2).map(lambda change: {**WELL_FORMED[path], **dict(change)})


def test_fuzz_the_servers_own_openapi(base_url: str) -> None:
    root = base_url.removesuffix("/v1")
    document = httpx.get(f"{root}/openapi.json").json()
    components = document["components"]["schemas"]
    posts = {
        path: op["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path, op in document["paths"].items()
        if "post" in op
    }
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"} <= set(posts)
    cases = st.one_of(
        *[
            st.tuples(st.just(path), _body(schema, components).map(lambda b: json.dumps(b).encode()))
            for path, schema in posts.items()
        ],
        *[
            st.tuples(st.just(path), _perturbed(path, schema, components).map(lambda b: json.dumps(b).encode()))
            for path, schema in posts.items()
            if path in WELL_FORMED
        ],
        st.tuples(st.sampled_from(sorted(posts)), st.binary(max_size=40)),
    )
    sent: list[tuple[str, int]] = []
    client = httpx.Client(base_url=root, timeout=30)

    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases, model_id=st.text(max_size=10))
    def one(case: tuple[str, bytes], model_id: str) -> None:
        path, raw = case
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code < 500, (path, raw[:300], response.text[:300])
        if response.status_code >= 400 and path.startswith("/v1/messages"):  # Anthropic's shape
            error = response.json()
            assert error["type"] == "error" and set(error["error"]) == {"type", "message"}, error
        elif response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        sent.append((path, response.status_code))
        listed = client.get(f"/v1/models/{quote(model_id, safe='')}")
        assert listed.status_code in (200, 404), listed.text

    # A seed per round: Hypothesis derandomizes under CI (its "ci" profile), which would send
    # the same hundred bodies every round; numbered seeds keep the run reproducible and varied.
    started, round_ = time.monotonic(), 0
    while time.monotonic() - started < SECONDS:
        seed(round_)(one)()
        round_ += 1
    client.close()
    assert len(sent) > 500, "too few requests to call it a fuzz run"
    counts = Counter(status for _, status in sent)
    assert counts[200] and counts[400], counts
    assert {p for p, status in sent if status == 200} >= set(WELL_FORMED) & set(posts), Counter(sent)

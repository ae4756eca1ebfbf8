"""``/admin``: add, drain and replace replicas while serving; only admin keys get in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelport.server import create_app
from modelport.workers import ModelEntry, ModelRegistry
from tests.loopback import serve

ADMIN, USER = "admin-key-91", "user-key-17"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    registry = ModelRegistry([ModelEntry("echo", "fake", {"delay": 0.01}), ModelEntry("plain", "fake")])
    with serve(create_app(registry, api_keys=[USER], admin_keys=[ADMIN], drain_timeout_s=5)) as root:
        yield root
    registry.close()


def admin(method: str, url: str, key: str | None = ADMIN, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def chat(root: str, model: str = "echo", text: str = "hi") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{root}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {USER}"}, timeout=60)


def listing(root: str) -> dict[str, list[dict[str, Any]]]:
    data = admin("GET", f"{root}/admin/models").json()["data"]
    return {m["name"]: m["replicas"] for m in data}


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


ROUTES = [
    ("GET", "/admin/models", None),
    ("POST", "/admin/models", {"models": [{"name": "x", "kind": "fake"}]}),
    ("DELETE", "/admin/models/plain", None),
    ("DELETE", "/admin/models/echo/replicas/echo-0", None),
    ("POST", "/admin/models/echo/replace", {"models": [{"name": "echo", "kind": "fake"}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_admin_route_refuses_no_key_and_api_keys(url: str, method: str, path: str, body: Any) -> None:
    for key, status in ((None, 401), (USER, 403), ("wrong", 401)):
        response = admin(method, f"{url}{path}", key, json=body)
        assert response.status_code == status, (key, response.text)
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_admin_is_not_mounted_without_admin_keys() -> None:
    with serve(create_app(ModelRegistry([ModelEntry("echo", "fake")]))) as root:
        assert admin("GET", f"{root}/admin/models").status_code == 404


@pytest.mark.parametrize(
    ("entry", "param"),
    [
        ({"name": "y", "kind": "lama-cpp"}, "models[0].kind"),
        ({"name": "y", "kind": "llama-cpp", "params": {"model_path": "/nowhere.gguf"}}, "models[0].params.model_path"),
        ({"name": "y", "kind": "fake", "parms": {}}, "models[0].parms"),
    ],
)
def test_a_bad_entry_is_a_400_naming_the_field_and_serving_goes_on(url: str, entry: Any, param: str) -> None:
    response = admin("POST", f"{url}/admin/models", json={"models": [entry]})
    assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text
    assert chat(url).status_code == 200


def test_add_then_drain_a_replica(url: str) -> None:
    added = admin("POST", f"{url}/admin/models", json={"models": [{"name": "echo", "kind": "fake", "replicas": 2}]})
    assert added.status_code == 202
    wait_for(lambda: [r["state"] for r in listing(url)["echo"]].count("ready") == 3)
    assert [chat(url).status_code for _ in range(6)] == [200] * 6
    ids = [r["id"] for r in listing(url)["echo"]]
    drained = admin("DELETE", f"{url}/admin/models/echo/replicas/{ids[-1]}")
    assert drained.status_code == 202
    # The answer shows the state the change left: that replica draining, the others ready.
    states = {r["id"]: r["state"] for r in drained.json()["data"][0]["replicas"]}
    assert states[ids[-1]] in ("draining", "stopped") and states[ids[0]] == "ready"
    wait_for(lambda: len(listing(url)["echo"]) == 2)
    assert chat(url).status_code == 200


def test_replace_under_load_refuses_and_fails_nothing(url: str) -> None:
    before = {r["id"] for r in listing(url)["echo"]}
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            statuses.append(chat(url).status_code)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(0.5)
    new = {"models": [{"name": "echo", "kind": "fake", "params": {"delay": 0.01}, "id": "echo-v2", "replicas": 2}]}
    replaced = admin("POST", f"{url}/admin/models/echo/replace", json=new)
    assert replaced.status_code == 202
    # The new replicas are already listed (loading or ready), beside the old ones still serving.
    listed = {r["id"]: r["state"] for r in replaced.json()["data"][0]["replicas"]}
    assert {"echo-v2-0", "echo-v2-1"} <= set(listed) and before <= set(listed), listed
    assert {listed[i] for i in before} == {"ready"}
    wait_for(lambda: {r["id"] for r in listing(url)["echo"]} == {"echo-v2-0", "echo-v2-1"})
    time.sleep(0.5)
    stop.set()
    for thread in clients:
        thread.join()
    assert statuses and set(statuses) == {200}, [s for s in statuses if s != 200][:5]
    assert not before & {r["id"] for r in listing(url)["echo"]}


def test_drain_a_whole_model(url: str) -> None:
    assert chat(url, "plain").status_code == 200
    drained = admin("DELETE", f"{url}/admin/models/plain")
    assert drained.status_code == 202
    assert [r["state"] for r in drained.json()["data"][0]["replicas"]] == ["draining"]
    wait_for(lambda: "plain" not in listing(url))
    assert chat(url, "plain").status_code == 404
    assert admin("DELETE", f"{url}/admin/models/ghost").status_code == 404

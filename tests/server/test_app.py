"""``create_app``: what the assembled app serves, and what its switches turn off."""

from __future__ import annotations


def test_the_playground_is_served_and_can_be_turned_off() -> None:
    from fastapi.testclient import TestClient

    from modelport.server import create_app
    from modelport.workers import ModelEntry, ModelRegistry

    registry = ModelRegistry([ModelEntry("echo", "fake")])
    with TestClient(create_app(registry)) as client:
        page = client.get("/playground")
        assert page.status_code == 200 and 'data-testid="send"' in page.text
        assert client.get("/", follow_redirects=False).headers["location"] == "/playground"
    with TestClient(create_app(registry, playground=False)) as client:
        assert client.get("/playground").status_code == 404

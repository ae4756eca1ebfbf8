"""The offline docs: ``/docs`` and its assets served locally, and the OpenAPI schema."""

from __future__ import annotations

import re

import httpx


def test_docs_work_offline(base_url: str) -> None:
    root = base_url.removesuffix("/v1")
    page = httpx.get(f"{root}/docs")
    assert page.status_code == 200
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/") for link in links), links  # nothing from a CDN
    for link in links:
        assert httpx.get(root + link).status_code == 200, link
    schema = httpx.get(f"{root}/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"]

"""One scripted fake upstream on loopback for the remote workers' wire tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loopback import Upstream, serve


@pytest.fixture(scope="session")
def _upstream_server() -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    with serve(upstream.app) as url:
        yield upstream, url


@pytest.fixture
def upstream(_upstream_server: tuple[Upstream, str]) -> Upstream:
    upstream, _ = _upstream_server
    upstream.reset()
    return upstream


@pytest.fixture
def upstream_url(_upstream_server: tuple[Upstream, str]) -> str:
    return _upstream_server[1]

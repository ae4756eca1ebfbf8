"""Sizes and keep-alive durations as config files and requests write them."""

from __future__ import annotations

import math

import pytest

from modelport.core.errors import BadRequestError
from modelport.workers.residency import parse_keep_alive, parse_size
from modelport.workers.residency.policy import total_memory


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("6GiB", 6 * 1024**3),
        ("512MB", 512 * 1000**2),
        ("1.5gib", int(1.5 * 1024**3)),
        (1024, 1024),
        ("300 MiB", 300 * 1024**2),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_a_percentage_is_of_the_machine_s_ram() -> None:
    assert parse_size("50%") == total_memory() // 2


@pytest.mark.parametrize("bad", ["lots", "6 parsecs", "0", "150%", "-1GiB", True])
def test_bad_sizes_name_the_field(bad: object) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_size(bad, param="server.memory_budget")  # type: ignore[arg-type]
    assert caught.value.param == "server.memory_budget"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), (0, 0), ("0", 0), (-1, math.inf), ("-1", math.inf), (None, None)],
)
def test_keep_alive(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds  # type: ignore[arg-type]


def test_a_bad_keep_alive_is_named() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_keep_alive("soon")
    assert caught.value.param == "keep_alive"

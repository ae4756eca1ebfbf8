"""The common token prefix both batching engines share work by."""

from __future__ import annotations

import pytest

from modelport.workers.engines.prefix import common_prefix


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [([1, 2, 3], [1, 2, 4], 2), ([1, 2], [1, 2, 3], 2), ([5], [6], 0), ([], [1], 0), ((1, 2, 3), [1, 2, 3], 3)],
)
def test_common_prefix_counts_the_leading_ids_both_hold(first: list[int], second: list[int], expected: int) -> None:
    assert common_prefix(first, second) == expected

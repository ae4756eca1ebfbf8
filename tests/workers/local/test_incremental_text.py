"""Incremental text: stop strings split across pieces, and exact detokenising."""

from hypothesis import given
from hypothesis import strategies as st

from modelport.workers.local.incremental_text import ByteDecoder, StopMatcher


def _run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        out.append(matcher.feed(piece))
        if matcher.stopped:
            break
    out.append(matcher.flush())
    return "".join(out), matcher.stopped


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


@given(st.text(alphabet="abcXYé", max_size=40), st.lists(st.integers(0, 100), max_size=10))
def test_stop_matches_reference_for_any_split(text: str, cuts: list[int]) -> None:
    stops = ["XY", "abc"]
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    expected = text[: min(hits)] if hits else text
    assert _run(stops, _split(text, cuts)) == (expected, bool(hits))


def test_stop_split_across_pieces() -> None:
    assert _run(["Paris"], ["The capital is Pa", "ri", "s."]) == ("The capital is ", True)


def test_near_miss_is_released() -> None:
    assert _run(["Paris"], ["Par", "k"]) == ("Park", False)


def test_byte_decoder_never_splits_a_character() -> None:
    data = "héllo 🙂 世界".encode()
    decoder = ByteDecoder()
    pieces = [decoder.feed(data[i : i + 1]) for i in range(len(data))]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + decoder.flush() == "héllo 🙂 世界"

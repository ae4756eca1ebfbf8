"""Incremental text helpers for local workers: stop strings and exact detokenising."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence

__all__ = ["ByteDecoder", "StopMatcher", "TokenDecoder"]


class StopMatcher:
    """Finds stop strings in streamed text, even when one is split across pieces.

    Text that could still turn out to begin a stop string is held back until it
    is known not to; the stop string itself is never emitted.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self._stops), default=0)
        self._pending = ""
        self.stopped = False
        self.matched: str | None = None  # the stop string that ended the text

    def feed(self, text: str) -> str:
        """Adds ``text``; returns what is safe to emit now."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buf = self._pending + text
        found = [(i, s) for s in self._stops if (i := buf.find(s)) >= 0]
        cut = min(found)[0] if found else -1
        if cut >= 0:
            self.matched = min(found)[1]
            self.stopped = True
            self._pending = ""
            return buf[:cut]
        keep = 0
        # Hold back the longest tail of ``buf`` that is a prefix of some stop string.
        for n in range(min(len(buf), self._longest - 1), 0, -1):
            tail = buf[-n:]
            if any(s.startswith(tail) for s in self._stops):
                keep = n
                break
        self._pending = buf[len(buf) - keep :]
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """Returns the held-back text once the stream has ended."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


class ByteDecoder:
    """Turns a stream of byte pieces into text without splitting a UTF-8 character."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """Decodes what is complete so far."""
        return self._decoder.decode(data)

    def flush(self) -> str:
        """Decodes whatever is left, replacing an incomplete character."""
        return self._decoder.decode(b"", final=True)


class TokenDecoder:
    """Detokenises token ids one at a time so the deltas join to the full decode.

    It decodes a short window of recent tokens and emits only the new suffix, holding
    back while the window ends in an incomplete character (U+FFFD).
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def feed(self, token_id: int) -> str:
        """Adds one token id; returns the new text it completes."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        if len(text) > len(prefix_text) and not text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """Returns what is still held back at the end."""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return text[len(prefix_text) :]

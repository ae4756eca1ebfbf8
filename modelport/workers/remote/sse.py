"""Server-sent events, decoded line by line as the WHATWG spec describes."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event: its type, data, id, and the comment lines seen before it."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    comments: list[str] = field(default_factory=list)


class SSEDecoder:
    """Turns lines (without their line endings) into events; a blank line dispatches."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._comments: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """Consumes one line and returns the event it completes, if any."""
        if not line:
            return self.flush()
        if line.startswith(":"):
            self._comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def flush(self) -> ServerSentEvent | None:
        """Dispatches what is buffered (also called at the end of the stream)."""
        if not self._data and self._event is None:
            self._comments = []
            return None
        event = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id, self._comments)
        self._event, self._data, self._comments = None, [], []
        return event

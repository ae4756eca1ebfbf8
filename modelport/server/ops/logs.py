"""Server logging: every line carries its request id; one access line per request, text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal

from modelport.server.ops.tracking import GENERATING, REQUEST_ID, SCORING, RequestRecord

__all__ = ["ACCESS_LOGGER", "AccessLog", "JsonFormatter", "RequestIdFilter", "configure_logging"]

ACCESS_LOGGER = "modelport.access"

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the request being served, or ``-``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Sets ``record.request_id`` unless the caller gave one; never drops a record."""
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an access line's fields sit at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "message": record.getMessage(),
        }
        out.update(getattr(record, "access", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


class AccessLog:
    """Writes one line per finished request on the ``modelport.access`` logger."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)

    def __call__(self, record: RequestRecord) -> None:
        """Logs ``record``'s line (its fields also go to a JSON formatter as ``access``)."""
        fields = {
            "method": record.method,
            "path": record.path,
            "status": record.status,
            "model": record.model or None,
            "requested_model": record.requested_model,  # the alias sent, when it was one
            "key": record.key_name or None,
            "prompt_tokens": record.prompt_tokens if record.endpoint else None,
            "completion_tokens": record.completion_tokens if record.endpoint else None,
            "ttft_ms": _ms(record.ttft_s) if record.endpoint in GENERATING else None,
            "total_ms": _ms(record.total_s),
            "finish_reason": record.finish_reason,
            "pairs": record.inputs if record.endpoint in SCORING else None,
        }
        if record.error:
            fields["error"] = record.error
        text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and k not in ("method", "path"))
        self.logger.info(
            "%s %s %s",
            record.method,
            record.path,
            text,
            extra={"access": fields, "request_id": record.id},
        )


def configure_logging(level: str = "info", fmt: Literal["text", "json"] = "text") -> None:
    """Sends modelport's and uvicorn's logs to stderr in one format, each line with its request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    for name in ("modelport", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False

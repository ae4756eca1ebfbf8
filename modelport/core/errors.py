"""Typed errors shared by every layer: every public error class of modelport lives here.

Each error carries what a caller needs to act on it (the offending field, the
limits, the known model names) and an HTTP-ish status so the server can map it
to OpenAI's error shape without a lookup table::

    ModelPortError (500)
    ├── BadRequestError (400; also ValueError)
    │   ├── ContextLengthExceededError
    │   ├── ConfigError               a config file or admin body that does not fit the schema
    │   └── ContentFilteredError      a provider's content filter refused the input or output
    ├── ModelNotFoundError (404; also LookupError)
    ├── NotFoundError (404; also LookupError)  another resource: a stored response
    ├── AuthenticationError (401)
    ├── PermissionDeniedError (403)
    ├── RateLimitedError (429)
    ├── NotSupportedError (501)
    ├── UpstreamUnavailableError (502, or the upstream's status)
    ├── ModelUnavailableError (503)
    ├── ShuttingDownError (503)       the server drains and takes no new work
    ├── TimeoutError (504; also builtins.TimeoutError)
    └── EngineError (500)             a local engine failed (llama.cpp could not decode)
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "EngineError",
    "ModelNotFoundError",
    "ModelPortError",
    "ModelUnavailableError",
    "NotFoundError",
    "NotSupportedError",
    "PermissionDeniedError",
    "OverloadedError",
    "RateLimitedError",
    "ShuttingDownError",
    "TimeoutError",
    "UpstreamUnavailableError",
]


class ModelPortError(Exception):
    """Base class of every error raised by modelport.

    Attributes:
        status_code: The HTTP status that best describes the error.
        code: A short machine-readable code, as in OpenAI's error objects.
        error_type: OpenAI's ``type`` field for the error.
    """

    status_code: int = 500
    code: str | None = None
    error_type: str = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take their own constructor arguments, so the default (``cls(*args)``) cannot
        # rebuild them; the type and attributes can. Errors then cross processes (Ray replicas)
        # with their status, code and fields intact.
        return _rebuild, (type(self), self.message, dict(self.__dict__))


def _rebuild(cls: type[ModelPortError], message: str, state: dict[str, Any]) -> ModelPortError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class BadRequestError(ModelPortError, ValueError):
    """The request is invalid; ``param`` names the offending field."""

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        if param is not None and param not in message:
            message = f"{param}: {message}"
        super().__init__(message)
        self.param = param
        if code is not None:
            self.code = code


class ContextLengthExceededError(BadRequestError):
    """The prompt (plus the requested completion) does not fit the context window.

    ``param`` names ``max_tokens`` when the prompt alone fits, else the prompt's field
    (``prompt_param``: ``messages`` on chat, ``prompt`` on text completions).
    """

    code = "context_length_exceeded"

    def __init__(
        self, *, prompt_tokens: int, max_context: int, max_tokens: int | None = None, prompt_param: str = "messages"
    ) -> None:
        wanted = f"{prompt_tokens} prompt tokens"
        if max_tokens is not None:
            wanted += f" plus max_tokens={max_tokens}"
        # The prompt alone fitting means max_tokens is the field to change.
        fits = max_tokens is not None and prompt_tokens < max_context
        super().__init__(
            f"This model's maximum context length is {max_context} tokens, but the request needs {wanted}.",
            param="max_tokens" if fits else prompt_param,
        )
        self.prompt_tokens = prompt_tokens
        self.max_context = max_context
        self.max_tokens = max_tokens


class ModelNotFoundError(ModelPortError, LookupError):
    """No model is registered under ``name``; ``known`` lists those that are."""

    status_code = 404
    code = "model_not_found"
    error_type = "invalid_request_error"

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "(none)"
        super().__init__(f"The model {name!r} does not exist. Known models: {listing}.")


class NotFoundError(ModelPortError, LookupError):
    """A resource other than a model does not exist (or belongs to another key); ``param`` names it."""

    status_code = 404
    code = "not_found"
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        if code is not None:
            self.code = code


class ModelUnavailableError(ModelPortError):
    """A registered model cannot serve: it failed to load (a server-side problem, never the caller's)."""

    status_code = 503
    code = "model_unavailable"
    error_type = "server_error"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"The model {name!r} is unavailable: {reason}")
        self.name = name
        self.reason = reason
        self.retry_after: float | None = None


class NotSupportedError(ModelPortError):
    """The server's backend does not do this (admin changes on the Ray backend, done by ``serve deploy``)."""

    status_code = 501
    code = "not_supported"
    error_type = "server_error"


class AuthenticationError(ModelPortError):
    """The credentials were missing or rejected."""

    status_code = 401
    code = "invalid_api_key"
    error_type = "authentication_error"


class PermissionDeniedError(ModelPortError):
    """The credentials are valid but do not allow this (an API key on an admin route)."""

    status_code = 403
    code = "permission_denied"
    error_type = "permission_error"


class RateLimitedError(ModelPortError):
    """Too many requests; ``retry_after`` says how long to wait, in seconds, if known."""

    status_code = 429
    code = "rate_limit_exceeded"
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OverloadedError(RateLimitedError):
    """The model's queue is full: every slot busy and no room to wait (not the key's own limit).

    A 429 on the OpenAI endpoints, as OpenAI does; Anthropic's API calls it 529 ``overloaded_error``.
    """


class UpstreamUnavailableError(ModelPortError):
    """A remote backend failed or could not be reached."""

    status_code = 502
    code = "upstream_unavailable"
    error_type = "api_error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class TimeoutError(ModelPortError, builtins.TimeoutError):
    """The backend did not answer in time."""

    status_code = 504
    code = "timeout"
    error_type = "api_error"


class ConfigError(BadRequestError):
    """The config file is unreadable or invalid; ``param`` is the first offending key's path.

    ``problems`` lists every problem found, each as ``(path, message)``.
    """

    code = "invalid_config"

    def __init__(self, message: str, *, param: str | None = None, problems: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message, param=param)
        self.problems = list(problems) or [(param or "config", message)]


class ContentFilteredError(BadRequestError):
    """A provider's content filter (DashScope's data inspection) refused the input or the output.

    Remote workers turn it into finish reason ``content_filter``, as OpenAI reports it.
    """

    code = "content_filter"


class ShuttingDownError(ModelPortError):
    """The server is draining or stopping and takes no new work."""

    status_code = 503
    code = "server_shutting_down"
    error_type = "server_error"

    def __init__(self, message: str = "The server is shutting down; retry on another instance.") -> None:
        super().__init__(message)
        self.retry_after = 1.0


class EngineError(ModelPortError):
    """A local engine failed: llama.cpp could not create a context or decode a batch."""

"""Checks a model entry's ``params`` against what its kind accepts, before anything loads.

A kind declares its parameters by its constructor's signature. A kind that passes extra
keywords on to a library (``llama-cpp`` to ``llama_cpp.Llama``) names them with an
``extra_params()`` classmethod, since the library may ignore a misspelt keyword silently. A kind
may add a ``check_params(params)`` classmethod for what a signature cannot say (a file that
must exist); it raises ``BadRequestError`` with ``param`` set to the parameter's name.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Collection, Mapping
from typing import Any

from modelport.core.errors import BadRequestError

__all__ = ["check_params", "did_you_mean"]


def did_you_mean(word: str, known: Collection[str]) -> str:
    """``"; did you mean 'x'?"`` when ``word`` is close to one of ``known``, else ``""``."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _signature(factory: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return None


def check_params(factory: Any, params: Mapping[str, Any], *, kind: str, where: str) -> None:
    """Refuses unknown or missing parameters of ``factory`` by their path under ``where``.

    Args:
        factory: The kind's worker class (or factory function).
        params: The entry's ``params`` mapping.
        kind: The kind's name, for messages.
        where: The entry's path in the config, such as ``models[2]``.

    Raises:
        BadRequestError: Naming ``{where}.params.{key}``.
    """
    signature = _signature(factory)
    if signature is not None:
        named = {
            name: p
            for name, p in signature.parameters.items()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        }
        takes_more = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        extra = getattr(factory, "extra_params", None)
        known: set[str] | None = set(named)
        if takes_more:
            more = extra() if callable(extra) else None
            known = None if more is None else known | set(more)  # type: ignore[operator]
        if known is not None:
            for key in params:
                if key not in known:
                    raise BadRequestError(
                        f"unknown parameter {key!r} for kind {kind!r}{did_you_mean(key, known)}",
                        param=f"{where}.params.{key}",
                    )
        for name, p in named.items():
            if p.default is inspect.Parameter.empty and name not in params:
                raise BadRequestError(f"kind {kind!r} needs this parameter", param=f"{where}.params.{name}")
    hook = getattr(factory, "check_params", None)
    if callable(hook):
        try:
            hook(params)
        except BadRequestError as error:
            key = error.param or ""
            raise BadRequestError(error.message.removeprefix(f"{key}: "), param=f"{where}.params.{key}") from None

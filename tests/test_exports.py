"""Each public module's ``__all__`` is exactly what it exports, as httpx's own test checks."""

from __future__ import annotations
import __future__

import importlib
import inspect
import pkgutil
import types

import pytest

import modelport

# The public API: everything public these modules hold is in ``__all__``, and nothing else is.
API = [
    "modelport",
    "modelport.core",
    "modelport.workers",
    "modelport.integrations.langchain",
    "modelport.integrations.llama_index",
    "modelport.server",
    "modelport.ray",
    "modelport.config",
]
# Names the API modules may hold beside ``__all__``: dunder-like metadata.
ALLOWED_EXTRA = {"__version__"}


def _public_modules() -> list[str]:
    names = ["modelport"]
    for info in pkgutil.walk_packages(modelport.__path__, "modelport."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _held(module: types.ModuleType) -> set[str]:
    """Public names a module holds, less submodules and ``from __future__`` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not isinstance(value, __future__._Feature)
    }


@pytest.mark.parametrize("name", API)
def test_api_modules_export_exactly_what_they_hold(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    # A lazily served name (``modelport.FakeChatWorker``) comes from the module's __getattr__.
    lazy = exported - set(vars(module))
    assert all(getattr(module, n) is not None for n in lazy)
    assert exported - lazy == _held(module) - ALLOWED_EXTRA


@pytest.mark.parametrize("name", _public_modules())
def test_every_public_module_lists_what_it_defines(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not hold: {missing}"
    defined = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert defined <= set(exported), f"{name} defines but does not export: {sorted(defined - set(exported))}"


def test_the_api_modules_are_those_item_nine_names() -> None:
    # Guards the list above from silently shrinking.
    assert len(API) == 8 and all(importlib.import_module(n).__all__ for n in API)

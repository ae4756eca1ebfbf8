"""The kind registry (entry points, ``@register_worker``) and the model registry."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelport.core import BadRequestError, ModelNotFoundError
from modelport.workers import KindRegistry, ModelEntry, ModelRegistry, register_worker
from modelport.workers.kinds.fake import FakeChatWorker


def test_unknown_model_lists_known_names() -> None:
    registry = ModelRegistry.builtin()
    with pytest.raises(ModelNotFoundError) as info:
        registry.load("gpt-17")
    assert info.value.known == ["gemma3-270m", "minilm-l6", "smollm2-135m", "smollm2-135m-hf"]
    assert "smollm2-135m" in str(info.value)


def test_decorator_registers_a_kind_and_worker_loads_once() -> None:
    built: list[dict] = []

    @register_worker("counting-test-kind")
    class Counting(FakeChatWorker):
        def __init__(self, **params: object) -> None:
            built.append(params)
            super().__init__()

    registry = ModelRegistry([ModelEntry("m", "counting-test-kind", {"x": 1})])
    first = registry.load("m")
    assert registry.load("m") is first
    assert built == [{"x": 1}]


def test_builtin_kinds_are_listed_without_importing_them() -> None:
    code = (
        "import sys; from modelport.workers import worker_kinds; names = worker_kinds.names(); "
        "assert {'fake', 'transformers', 'llama-cpp', 'sentence-transformers'} <= set(names), names; "
        "assert 'modelport.workers.kinds.llama_cpp' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_kind_is_a_named_error() -> None:
    registry = ModelRegistry([ModelEntry("m", "no-such-kind")])
    with pytest.raises(BadRequestError) as info:
        registry.load("m")
    assert info.value.param == "kind" and "llama-cpp" in str(info.value)


def test_entry_point_kind_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real installed distribution, as a third-party package would ship it.
    (tmp_path / "mp_plugin_demo.py").write_text(
        textwrap.dedent(
            """
            from modelport.workers.kinds.fake import FakeChatWorker

            class PluginWorker(FakeChatWorker):
                pass
            """
        )
    )
    dist = tmp_path / "mp_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mp-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modelport.workers]\nplugin-demo = mp_plugin_demo:PluginWorker\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = KindRegistry()
    assert "plugin-demo" in kinds.names()
    registry = ModelRegistry([ModelEntry("p", "plugin-demo")], kinds=kinds)
    assert type(registry.load("p")).__name__ == "PluginWorker"
    sys.modules.pop("mp_plugin_demo", None)


def test_embedder_on_a_chat_model_is_refused() -> None:
    registry = ModelRegistry([ModelEntry("echo", "fake")])
    with pytest.raises(BadRequestError) as info:
        registry.embedder("echo")
    assert info.value.param == "model"


def test_every_builtin_kind_comes_through_the_one_entry_point_group() -> None:
    from importlib.metadata import entry_points

    from modelport.workers import ENTRY_POINT_GROUP

    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    builtins = {"fake", "fake-embeddings", "transformers", "llama-cpp", "sentence-transformers"}
    builtins |= {"openai", "dashscope", "replica-set", "ray-serve", "runnable"}
    assert builtins <= declared
    kinds = KindRegistry()
    assert kinds.get("ray-serve").__name__ == "ServeHandleWorker"  # type: ignore[attr-defined]
    assert kinds.get("runnable").__name__ == "RunnableWorker"  # type: ignore[attr-defined]
    assert kinds.get("fake").__name__ == "FakeChatWorker"  # type: ignore[attr-defined]

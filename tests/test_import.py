"""Importing modelport loads no heavy framework and changes nothing in the process."""

import json
import os
import subprocess
import sys

HEAVY = [
    "torch",
    "transformers",
    "llama_cpp",
    "fastapi",
    "langchain",
    "langchain_core",
    "llama_index",
    "sentence_transformers",
    "ray",
]


def test_import_modelport_stays_light() -> None:
    code = (
        "import sys, json, modelport, modelport.workers, modelport.core, modelport.config, modelport.ray; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_fake_worker_is_reachable_from_the_top() -> None:
    import modelport

    assert modelport.FakeChatWorker.__name__ == "FakeChatWorker"


def _python(code: str, **env: str) -> str:
    """Runs ``code`` in a fresh interpreter without Ray's usage variable, plus ``env``; its output."""
    base = {k: v for k, v in os.environ.items() if k != "RAY_USAGE_STATS_ENABLED"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**base, **env})
    return out.stdout.strip()


def test_no_import_of_modelport_sets_an_environment_variable() -> None:
    code = (
        "import os; before = dict(os.environ); import modelport, modelport.config, modelport.ray, "
        "modelport.ray.app, modelport.ray.cluster, modelport.server; "
        "print(sorted(set(os.environ.items()) ^ set(before.items())))"
    )
    assert _python(code) == "[]"


def test_building_a_ray_app_turns_usage_statistics_off_unless_set() -> None:
    code = (
        "import os\nfrom modelport.ray import build_app\n"
        "try:\n    build_app({'models': []})\nexcept Exception:\n    pass\n"
        "print(os.environ['RAY_USAGE_STATS_ENABLED'])"
    )
    assert _python(code) == "0"
    assert _python(code, RAY_USAGE_STATS_ENABLED="1") == "1"

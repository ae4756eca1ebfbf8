import json
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


def test_modelport_ray_turns_usage_statistics_off_unless_set() -> None:
    code = "import os, modelport.ray; print(os.environ['RAY_USAGE_STATS_ENABLED'])"
    env = {k: v for k, v in __import__("os").environ.items() if k != "RAY_USAGE_STATS_ENABLED"}
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert off.stdout.strip() == "0"
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "RAY_USAGE_STATS_ENABLED": "1"},
    )
    assert chosen.stdout.strip() == "1"

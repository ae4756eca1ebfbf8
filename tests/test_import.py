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
]


def test_import_modelport_stays_light() -> None:
    code = (
        "import sys, json, modelport, modelport.workers, modelport.core; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_fake_worker_is_reachable_from_the_top() -> None:
    import modelport

    assert modelport.FakeChatWorker.__name__ == "FakeChatWorker"

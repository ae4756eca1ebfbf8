import subprocess
import sys


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport.cli", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


def test_models_lists_kinds_and_capabilities() -> None:
    out = run("models")
    assert out.returncode == 0
    line = next(li for li in out.stdout.splitlines() if li.startswith("minilm-l6"))
    assert "sentence-transformers" in line and "embeddings" in line
    assert "llama-cpp" in out.stdout and "transformers" in out.stdout


def test_chat_prompt_prints_one_reply() -> None:
    out = run(
        "chat",
        "smollm2-135m-hf",
        "--prompt",
        "What is the capital of France?",
        "--temperature",
        "0",
        "--max-tokens",
        "20",
    )
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout


def test_interactive_chat_keeps_history_and_resets() -> None:
    out = run("chat", "smollm2-135m", "--max-tokens", "8", "--temperature", "0", stdin="Hi\n/reset\nHello\n/exit\n")
    assert out.returncode == 0, out.stderr
    assert "(history cleared)" in out.stderr
    assert out.stderr.count("tokens/s") == 2


def test_unknown_model_is_a_clear_error() -> None:
    out = run("chat", "nope", "--prompt", "x")
    assert out.returncode == 2
    assert "smollm2-135m" in out.stderr

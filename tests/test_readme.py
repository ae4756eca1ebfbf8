"""Every Python block of the README and of docs/ runs as written, each in a fresh interpreter.

A block that talks to ``http://127.0.0.1:8000`` (what ``make serve`` serves) runs against a real
``modelport serve --config examples/serve.yaml`` on a free port: the address is the only change.
Every example has its run command in the README.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loopback import ServeProcess, serve_process

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAKE_SERVE = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        text = page.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            out.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return out


BLOCKS = blocks()


@pytest.fixture(scope="module")
def make_serve() -> Iterator[ServeProcess]:
    with serve_process("--config", str(ROOT / "examples" / "serve.yaml")) as running:
        yield running


def test_the_pages_have_python_blocks() -> None:
    # The extraction itself can fail: the README's three first steps and the server snippet.
    assert sum(where.startswith("README.md") for where, _ in BLOCKS) >= 4, BLOCKS


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_block_runs_as_written(where: str, code: str, request: pytest.FixtureRequest) -> None:
    if MAKE_SERVE in code:
        server: ServeProcess = request.getfixturevalue("make_serve")
        code = code.replace(MAKE_SERVE, server.base)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{where} failed:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{where} printed nothing"


def test_every_example_has_its_run_command_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert f"python examples/{example.name}" in readme, example.name
    assert "--config examples/serve.yaml" in readme
    for variable in ("PORT", "MODEL", "TORCH_SPEC"):
        assert f"`{variable}`" in readme, variable

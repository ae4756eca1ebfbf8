"""A short soak (20 clients, 20 seconds) of a real ``modelport serve``: every request accounted for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.loopback import free_port


def test_twenty_clients_for_twenty_seconds(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, "benchmarks/soak.py", "--duration", "20", "--clients", "20", "--window", "5"]
    command += ["--port", str(free_port()), "--json", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=400)
    figures = json.loads(out.read_text())
    assert figures["unaccounted"] == 0, figures["unaccounted_examples"]
    assert figures["server_5xx"] == 0 and figures["server_tracebacks"] == 0
    assert figures["idle_after"] and figures["server_exit"] == 0
    assert figures["rss_growth"] <= 0.10
    # Every kind of request came through: answers, dropped streams, and refusals.
    outcomes = figures["outcomes"]
    for scenario in ("chat ok", "stream ok", "embed ok", "malformed 400", "drop dropped"):
        assert outcomes.get(scenario, 0) > 0, outcomes
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

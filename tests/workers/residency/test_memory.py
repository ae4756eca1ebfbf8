"""Unloading a built-in chat model hands its memory back, measured in a child process.

The child loads and unloads the model once first: the first load also imports the model
family's code and starts the library's thread pools, which stay with the process whatever
model comes next. The second load is then the model's own, and so is what its unload returns.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import json, sys
from modelport.workers import ModelRegistry
from modelport.workers.residency import process_rss, release_memory

name = sys.argv[1]
registry = ModelRegistry.builtin()
cycles = []
for _ in range(2):
    release_memory()
    base = process_rss()
    registry.load(name)
    release_memory()
    loaded = process_rss()
    assert registry.residency.unload(name, reason="admin", grace_s=0)
    cycles.append({"added": loaded - base, "returned": loaded - process_rss()})
print(json.dumps({"cycles": cycles, "estimate": registry.estimate(name)}))
"""


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m", "smollm2-135m-hf"])
def test_unloading_returns_what_the_load_added(model: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, model], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    measured = found["cycles"][-1]
    assert measured["added"] > 50 * 2**20, measured  # the model really loaded
    assert measured["returned"] >= 0.8 * measured["added"], measured
    # The estimate a budget plans with is within 20% of what the load added.
    assert abs(found["estimate"] - measured["added"]) <= 0.2 * measured["added"], found

"""Two checkouts' servers side by side: a baseline tree against this one, interleaved rounds.

For changes that should not move a figure (a refactor, a new layer): both ``modelport serve``
processes run at once on the same config (the built-in GGUF with ``n_parallel: 8``, and a ``fake``
model), and each round visits both, in alternating order, so that the machine's drift hits both
alike. Reported: one stream's chunks/s and time to first token, the ``fake`` model's time to first
token (the HTTP stack alone), and 8 concurrent streams' aggregate tokens/s; medians, best in
brackets, and the ratios new / baseline.

    git worktree add /tmp/base REV
    python benchmarks/bench_checkouts.py --baseline /tmp/base [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server as bench

HERE = Path(__file__).resolve().parents[1]


@contextmanager
def server(tree: Path) -> Iterator[str]:
    """``modelport serve`` from ``tree`` (its package first on the path), on a free port."""
    port = bench.free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = bench.modelport_config(folder)
        args = [sys.executable, "-m", "modelport.cli", "serve", "--config", str(config), "--port", str(port)]
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(tree)  # the child process imports modelport from the tree
        try:
            started = bench.process([*args, "--log-level", "warning"], f"http://127.0.0.1:{port}/v1")
            started.__enter__()
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            started.__exit__(None, None, None)


async def one(url: str, model: str, tokens: int) -> tuple[float, float]:
    """One stream's chunks/s and time to first token (ms)."""
    async with httpx.AsyncClient(timeout=600) as client:
        began = time.perf_counter()
        result = await bench.one_stream(client, url, model, "Tell me a long story about a dragon.", tokens)
        return len(result.chunks) / (time.perf_counter() - began), (result.ttft or 0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, type=Path, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows: dict[str, dict[str, list[float]]] = {}
    with ExitStack() as stack:
        urls = {"baseline": stack.enter_context(server(args.baseline)), "this": stack.enter_context(server(HERE))}
        for url in urls.values():  # loads the model, warms both paths
            asyncio.run(one(url, "smollm2", 8))
            asyncio.run(one(url, "fake", 8))
        rows = {name: {"rate": [], "ttft": [], "fake": [], "eight": []} for name in urls}
        for i in range(args.rounds):
            for name, url in list(urls.items())[:: 1 if i % 2 == 0 else -1]:
                rate, ttft = asyncio.run(one(url, "smollm2", 128))
                rows[name]["rate"].append(rate)
                rows[name]["ttft"].append(ttft)
                rows[name]["fake"].append(asyncio.run(one(url, "fake", 16))[1])
                if i % 3 == 0:
                    rows[name]["eight"].append(asyncio.run(bench.load(url, "smollm2", 8, 128))["tok_s"])
    med = statistics.median
    print(f"\n{args.rounds} interleaved rounds, medians (best)")
    for name, r in rows.items():
        print(
            f"{name:9} 1 stream {med(r['rate']):6.1f} ({max(r['rate']):6.1f}) chunks/s  TTFT {med(r['ttft']):6.1f} ms"
            f"  fake TTFT {med(r['fake']):5.2f} ms  8 streams {med(r['eight']):6.1f} ({max(r['eight']):6.1f}) tok/s"
        )
    new, old = rows["this"], rows["baseline"]
    print(
        f"this / baseline: 1 stream {med(new['rate']) / med(old['rate']):.3f}, "
        f"TTFT {med(new['ttft']) - med(old['ttft']):+.1f} ms, fake TTFT {med(new['fake']) - med(old['fake']):+.2f} ms, "
        f"8 streams {med(new['eight']) / med(old['eight']):.3f}"
    )


if __name__ == "__main__":
    main()

"""The Python side of bench/bindings.sh: the calls of
artha-engine/examples/binding_bench.rs made through arthapy.

    python bench/bindings_bench.py HOME FILES_DIR [--status N]
"""

import sys
import time
from pathlib import Path

import arthapy


def report(call: str, n: int, secs: float) -> None:
    print(f"{call:<12} {n:>7} {secs:>9.3f} {secs * 1e6 / max(n, 1):>12.1f}")


def main() -> None:
    home, files = Path(sys.argv[1]), Path(sys.argv[2])
    status_calls = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--status" else 10_000
    with arthapy.Engine.open(home) as engine:
        paths = sorted(files.iterdir())
        t = time.perf_counter()
        first = None
        for p in paths:
            r = engine.store.push(p)
            first = first or r["uri"]
        report("store.push", len(paths), time.perf_counter() - t)
        job = engine.train(dataset=first, hold=True)
        t = time.perf_counter()
        for _ in range(status_calls):
            job.status()
        report("job.status", status_calls, time.perf_counter() - t)


if __name__ == "__main__":
    main()

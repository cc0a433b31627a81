"""`make bench`: every benchmark in turn, then any other `bench/*.py` module that has a main().

`python -m bench delivery ingest` runs only those. Each benchmark starts its own processes on
127.0.0.1, stops by itself, prints a table and writes `bench/results/<name>.json`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

ORDER = ["delivery", "ratelimit", "ingest", "priority", "memory"]
# Helpers, and the fault suite (its own target, `make faults`): not benchmarks.
NOT_BENCHMARKS = {"harness", "load", "faults", "jumped_clock", "__main__"}


def discover() -> list[str]:
    folder = Path(__file__).resolve().parent
    others = []
    for module in pkgutil.iter_modules([str(folder)]):
        if module.name in ORDER or module.name in NOT_BENCHMARKS:
            continue
        if callable(getattr(importlib.import_module(f"bench.{module.name}"), "main", None)):
            others.append(module.name)
    return ORDER + sorted(others)


def main(argv: list[str]) -> int:
    names = argv or discover()
    failed = []
    for name in names:
        started = time.monotonic()
        print(f"\n#### bench.{name}", flush=True)
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"#### bench.{name}: {time.monotonic() - started:.0f} s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

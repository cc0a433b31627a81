"""Benchmark 5, memory: peak RSS of a web worker and of a queue worker during runs 1 and 3.

The peaks (VmHWM) are read from the processes by the delivery, rate-limit, ingest and priority
benchmarks just before they stop them; this gathers them from `bench/results/`.
"""

from __future__ import annotations

import json
from typing import Any

from bench.harness import RESULTS, print_table, write_result

SOURCES = ("delivery", "ratelimit", "ingest", "priority")


def main() -> dict[str, Any]:
    found: dict[str, dict[str, Any]] = {}
    for name in SOURCES:
        path = RESULTS / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    worker = {n: _peak(r, "worker_peak_rss_mb") for n, r in found.items()}
    web = {n: _peak(r, "web_peak_rss_mb") for n, r in found.items()}
    worker = {n: v for n, v in worker.items() if v}
    web = {n: v for n, v in web.items() if v}
    result = {
        "queue_worker_peak_rss_mb": max(worker.values(), default=None),
        "web_worker_peak_rss_mb": max(web.values(), default=None),
        "by_benchmark": {"queue_worker": worker, "web_worker": web},
        "targets": {"web_worker_mb": 120, "queue_worker_mb": 200},
    }
    print_table(
        "memory: peak RSS",
        [
            ("web worker, ingest (MB, target <= 120)", result["web_worker_peak_rss_mb"]),
            ("queue worker, delivery (MB, target <= 200)", result["queue_worker_peak_rss_mb"]),
        ],
    )
    write_result("memory", result)
    return result


def _peak(result: dict[str, Any], key: str) -> float | None:
    value = result.get(key) or (result.get("ours") or {}).get(key)
    return float(value) if value else None


if __name__ == "__main__":
    main()

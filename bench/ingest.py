"""Benchmark 3, ingest: signed dossier events against gunicorn with PostgreSQL, 32 connections.

Measured against the same server: the trivial JSON endpoint `/healthz` (the ratio says how much
of the server's capacity the ingest work itself costs). Closed loop gives the most events a
second; open loop at 500 events/s gives the latency a sender sees at the target rate.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from bench.harness import Stack, gunicorn_settings, print_table, write_result
from bench.load import built_ahead, run_load, signed_event

CONNECTIONS = 32
SECONDS = float(os.environ.get("BENCH_INGEST_SECONDS", "10"))
TARGET_RATE = 500.0
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
# gunicorn.conf.py's threads per worker unless BENCH_WEB_THREADS says otherwise.
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS") or gunicorn_settings()["threads"])


def main() -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    healthz = ("GET", "/healthz", b"", {})
    with Stack() as stack:
        stack.start_redis()
        database = stack.create_database()
        stack.start_web(workers=WEB_WORKERS, threads=WEB_THREADS)
        url = stack.web_url
        run_load(url, lambda n: signed_event(n, f"{run}w"), connections=CONNECTIONS, seconds=2)
        trivial = run_load(url, lambda n: healthz, connections=CONNECTIONS, seconds=SECONDS)
        events = built_ahead(lambda n: signed_event(n, f"{run}c"), int(SECONDS * 1500))
        cpu_before = web_cpu(stack)
        closed = run_load(url, events, connections=CONNECTIONS, seconds=SECONDS)
        cpu_per_event = (web_cpu(stack) - cpu_before) * 1000 / max(1, closed.count)
        opened = run_load(
            url,
            built_ahead(lambda n: signed_event(n, f"{run}o"), int(SECONDS / 2 * TARGET_RATE)),
            connections=CONNECTIONS,
            seconds=SECONDS / 2,  # a server slower than the target drains the rest after
            rate=TARGET_RATE,
        )
        # The latency a sender sees when the server is not overloaded: offered at about half
        # of what it served flat out.
        comfortable_rate = round(closed.rate / 2, -1) or 10.0
        comfortable = run_load(
            url,
            built_ahead(lambda n: signed_event(n, f"{run}h"), int(SECONDS / 2 * comfortable_rate)),
            connections=CONNECTIONS,
            seconds=SECONDS / 2,
            rate=comfortable_rate,
        )
        web_rss = max(stack_rss(stack))
    result = {
        "connections": CONNECTIONS,
        "web_workers": WEB_WORKERS,
        "web_threads": WEB_THREADS,
        "database_kind": database.kind,
        "closed_loop": closed.summary(),
        "open_loop_500_per_s": opened.summary(),
        "open_loop_half_capacity": {**comfortable.summary(), "offered_per_s": comfortable_rate},
        "trivial_json_closed_loop": trivial.summary(),
        "ratio_to_trivial": closed.rate / trivial.rate,
        "web_cpu_ms_per_event": cpu_per_event,
        "web_peak_rss_mb": web_rss,
        "targets": {"per_second": 500, "p99_ms": 50},
    }
    print_table(
        f"ingest: signed dossier events, gunicorn {WEB_WORKERS}x{WEB_THREADS} threads, "
        f"{CONNECTIONS} connections, {database.kind}",
        [
            ("events/s, closed loop (target >= 500)", closed.rate),
            (
                "  p50 / p99 ms",
                f"{closed.summary()['p50_ms']:.1f} / {closed.summary()['p99_ms']:.1f}",
            ),
            ("events/s offered 500/s, achieved", opened.rate),
            (
                "  p50 / p99 ms (target p99 <= 50)",
                f"{opened.summary()['p50_ms']:.1f} / {opened.summary()['p99_ms']:.1f}",
            ),
            (f"events/s offered {comfortable_rate:.0f}/s, achieved", comfortable.rate),
            (
                "  p50 / p99 ms",
                f"{comfortable.summary()['p50_ms']:.1f} / {comfortable.summary()['p99_ms']:.1f}",
            ),
            ("/healthz req/s, closed loop", trivial.rate),
            ("ingest / trivial", result["ratio_to_trivial"]),
            ("web workers' CPU per event (ms)", cpu_per_event),
            ("web worker peak RSS (MB)", web_rss),
        ],
    )
    write_result("ingest", result)
    return result


def web_cpu(stack: Stack) -> float:
    from bench.harness import cpu_seconds

    return sum(cpu_seconds(pid) for pid in stack.web_worker_pids())


def stack_rss(stack: Stack) -> list[float]:
    from bench.harness import peak_rss_mb

    return [peak_rss_mb(pid) for pid in stack.web_worker_pids()] or [0.0]


if __name__ == "__main__":
    main()

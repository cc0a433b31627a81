"""Benchmark 4, priority: how long a citizen waits for an urgent notice while a broadcast drains.

10,000 bulk messages are enqueued; during the drain, signed dossier events (urgent notices) reach
gunicorn a few times a second. A notice's latency runs from its webhook POST to its arrival at
the fake provider (100 ms answer time): ingest, queue, claim, send.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from typing import Any

from bench.delivery import LATENCY, WORKERS, count_sent, create_messages
from bench.harness import Stack, percentile, print_table, wait_until, write_result
from bench.load import run_load, signed_event

BROADCAST = int(os.environ.get("BENCH_PRIORITY_MESSAGES", "10000"))
NOTICES_PER_SECOND = 5.0


def main() -> dict[str, Any]:
    from notifier.messaging import delivery

    run = uuid.uuid4().hex[:6]
    phones = [f"+84913{n:06d}" for n in range(100_000)]
    with Stack() as stack:
        stack.start_redis()
        stack.start_fake_twilio(latency=LATENCY)
        database = stack.create_database()
        stack.start_web()
        with stack.app_services() as services:
            items = create_messages(services, BROADCAST)
            workers = stack.start_workers(WORKERS)
            posted: dict[str, float] = {}
            done = threading.Event()

            sequence = itertools.count()

            def notice(_: int) -> tuple[str, str, bytes, dict[str, str]]:
                n = next(sequence)
                posted[phones[n]] = time.time()
                return signed_event(n, run, phone="0" + phones[n][3:])

            def notices() -> None:
                while not done.is_set():
                    run_load(
                        stack.web_url, notice, connections=4, seconds=1, rate=NOTICES_PER_SECOND
                    )

            started = time.monotonic()
            delivery.enqueue(services, items)
            sender = threading.Thread(target=notices)
            sender.start()
            wait_until(lambda: count_sent(services) >= BROADCAST, 600, "broadcast", every=0.5)
            drained = time.monotonic() - started
            done.set()
            sender.join()
            wait_until(
                lambda: count_sent(services) >= BROADCAST + len(posted), 60, "notices", every=0.2
            )
        arrivals = stack.twilio_arrivals(list(posted))
        web_rss = max(stack.process("web").peak_rss_mb(), 0.0)
        worker_rss = max(w.peak_rss_mb() for w in workers)
    latencies = [arrivals[p] - t for p, t in posted.items() if p in arrivals]
    result = {
        "broadcast": BROADCAST,
        "broadcast_seconds": drained,
        "notices": len(posted),
        "notices_arrived": len(latencies),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p99_s": percentile(latencies, 99),
        "latency_max_s": max(latencies, default=float("nan")),
        "database_kind": database.kind,
        "worker_peak_rss_mb": worker_rss,
        "web_master_peak_rss_mb": web_rss,
        "targets": {"latency_p99_s": 2.0},
    }
    print_table(
        f"priority: urgent notices during a {BROADCAST:,}-message broadcast ({drained:.1f} s)",
        [
            ("notices sent / arrived", f"{len(posted)} / {len(latencies)}"),
            ("latency p50 (s)", result["latency_p50_s"]),
            ("latency p99 (s, target <= 2)", result["latency_p99_s"]),
            ("latency max (s)", result["latency_max_s"]),
        ],
    )
    write_result("priority", result)
    return result


if __name__ == "__main__":
    main()

"""Benchmark 1, delivery: 20,000 queued messages, fake Twilio answering after 100 ms, 2 workers.

Measured in the same run: our workers (end to end: enqueue → every message recorded `sent`),
the naive pattern (one RQ job per SMS, forking worker, a new HTTP client per job, one request at
a time; measured on a sample, its rate is steady) and the ceiling (the bare twilio SDK in a thread
pool, no queue, no database, at the same concurrency).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from bench.harness import Stack, print_table, wait_until, write_result
from notifier.core.config import Settings

MESSAGES = int(os.environ.get("BENCH_DELIVERY_MESSAGES", "20000"))
NAIVE_SAMPLE = int(os.environ.get("BENCH_NAIVE_MESSAGES", "100"))
LATENCY = 0.1
WORKERS = 2
CONCURRENCY = int(os.environ.get("BENCH_SEND_CONCURRENCY", Settings.SEND_CONCURRENCY))
NAIVE_QUEUE = "bench-naive"


def create_messages(services: Any, count: int, prefix: str = "Thong bao") -> list[Any]:
    """Commit `count` bulk messages (not yet enqueued); returns their `Queued` items."""
    from notifier.messaging import delivery, outbox

    items = []
    prepared = outbox.prepare(services.settings, f"{prefix}: UBND xa thong bao lich tiep cong dan.")
    for start in range(0, count, 1000):
        with services.db.transaction() as session:
            created = [
                outbox.create_message(
                    session,
                    services.settings,
                    phone=f"+8491{n:07d}",
                    prepared=prepared,
                    urgent=False,
                    essential=True,
                    kind="broadcast",
                )
                for n in range(start, min(count, start + 1000))
            ]
        items += [delivery.Queued.of(m) for m in created]
    return items


def count_sent(services: Any) -> int:
    from notifier.models import Message

    with services.db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Message).where(Message.status == "sent")
            )
            or 0
        )


def run_ours(stack: Stack, count: int) -> dict[str, float]:
    with stack.app_services() as services:
        items = create_messages(services, count)
        workers = stack.start_workers(WORKERS, SEND_CONCURRENCY=str(CONCURRENCY))
        from notifier.messaging import delivery

        cpu_before = sum(w.cpu_seconds() for w in workers)
        started = time.monotonic()
        delivery.enqueue(services, items)
        wait_until(lambda: count_sent(services) >= count, 600, "delivery", every=0.2)
        elapsed = time.monotonic() - started
    cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
    rss = max(w.peak_rss_mb() for w in workers)
    for worker in workers:
        worker.stop()
        stack.processes.remove(worker)
    return {
        "seconds": elapsed,
        "rate": count / elapsed,
        "worker_cpu_ms_per_message": cpu * 1000 / count,
        "worker_peak_rss_mb": rss,
    }


def naive_send(message_id: str) -> None:
    """The naive job: reload, a brand-new SDK client, one request, record."""
    from twilio.rest import Client

    from notifier.core.runtime import current
    from notifier.messaging import statuses
    from notifier.messaging.outbox import claim_for_sending, transition
    from notifier.models import Message

    services = current()
    settings = services.settings
    with services.db.transaction() as session:
        message = claim_for_sending(session, message_id)
        if message is None:
            return
        phone, body = message.phone, message.body or ""
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    client.api.base_url = settings.TWILIO_API_BASE_URL
    sent = client.messages.create(to=phone, from_=settings.TWILIO_FROM, body=body)
    with services.db.transaction() as session:
        row = session.get_one(Message, message_id)
        row.provider, row.provider_message_id = "twilio", sent.sid
        transition(session, row, statuses.SENT, source="twilio")


def run_naive(stack: Stack, count: int) -> dict[str, float]:
    from rq import Queue

    # The parent imports everything once, as a long-running worker would; each job still
    # forks, connects to the database and builds a new HTTP client.
    script = (
        "import sys; import bench.delivery, notifier.core.runtime, twilio.rest; "
        "from redis import Redis; from rq import Worker; "
        f"Worker([{NAIVE_QUEUE!r}], connection=Redis.from_url(sys.argv[1])).work()"
    )
    with stack.app_services() as services:
        before = count_sent(services)
        items = create_messages(services, count, prefix="Naive")
        workers = [
            stack._start(f"naive-{n}", [sys.executable, "-c", script, stack.redis_url])
            for n in range(WORKERS)
        ]
        queue = Queue(NAIVE_QUEUE, connection=services.redis)
        started = time.monotonic()
        queue.enqueue_many(
            [Queue.prepare_data("bench.delivery.naive_send", args=(i.id,)) for i in items]
        )
        wait_until(lambda: count_sent(services) >= before + count, 600, "naive", every=0.2)
        elapsed = time.monotonic() - started
    for worker in workers:
        worker.stop()
        stack.processes.remove(worker)
    return {"seconds": elapsed, "rate": count / elapsed}


def ceiling_process(count: int, concurrency: int, url: str) -> None:
    """One process of the ceiling: the bare SDK from a thread pool; prints start and end."""
    from twilio.rest import Client

    from notifier.providers.twilio import PooledHttpClient

    client = Client(
        "AC" + "0" * 32,
        "fake-auth-token",
        http_client=PooledHttpClient(connections=concurrency, timeout=10),
    )
    client.api.base_url = url

    def send(n: int) -> None:
        client.messages.create(to=f"+8498{n:07d}", from_="UBND-XA", body="Thong bao tran")

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(concurrency)))  # connections opened, as a running worker has
        started, cpu = time.time(), time.process_time()
        list(pool.map(send, range(count)))
        print(f"{time.process_time() - cpu} {started} {time.time()}", flush=True)


def run_ceiling(stack: Stack, count: int) -> dict[str, float]:
    import subprocess

    per = count // WORKERS
    argv = [sys.executable, "-m", "bench.delivery", "ceiling", str(per), str(CONCURRENCY)]
    runs = [
        subprocess.Popen([*argv, stack.twilio_url], stdout=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    spans = [tuple(map(float, run.communicate(timeout=600)[0].split()[-3:])) for run in runs]
    elapsed = max(end for _, _, end in spans) - min(start for _, start, _ in spans)
    cpu = sum(used for used, _, _ in spans)
    return {
        "seconds": elapsed,
        "rate": per * WORKERS / elapsed,
        "client_cpu_ms_per_message": cpu * 1000 / (per * WORKERS),
    }


def main() -> dict[str, Any]:
    with Stack() as stack:
        stack.start_redis()
        stack.start_fake_twilio(latency=LATENCY)
        database = stack.create_database()
        ours = run_ours(stack, MESSAGES)
        print(f"delivery: ours {ours['rate']:.0f} msg/s", flush=True)
        naive = run_naive(stack, NAIVE_SAMPLE)
        print(f"delivery: naive {naive['rate']:.1f} msg/s", flush=True)
        ceiling = run_ceiling(stack, MESSAGES)
        print(f"delivery: ceiling {ceiling['rate']:.0f} msg/s", flush=True)
        fake = stack.twilio_stats()
    result = {
        "messages": MESSAGES,
        "provider_latency_s": LATENCY,
        "workers": WORKERS,
        "concurrency_per_worker": CONCURRENCY,
        "database_kind": database.kind,
        "ours": ours,
        "naive": {**naive, "messages": NAIVE_SAMPLE},
        "ceiling": ceiling,
        "ratio_to_naive": ours["rate"] / naive["rate"],
        "ratio_to_ceiling": ours["rate"] / ceiling["rate"],
        "provider_connections": fake["connections"],
        "targets": {"rate": 1000, "ratio_to_naive": 50, "ratio_to_ceiling": 0.7},
    }
    print_table(
        f"delivery: {MESSAGES:,} messages, provider latency {LATENCY * 1000:.0f} ms, "
        f"{WORKERS} workers x {CONCURRENCY} in flight, {database.kind}",
        [
            ("ours (msg/s)", ours["rate"]),
            (f"naive baseline (msg/s, {NAIVE_SAMPLE} msgs)", naive["rate"]),
            ("bare-SDK ceiling (msg/s)", ceiling["rate"]),
            ("ours / naive (target >= 50)", result["ratio_to_naive"]),
            ("ours / ceiling (target >= 0.7)", result["ratio_to_ceiling"]),
            (
                "CPU ms per message: workers / bare SDK",
                f"{ours['worker_cpu_ms_per_message']:.2f} / {ceiling['client_cpu_ms_per_message']:.2f}",
            ),
            ("queue worker peak RSS (MB)", ours["worker_peak_rss_mb"]),
        ],
    )
    write_result("delivery", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ceiling":
        ceiling_process(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        main()

"""A small HTTP load generator for the benchmarks: keep-alive connections, one per thread."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

from bench.harness import WEBHOOK_SECRET, percentile

Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float | dict[int, int]]:
        return {
            "requests": self.count,
            "per_second": self.rate,
            "p50_ms": percentile(self.latencies, 50) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "statuses": self.statuses,
        }


def run_load(
    base_url: str,
    make_request: Callable[[int], Request],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> LoadResult:
    """Closed loop (as fast as answers come) or, with `rate`, open loop at that many per second.

    In open loop a request's latency counts from when it was due, so a server falling behind
    shows it (no coordinated omission).
    """
    url = urlparse(base_url)
    counter = itertools.count()
    lock = threading.Lock()
    result = LoadResult()
    started = time.monotonic()
    deadline = started + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        while True:
            n = next(counter)
            due = started + n / rate if rate else time.monotonic()
            if due >= deadline:
                break
            if rate:
                time.sleep(max(0.0, due - time.monotonic()))
            method, path, body, headers = make_request(n)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                status = 0
            latencies.append(time.monotonic() - due)
            statuses[status] = statuses.get(status, 0) + 1
        connection.close()
        with lock:
            result.latencies += latencies
            for status, count in statuses.items():
                result.statuses[status] = result.statuses.get(status, 0) + count

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def signed_event(n: int, run: str, phone: str | None = None) -> Request:
    """A distinct, signed `received` dossier event (its own event id, dossier and phone)."""
    from notifier.core import signing

    body = json.dumps(
        {
            "event_id": f"bench-{run}-{n}",
            "occurred_at": "2025-07-14T08:30:00+07:00",
            "dossier": {
                "code": f"000.00.31.H26-250714-{n:06d}",
                "procedure": "Chứng thực bản sao từ bản chính",
                "status": "received",
                "due_date": "2025-07-16",
            },
            "citizen": {
                "name": "Nguyễn Văn An",
                "phone": phone or f"09{(n % 90_000_000) + 10_000_000:08d}",
                "language": "vi",
            },
        }
    ).encode()
    headers = {"Content-Type": "application/json", **signing.signed_headers(WEBHOOK_SECRET, body)}
    return "POST", "/api/v1/dossier-events", body, headers


def prepared(requests: Sequence[Request]) -> Callable[[int], Request]:
    return lambda n: requests[n % len(requests)]


def built_ahead(make_request: Callable[[int], Request], count: int) -> Callable[[int], Request]:
    """`make_request`'s first `count` requests built now, so that building and signing them
    costs the load generator nothing while it measures; any beyond are built as they are due."""
    ready = [make_request(n) for n in range(count)]
    return lambda n: ready[n] if n < count else make_request(n)

"""Benchmark 2, rate limit: the fake provider enforces 50 messages/s (429 beyond); 3,000 messages.

Two workers share the Redis limiter configured with the provider's limit; the figures are the
rate the provider accepted (first to last accepted message) and how many requests it refused.
"""

from __future__ import annotations

import os
from typing import Any

from bench.delivery import WORKERS, count_sent, create_messages
from bench.harness import Stack, print_table, wait_until, write_result

RATE = 50
MESSAGES = int(os.environ.get("BENCH_RATELIMIT_MESSAGES", "3000"))
LATENCY = 0.1


def main() -> dict[str, Any]:
    from notifier.messaging import delivery

    with Stack() as stack:
        stack.start_redis()
        stack.start_fake_twilio(latency=LATENCY, rate_limit=RATE)
        stack.create_database()
        with stack.app_services() as services:
            items = create_messages(services, MESSAGES)
            workers = stack.start_workers(WORKERS, SMS_RATE_LIMITS=f"twilio={RATE}")
            stack.start_scheduler()  # moves the retry of any message the provider refused
            delivery.enqueue(services, items)
            wait_until(lambda: count_sent(services) >= MESSAGES, 600, "rate limit", every=0.5)
        fake = stack.twilio_stats()
        rss = max(w.peak_rss_mb() for w in workers)
    span = fake["last_at"] - fake["first_at"]
    achieved = (fake["messages"] - 1) / span
    result = {
        "messages": MESSAGES,
        "provider_limit_per_s": RATE,
        "achieved_per_s": achieved,
        "achieved_share": achieved / RATE,
        "requests": fake["requests"],
        "responses_429": fake["rejected_429"],
        "share_429": fake["rejected_429"] / fake["requests"],
        "worker_peak_rss_mb": rss,
        "targets": {"achieved_share": 0.95, "share_429": 0.005},
    }
    print_table(
        f"rate limit: provider allows {RATE}/s, {MESSAGES:,} messages, {WORKERS} workers",
        [
            ("achieved (msg/s)", achieved),
            ("share of the limit (target >= 0.95)", result["achieved_share"]),
            ("429 responses", fake["rejected_429"]),
            ("429 share of requests (target <= 0.005)", result["share_429"]),
        ],
    )
    write_result("ratelimit", result)
    return result


if __name__ == "__main__":
    main()

"""The per-process service container shared by the web app, the workers and the scheduler.

Domain functions take what they need from it explicitly; queue jobs, which run outside any
request, reach it through `current()`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property

from redis import Redis
from rq import Queue

from notifier.config import Settings
from notifier.db import Database
from notifier.providers import Provider, build_provider
from notifier.ratelimit import RateLimiter

log = logging.getLogger(__name__)

URGENT_QUEUE = "urgent"
BULK_QUEUE = "bulk"
QUEUE_NAMES = (URGENT_QUEUE, BULK_QUEUE)  # listening order is priority order


@dataclass
class Services:
    settings: Settings
    db: Database
    redis: Redis
    _providers: dict[str, Provider] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        redis = Redis.from_url(
            settings.REDIS_URL,
            # Fail fast when Redis is down: the database already holds the work.
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        return cls(settings=settings, db=Database(settings.DATABASE_URL), redis=redis)

    @cached_property
    def queues(self) -> dict[str, Queue]:
        return {name: Queue(name, connection=self.redis) for name in QUEUE_NAMES}

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.redis)

    def queue(self, priority: str) -> Queue:
        return self.queues[URGENT_QUEUE if priority == URGENT_QUEUE else BULK_QUEUE]

    def provider(self, name: str | None = None) -> Provider:
        """The adapter for `name` (default: SMS_PROVIDER), built once and reused across messages."""
        name = name or self.settings.SMS_PROVIDER
        with self._lock:
            if name not in self._providers:
                self._providers[name] = build_provider(name, self.settings)
            return self._providers[name]

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()


_current: Services | None = None
_current_lock = threading.Lock()


def install(services: Services) -> Services:
    """Make `services` the process-wide container (done by create_app)."""
    global _current
    with _current_lock:
        _current = services
    return services


def current() -> Services:
    """The process-wide container, built from the environment the first time a job needs it."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Services.from_settings(Settings.from_env())
        return _current

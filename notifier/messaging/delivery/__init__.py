"""Getting queued messages to the provider: enqueueing, sending, recording, sweeping.

The database is the source of truth. A message row is committed before its job is enqueued, a
job carries only message ids and sends only what it can claim, so a lost or repeated job never
loses or doubles an SMS. No database transaction is held open across a provider call.

- `enqueueing`: `Queued`, `enqueue`, `enqueue_committed`, and the job index the sweeper reads.
- `pool`: per process, the bounded thread pool making provider requests, with the shared rate
  limiter, failover and metrics.
- `batch`: the batch engine, `send_batch`: the life of one send job (claim, dispatch, collect).
- `recorder`: writes a batch's provider answers (sent, retried with backoff, failed).
- `sweeping`: `sweep` releases deferred messages, settles stuck sends (`reconcile_stuck`) and
  re-enqueues messages whose job was lost.

This package re-exports what the rest of the service calls. Its modules import one another by
their own names, never through this package. May import `core`, `text`, `models`, `providers`
and the rest of `messaging`.
"""

from notifier.messaging.delivery.batch import send_batch, send_message
from notifier.messaging.delivery.enqueueing import Queued, enqueue, enqueue_committed
from notifier.messaging.delivery.pool import close_pool, send_pool, stop_sending
from notifier.messaging.delivery.recorder import retry_delay
from notifier.messaging.delivery.sweeping import SweepResult, reconcile_stuck, sweep

__all__ = [
    "Queued",
    "SweepResult",
    "close_pool",
    "enqueue",
    "enqueue_committed",
    "reconcile_stuck",
    "retry_delay",
    "send_batch",
    "send_message",
    "send_pool",
    "stop_sending",
    "sweep",
]

"""The message status machine. Statuses only move forward; final ones never change."""

from __future__ import annotations

QUEUED = "queued"
DEFERRED = "deferred"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
REJECTED = "rejected"

ALL = (QUEUED, DEFERRED, SENDING, SENT, DELIVERED, FAILED, REJECTED)
FINAL = frozenset({DELIVERED, FAILED, REJECTED})
PENDING = frozenset({QUEUED, DEFERRED, SENDING})

# Rank for "forward only": a late `sent` receipt never overwrites `delivered`.
_RANK = {DEFERRED: 0, QUEUED: 0, SENDING: 1, SENT: 2, DELIVERED: 3, FAILED: 3, REJECTED: 3}

# Moves that go "back" on purpose: a retry puts a message back in the queue.
_RETRY_MOVES = {(SENDING, QUEUED), (DEFERRED, QUEUED), (QUEUED, DEFERRED)}


def can_move(current: str, new: str) -> bool:
    if current in FINAL or current == new:
        return False
    if (current, new) in _RETRY_MOVES:
        return True
    return _RANK[new] > _RANK[current]

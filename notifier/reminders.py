"""Reminders: messages due later (before a reception session, for uncollected results).

Callers keep reminders in step with the state they depend on by calling the `sync_*` functions
after every change, inside the same transaction. Each sync is idempotent: it works out which
reminders the current state calls for, schedules the missing ones and cancels the rest.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from notifier.config import Settings
from notifier.models import Booking, Dossier


def sync_booking_reminders(session: Session, settings: Settings, booking: Booking) -> None:
    """After a booking is made or cancelled, or its session moved or cancelled."""


def sync_dossier_reminders(session: Session, settings: Settings, dossier: Dossier) -> None:
    """After a dossier's status changed (a `ready` dossier waits to be collected)."""

"""Every table of the service. Each concern has its own module; importing this package registers all.

May import `core.db` only: the tables know nothing of the code that uses them.
"""

from notifier.core.db import Base, Database
from notifier.models.api_keys import ApiKey
from notifier.models.batches import Batch
from notifier.models.callbacks import Callback, CallbackAttempt
from notifier.models.contacts import ConsentEvent, Contact
from notifier.models.delivery import ProviderSwitch
from notifier.models.dossiers import Dossier, DossierEvent
from notifier.models.inbound import InboundMessage
from notifier.models.messages import Message, MessageStatusEvent
from notifier.models.reception import Booking, ReceptionSession
from notifier.models.reminders import Reminder
from notifier.models.staff import AuditLog, StaffUser

__all__ = [
    "ApiKey",
    "AuditLog",
    "Batch",
    "Booking",
    "Callback",
    "CallbackAttempt",
    "ConsentEvent",
    "Contact",
    "Dossier",
    "DossierEvent",
    "InboundMessage",
    "Message",
    "MessageStatusEvent",
    "ProviderSwitch",
    "ReceptionSession",
    "Reminder",
    "StaffUser",
]


def create_all(database: Database) -> None:
    """Create every table at once (tests and benchmarks; deployments migrate with Alembic)."""
    Base.metadata.create_all(database.engine)

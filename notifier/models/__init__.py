"""Every table of the service. Each concern has its own module; importing this package registers all."""

from notifier.models.api_keys import ApiKey, Batch, Callback, CallbackAttempt
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

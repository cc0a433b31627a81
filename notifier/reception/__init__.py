"""The citizen-reception schedule (lịch tiếp công dân): sessions, bookings, their notices.

One domain for every channel: SMS keywords, the USSD menu, the staff console and the API book,
cancel and move through here and get plain data and outcome objects back. Channels import this
package: it names every operation, the data they return and the states and statuses results
are compared with. Its modules:

- `data`: states, limits, `ReceptionError`, and what is returned (`SessionInfo`, `BookingInfo`,
  the outcomes of booking, cancelling and changing);
- `sessions`: create, list, cancel, move and edit sessions; the session row lock;
- `bookings`: book, find, cancel and mark bookings; booking codes and expected times;
- `notify`: the template fields of a session or booking, and the notices to booked citizens;
- `service`: `Reception(services)`, each operation in its own transaction, the notices enqueued
  after the commit. The functions of `sessions` and `bookings` take an open `Session` instead,
  to be composed inside a larger transaction (an inbound SMS is stored, acted on and answered
  in one).

May import `messaging`, `reminders` and everything below; never the web.
"""

from notifier.reception.bookings import (
    book,
    cancel_by_code,
    cancel_for_phone,
    day_bookings,
    get_booking,
    set_booking_state,
    upcoming_bookings,
)
from notifier.reception.data import (
    BOOKED,
    CANCELLED,
    OPEN,
    BookingInfo,
    BookStatus,
    CancelStatus,
    ReceptionError,
    SessionInfo,
)
from notifier.reception.notify import booking_fields, confirmation, local_fields, notice_fields
from notifier.reception.service import Reception
from notifier.reception.sessions import (
    cancel_session,
    create_session,
    finished_sessions,
    get_session,
    list_sessions,
    move_session,
    session_bookings,
    session_with_bookings,
    unfinished_sessions,
    upcoming_sessions,
    update_session,
)

__all__ = [
    "BOOKED",
    "CANCELLED",
    "OPEN",
    "BookStatus",
    "BookingInfo",
    "CancelStatus",
    "Reception",
    "ReceptionError",
    "SessionInfo",
    "book",
    "booking_fields",
    "cancel_by_code",
    "cancel_for_phone",
    "cancel_session",
    "confirmation",
    "create_session",
    "day_bookings",
    "finished_sessions",
    "get_booking",
    "get_session",
    "list_sessions",
    "local_fields",
    "move_session",
    "notice_fields",
    "session_bookings",
    "session_with_bookings",
    "set_booking_state",
    "unfinished_sessions",
    "upcoming_bookings",
    "upcoming_sessions",
    "update_session",
]

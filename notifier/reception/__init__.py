"""The citizen-reception schedule (lịch tiếp công dân): sessions, bookings, their notices.

Every channel (SMS keywords, USSD, console, API) books and cancels through here. May import
`messaging`, `reminders` and everything below; never the web.
"""

"""Notices staff send by hand: to one citizen, to everyone booked on a session, to a CSV list.

`composer` reads, previews and creates them; `rows` checks rows of recipients, for these
notices and for the API's bulk sends alike. May import `reception`, `messaging` and everything
below (`rows` only `messaging` and below); never the web.
"""

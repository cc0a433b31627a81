"""Notices staff send by hand: to one citizen, to everyone booked on a session, to a CSV list.

`composer` composes, previews and validates them. May import `reception`, `messaging` and
everything below; never the web.
"""

"""Reminders: the day before a booked session, results waiting to be collected.

`planner` keeps one reminder row per thing to remind of in step with bookings and dossiers, and
fires the due ones. May import `messaging` and everything below.
"""

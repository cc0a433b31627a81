"""Dossiers (hồ sơ) from the one-stop-shop system: events ingested into notices, lookups.

`ingest` records signed status events idempotently and queues the notices that matter;
`lookup` tells a citizen their own dossier's status; `search` finds dossiers for staff. May
import `messaging`, `reminders` and everything below; never the web.
"""

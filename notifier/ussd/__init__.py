"""The USSD menu: screens and transitions as data, the `text` path replayed on every request.

May import `reception`, `dossiers`, `inbound`, `messaging` and everything below; never the web.
"""

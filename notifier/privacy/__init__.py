"""Personal data: export or forget everything held for one phone number, purge old texts.

May import `messaging`, `models` and everything below.
"""

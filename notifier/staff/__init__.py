"""Staff accounts of the console and the audit log of what they (and the API, the CLI) did.

May import `core` and `models`.
"""

"""Long-running processes other than the web: the queue worker and the scheduler.

The top floor with `web` and `cli`: may import any feature; nothing imports this room except
the CLI that starts it.
"""

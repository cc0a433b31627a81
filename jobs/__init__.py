"""RQ job entry points. Each is a thin wrapper: ids in, the domain function does the work."""

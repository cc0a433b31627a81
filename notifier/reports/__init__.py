"""Figures: the staff dashboard and the Prometheus exposition of `/metrics`.

Read-only. May import `messaging` and everything below.
"""

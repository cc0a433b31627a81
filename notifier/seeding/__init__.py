"""Data written straight into the database: the demo commune of `make run`.

May import the features whose rows it writes.
"""

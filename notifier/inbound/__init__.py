"""Texts citizens send: stored, understood, acted on and answered.

`conversation` handles one inbound SMS from any provider. May import the features it acts
through (`reception`, `dossiers`), `messaging` and everything below; never the web.
"""

"""The public notifications API's domain: API keys (`keys`), single sends (`notifications`),
bulk sends (`batches`).

May import `notices.rows` (the row pipeline it shares with the console), `messaging` and
everything below; the contracts are `schemas.notifications`, the HTTP edge `web.notifications`.
"""

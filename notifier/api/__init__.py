"""The public notifications API's domain: API keys, single sends, bulk batches.

May import `messaging` and everything below; the HTTP edge is `web.notifications`.
"""

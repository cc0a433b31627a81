"""The life of one SMS: composed into the outbox, sent, retried, settled, reported.

`outbox` composes message rows and moves them through the status machine (`statuses`);
`delivery` enqueues, sends and sweeps; `receipts` applies provider delivery reports; `consent`
keeps opt-outs; `callbacks` tells API clients of final statuses; `failover` and `sendrate` share
the providers' health and limits across workers; `reasons` words failure codes for staff;
`search` reads the outbox for staff.
May import `core`, `text`, `models`, `providers` and `schemas` (the callback payload and
the delivery status are HTTP contracts); never a feature or the web.
"""

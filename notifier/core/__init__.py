"""The plumbing every process shares: settings, the database, Redis and the service container.

`config` (settings from the environment) is the floor of the whole tree and imports nothing of
the project. The rest of this room (`db`, `paging`, `runtime`, `logs`, `signing`, `ratelimit`,
`combining`, `metrics`) may import `config`, `text` and `providers` (the container builds the
adapters), never a feature, the messaging layer or the web.
"""

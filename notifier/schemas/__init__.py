"""Every HTTP contract of the service (pydantic), importable without Flask.

One module per API or webhook: request bodies, query strings and responses. They validate
requests in the blueprints, the domain modules take and return them, and they describe the API
(`openapi` builds the OpenAPI document). May import `core`, `text` and `models`; never a
feature, the messaging layer or the web (`schemas.reception` still imports `reception.schedule`).
"""

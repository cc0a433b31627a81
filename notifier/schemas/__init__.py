"""Request and response schemas of the public HTTP API (pydantic), importable without Flask.

They validate requests in the blueprints and can describe the API (OpenAPI) from one source.
"""

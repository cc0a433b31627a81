"""OpenAPI 3.1 documents built from pydantic models (no Flask here).

pydantic writes JSON Schema 2020-12, which is what OpenAPI 3.1 uses, so the schemas that
validate requests are published as they are. An API is described by a list of `Operation`s,
each a method and path with what the route says of itself (`Doc`); `build` turns them into the
document and gathers every model under `components/schemas`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
DIGITS = {"type": "string", "pattern": "^[0-9]+$"}  # e.g. Unix seconds in a header

Location = Literal["path", "query", "header"]


@dataclass(frozen=True)
class Content:
    """A body: a pydantic model, or a literal JSON Schema (for plain text, forms built by hand)."""

    model: type[BaseModel] | None = None
    schema: Mapping[str, Any] | None = None
    media_type: str = JSON


@dataclass(frozen=True)
class Reply:
    description: str
    content: Content | None = None
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Param:
    name: str
    location: Location
    schema: Mapping[str, Any]
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class Doc:
    """What a route says of itself: an operation but for its method and path."""

    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, Reply]
    description: str = ""
    body: Content | None = None
    query: type[BaseModel] | None = None  # its fields become query parameters
    params: tuple[Param, ...] = ()
    security: tuple[str, ...] = ()  # names of security schemes, any of which is enough


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI style: /api/v1/notifications/{message_id}
    doc: Doc

    @property
    def route_key(self) -> tuple[str, str]:
        return self.method.upper(), path_shape(self.path)


@dataclass(frozen=True)
class Webhook:
    """A request this service sends to others (OpenAPI 3.1 `webhooks`)."""

    name: str
    summary: str
    body: Content
    params: tuple[Param, ...] = ()
    responses: Mapping[int, Reply] = field(default_factory=dict)


_VARIABLE = re.compile(r"\{[^}]+\}|<[^>]+>")


def path_shape(path: str) -> str:
    """A path with its variables blanked, so `/a/{id}` (OpenAPI) matches `/a/<int:id>` (Flask)."""
    return _VARIABLE.sub("{}", path)


def _models(
    operations: Iterable[Operation], webhooks: Iterable[Webhook]
) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for op in operations:
        if op.doc.body is not None and op.doc.body.model is not None:
            found[(op.doc.body.model, "validation")] = None
        for reply in op.doc.responses.values():
            if reply.content is not None and reply.content.model is not None:
                found[(reply.content.model, "serialization")] = None
    for hook in webhooks:
        if hook.body.model is not None:
            found[(hook.body.model, "serialization")] = None
    return list(found)


Refs = Mapping[tuple[Any, JsonSchemaMode], Any]


def _content(content: Content, refs: Refs, mode: JsonSchemaMode) -> Any:
    schema = refs[content.model, mode] if content.model is not None else dict(content.schema or {})
    return {content.media_type: {"schema": schema}}


def _without_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A query or header value is a string or absent, never JSON null: drop the null branch."""
    result = dict(schema)
    branches = [b for b in result.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        result.update(branches[0])
    elif branches:
        result["anyOf"] = branches
    if result.get("default") is None:
        result.pop("default", None)
    return result


def query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        params.append(param)
    return params


def _param(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": param.required or param.location == "path",
        "schema": dict(param.schema),
    }
    if param.description:
        out["description"] = param.description
    return out


def _responses(replies: Mapping[int, Reply], refs: Refs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, reply in sorted(replies.items()):
        entry: dict[str, Any] = {"description": reply.description}
        if reply.content is not None:
            entry["content"] = _content(reply.content, refs, "serialization")
        if reply.headers:
            entry["headers"] = {name: dict(spec) for name, spec in reply.headers.items()}
        out[str(code)] = entry
    return out


def build(
    operations: Iterable[Operation],
    *,
    title: str,
    version: str,
    description: str = "",
    security_schemes: Mapping[str, Mapping[str, Any]] | None = None,
    webhooks: Iterable[Webhook] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`."""
    ops = list(operations)
    hooks = list(webhooks)
    refs, top = models_json_schema(_models(ops, hooks), ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op.doc, refs)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": top.get("$defs", {})},
    }
    if security_schemes:
        document["components"]["securitySchemes"] = {
            name: dict(scheme) for name, scheme in security_schemes.items()
        }
    if hooks:
        document["webhooks"] = {
            hook.name: {
                "post": {
                    "summary": hook.summary,
                    "parameters": [_param(p) for p in hook.params],
                    "requestBody": {
                        "required": True,
                        "content": _content(hook.body, refs, "serialization"),
                    },
                    "responses": _responses(hook.responses, refs),
                }
            }
            for hook in hooks
        }
    return document


def _operation(doc: Doc, refs: Refs) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": doc.operation_id,
        "summary": doc.summary,
        "tags": [doc.tag],
        "responses": _responses(doc.responses, refs),
    }
    if doc.description:
        entry["description"] = doc.description
    params = [_param(p) for p in doc.params]
    if doc.query is not None:
        params.extend(query_params(doc.query))
    if params:
        entry["parameters"] = params
    if doc.body is not None:
        entry["requestBody"] = {"required": True, "content": _content(doc.body, refs, "validation")}
    if doc.security:
        entry["security"] = [{name: []} for name in doc.security]
    return entry

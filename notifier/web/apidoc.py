"""Each public operation documents itself beside its route, with `@documented`.

The decorator keeps the operation's OpenAPI entry on the view function: the contracts it
names (`schemas/`), and its summary and description from the view's docstring (the first line,
then the paragraphs after it). `web.openapi` walks the app's routes to build the document
(`schemas.openapi`), so a route and its entry cannot drift apart. The replies many operations
share, the problem documents, are here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from notifier.schemas.openapi import DIGITS, Content, Doc, Param, Reply
from notifier.schemas.problems import PROBLEM_MIMETYPE, Problem

BEARER = "bearerAuth"
_ATTRIBUTE = "openapi_doc"

PROBLEM = Content(Problem, media_type=PROBLEM_MIMETYPE)
PROBLEMS: dict[int, Reply] = {
    400: Reply("The request is malformed or invalid; `errors` lists each bad field.", PROBLEM),
    401: Reply(
        "No valid credentials (missing, unknown or revoked key; bad signature).",
        PROBLEM,
        headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    403: Reply("The request's signature does not match.", PROBLEM),
    404: Reply("Nothing with this id for this API key.", PROBLEM),
    409: Reply("The id or reference was already used with different content.", PROBLEM),
    413: Reply("The body is too large.", PROBLEM),
    415: Reply("The body is not of the expected media type.", PROBLEM),
    429: Reply(
        "Over a limit (the key's rate limit or daily cap, or too many failed authentications "
        "from this address); wait `Retry-After` seconds.",
        PROBLEM,
        headers={"Retry-After": {"required": True, "schema": DIGITS}},
    ),
}


def reply(
    description: str,
    model: type[BaseModel] | None = None,
    *,
    location: str | None = None,
) -> Reply:
    """A JSON reply of `model` (none: no body); `location` describes a Location header."""
    headers = {}
    if location is not None:
        headers["Location"] = {"description": location, "schema": {"type": "string"}}
    return Reply(description, Content(model) if model is not None else None, headers=headers)


View = TypeVar("View", bound=Callable[..., Any])


def documented(
    operation_id: str,
    *,
    tag: str,
    responses: Mapping[int, Reply],
    problems: Iterable[int] = (),
    body: type[BaseModel] | Content | None = None,
    query: type[BaseModel] | None = None,
    params: Iterable[Param] = (),
    bearer: bool = False,
) -> Callable[[View], View]:
    """Record a view's OpenAPI entry: `responses` plus the shared problem replies `problems`,
    a request `body` (a model, read as JSON, or a `Content`), `query` (a model whose fields
    are the query parameters), `params` (headers; path parameters the route's converters do not
    describe well enough), and `bearer` when an API key is required."""

    def record(view: View) -> View:
        summary, description = _summary_and_description(view)
        doc = Doc(
            operation_id,
            summary,
            tag,
            {**{code: PROBLEMS[code] for code in problems}, **responses},
            description=description,
            body=body if body is None or isinstance(body, Content) else Content(body),
            query=query,
            params=tuple(params),
            security=(BEARER,) if bearer else (),
        )
        setattr(view, _ATTRIBUTE, doc)
        return view

    return record


def _summary_and_description(view: Callable[..., Any]) -> tuple[str, str]:
    """The docstring's first paragraph without its final period, and the paragraphs after it,
    each on one line."""
    text = inspect.getdoc(view)
    if not text:
        raise ValueError(f"{view.__qualname__} is documented but has no docstring")
    paragraphs = [" ".join(part.split()) for part in text.split("\n\n") if part.strip()]
    return paragraphs[0].removesuffix("."), "\n\n".join(paragraphs[1:])


def doc_of(view: Callable[..., Any]) -> Doc | None:
    """The entry `@documented` recorded on a view, if any."""
    found: Doc | None = getattr(view, _ATTRIBUTE, None)
    return found

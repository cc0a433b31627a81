"""What the contracts share: a request body's configuration, a response filled from a row."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from notifier.text import phones

Model = TypeVar("Model", bound=BaseModel)


def forbid_extra(*examples: dict[str, Any], **schema: Any) -> ConfigDict:
    """A request body's configuration: unknown fields are refused, and `examples` (with more
    JSON Schema keywords, `schema`) are published in its JSON Schema."""
    return ConfigDict(extra="forbid", json_schema_extra={**schema, "examples": list(examples)})


def from_row(model: type[Model], row: object, **more: Any) -> Model:
    """`model` filled from the row's attributes of the same names and from `more`; a phone
    number is masked (+84 91x xxx 678)."""
    values = {
        name: getattr(row, name)
        for name in model.model_fields
        if name not in more and hasattr(type(row), name)
    }
    if "phone" in values:
        values["phone"] = phones.mask(values["phone"])
    return model.model_validate({**values, **more})

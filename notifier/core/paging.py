"""One page of a long list: a count and one slice, whatever the size of the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    number: int  # from 1
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def fetch_page(session: Session, stmt: Select[T], number: int, size: int) -> Page[T]:
    """Page `number` (from 1) of `size` rows of `stmt`'s first column: two queries."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(size).offset((number - 1) * size)).all())
    return Page(items, total, number, size)

"""Write combining: the items of concurrent callers written together, in one go."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "ready", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.ready = threading.Event()
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return cast(R, self.result)


class Combiner(Generic[T, R]):
    """Calls `write` once for the items of callers that arrive while another write runs.

    There is no thread of its own: the caller that finds no write running writes what is
    pending (its own item among it, at most `max_batch`), then hands the lead to the oldest
    caller still waiting. A lone caller writes at once, as it would without a combiner; under
    load every write carries what arrived during the one before, so the cost of a write (a
    transaction, a round trip) is shared. `write` returns one result per item, in order; if it
    raises, every caller of that write gets the exception.
    """

    def __init__(self, write: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 100) -> None:
        self._write = write
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot[T, R]] = []
        self._writing = False

    @property
    def waiting(self) -> int:
        """Items waiting for a write to take them."""
        with self._lock:
            return len(self._pending)

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            leads = not self._writing
            self._writing = True
        if not leads:
            slot.ready.wait()  # for the outcome, or for the lead
        if not slot.done:
            self._lead()
        return slot.outcome()

    def _lead(self) -> None:
        with self._lock:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
        try:
            results = self._write([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"write returned {len(results)} results for {len(batch)} items")
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        except BaseException as exc:  # every caller of this write must hear of it
            for slot in batch:
                slot.error = exc
        finally:
            with self._lock:
                if self._pending:
                    self._pending[0].ready.set()  # not done: it leads the next write
                else:
                    self._writing = False
            for slot in batch:
                slot.done = True
                slot.ready.set()

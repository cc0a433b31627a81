"""Write combining: concurrent callers share writes, each gets its own result or the error."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from notifier.core.combining import Combiner


class BlockingWriter:
    """Records each write; the first one waits until the test releases it."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.writes: list[list[int]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.writes.append(list(items))
        if len(self.writes) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ValueError(f"cannot write {self.fail_on}")
        return [item * 10 for item in items]


def submit_all(
    combiner: Combiner[int, int], items: Sequence[int]
) -> tuple[dict[int, int], dict[int, BaseException], list[threading.Thread]]:
    results: dict[int, int] = {}
    errors: dict[int, BaseException] = {}

    def submit(item: int) -> None:
        try:
            results[item] = combiner.submit(item)
        except BaseException as exc:
            errors[item] = exc

    threads = [threading.Thread(target=submit, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return results, errors, threads


def wait_for_callers(combiner: Combiner[int, int], count: int) -> None:
    deadline = time.monotonic() + 10
    while combiner.waiting < count:
        assert time.monotonic() < deadline, f"{combiner.waiting} of {count} callers waiting"
        time.sleep(0.01)


def start_blocked(writer: BlockingWriter, max_batch: int = 100) -> Combiner[int, int]:
    """A combiner whose first write (of item 0) is under way and held."""
    combiner = Combiner(writer, max_batch=max_batch)
    threading.Thread(target=combiner.submit, args=(0,), daemon=True).start()
    assert writer.first_started.wait(10)
    return combiner


def test_a_lone_caller_writes_at_once() -> None:
    writes: list[list[str]] = []

    def write(items: Sequence[str]) -> list[str]:
        writes.append(list(items))
        return [item.upper() for item in items]

    combiner = Combiner(write)
    assert combiner.submit("a") == "A"
    assert combiner.submit("b") == "B"
    assert writes == [["a"], ["b"]]


def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    writer = BlockingWriter()
    combiner = start_blocked(writer)
    results, errors, threads = submit_all(combiner, [1, 2, 3, 4, 5])
    wait_for_callers(combiner, 5)

    writer.release.set()
    for thread in threads:
        thread.join(10)

    assert errors == {}
    assert results == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}
    assert len(writer.writes) == 2
    assert sorted(writer.writes[1]) == [1, 2, 3, 4, 5]
    assert combiner.waiting == 0


def test_no_write_carries_more_than_max_batch() -> None:
    writer = BlockingWriter()
    combiner = start_blocked(writer, max_batch=2)
    results, _, threads = submit_all(combiner, [1, 2, 3, 4, 5])
    wait_for_callers(combiner, 5)

    writer.release.set()
    for thread in threads:
        thread.join(10)

    assert results == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}
    assert [len(items) for items in writer.writes[1:]] == [2, 2, 1]


def test_every_caller_of_a_failed_write_gets_the_error_and_later_writes_go_on() -> None:
    writer = BlockingWriter(fail_on=3)
    combiner = start_blocked(writer)
    results, errors, threads = submit_all(combiner, [1, 2, 3])
    wait_for_callers(combiner, 3)

    writer.release.set()
    for thread in threads:
        thread.join(10)

    assert results == {}
    assert set(errors) == {1, 2, 3}
    assert all(isinstance(error, ValueError) for error in errors.values())
    assert combiner.submit(4) == 40


def test_a_write_that_returns_the_wrong_number_of_results_fails_its_callers() -> None:
    combiner: Combiner[int, int] = Combiner(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        combiner.submit(1)
    assert combiner.waiting == 0

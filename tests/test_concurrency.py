"""Work split over two threads keeps the items' order and their errors."""

from __future__ import annotations

import threading

import pytest

from lookalike.concurrency import on_two_threads


@pytest.mark.parametrize("count", [0, 1, 2, 7, 100])
def test_two_threads_give_what_one_loop_gives(count: int) -> None:
    items = list(range(count))
    assert on_two_threads(lambda item: item * item, items) == [item * item for item in items]


def test_the_second_thread_does_half_the_work() -> None:
    threads: dict[int, int] = {}

    def record(item: int) -> int:
        threads[item] = threading.get_ident()
        return item

    on_two_threads(record, list(range(10)))
    assert len(set(threads.values())) == 2
    assert {threads[item] for item in range(0, 10, 2)} == {threading.get_ident()}


@pytest.mark.parametrize("failing", [3, 4])  # on either thread
def test_an_error_on_either_thread_reaches_the_caller(failing: int) -> None:
    def check(item: int) -> int:
        if item == failing:
            raise ValueError(f"item {item}")
        return item

    with pytest.raises(ValueError, match=f"item {failing}"):
        on_two_threads(check, list(range(8)))

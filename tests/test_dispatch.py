from __future__ import annotations

import queue
import threading
import time

from replicator.dispatch import MAX_BUNDLE, Dispatcher, Outlet
from replicator.status import StatusBlock


def make(
    capacity: int,
) -> tuple[Dispatcher, queue.Queue[list[tuple[str, str, str, bytes]]], StatusBlock]:
    status = StatusBlock.create()
    inbox: queue.Queue[list[tuple[str, str, str, bytes]]] = queue.Queue()
    outlet = Outlet(inbox, status.slot(1), capacity)
    return Dispatcher({("company", 0): outlet}, "stream"), inbox, status


def change(index: int) -> tuple[str, str, str, bytes]:
    return ("full", f"c{index}", f"{index}-0", b"{}")


def test_flush_sends_one_bundle_and_counts_it() -> None:
    dispatcher, inbox, status = make(100)
    for index in range(3):
        dispatcher.add("company", 0, change(index))

    assert dispatcher.flush()

    assert inbox.get_nowait() == [change(0), change(1), change(2)]
    assert status.slot(1).enqueued_stream == 3
    assert dispatcher.depth("company", 0) == 3


def test_full_bundle_is_sent_without_flush() -> None:
    dispatcher, inbox, _ = make(10_000)
    for index in range(MAX_BUNDLE):
        dispatcher.add("company", 0, change(index))

    assert len(inbox.get_nowait()) == MAX_BUNDLE
    assert dispatcher.pending() == 0


def test_producer_waits_for_room_instead_of_dropping() -> None:
    dispatcher, inbox, status = make(4)
    for index in range(4):
        dispatcher.add("company", 0, change(index))
    dispatcher.flush()

    def consume_later() -> None:
        time.sleep(0.2)
        taken = inbox.get_nowait()
        status.slot(1).dequeued += len(taken)

    consumer = threading.Thread(target=consume_later)
    consumer.start()
    dispatcher.add("company", 0, change(4))
    assert dispatcher.flush()
    consumer.join()

    assert inbox.get_nowait() == [change(4)]
    assert dispatcher.waited_s > 0


def test_abandoned_wait_keeps_the_bundle() -> None:
    dispatcher, inbox, _ = make(1)
    dispatcher.add("company", 0, change(0))
    dispatcher.flush()
    dispatcher.on_wait = lambda: False

    dispatcher.add("company", 0, change(1))

    assert not dispatcher.flush()
    assert dispatcher.pending() == 1
    assert inbox.qsize() == 1

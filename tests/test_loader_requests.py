"""Reload requests that queue up before a bulk load starts are served by that one load."""

from __future__ import annotations

import queue
import threading
import time

from replicator.status import StreamState
from tests.servers import RedisServer
from tests.test_loader_marker import make_loader


def test_queued_reloads_merge_into_one(redis_server: RedisServer) -> None:
    loader = make_loader(redis_server)
    control = loader.spec.control
    for reason in ("data loss", "reconnected without a replay cursor", "data loss"):
        control.put(("reload", reason))

    reason = loader._merge_requests("data loss")

    assert reason == "data loss; reconnected without a replay cursor"
    assert control.empty()


def test_no_queued_reload_keeps_reason(redis_server: RedisServer) -> None:
    loader = make_loader(redis_server)

    reason = loader._merge_requests("initial load")

    assert reason == "initial load"
    assert isinstance(loader.spec.control, queue.Queue)


def test_load_waits_for_connection_after_restart(redis_server: RedisServer) -> None:
    loader = make_loader(redis_server)
    state = loader.status.globals
    state.stream_state = StreamState.READY
    state.connected_since = 100.0
    state.stream_restart_at = 200.0

    def reconnect() -> None:
        time.sleep(0.3)
        state.connected_since = 300.0

    thread = threading.Thread(target=reconnect)
    thread.start()
    loader._wait_for_stream()
    thread.join()

    assert state.connected_since == 300.0

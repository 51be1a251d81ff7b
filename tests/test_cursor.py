from __future__ import annotations

from replicator.cursor import CursorTracker, parse_stream_id, stream_id_after


def test_parse_stream_id() -> None:
    assert parse_stream_id("1751234567890-3") == (1751234567890, 3)
    assert parse_stream_id("abc") is None
    assert parse_stream_id("12-") is None


def test_parse_stream_id_rejects_non_decimal_digits() -> None:
    assert parse_stream_id("\u00b2-1") is None
    assert parse_stream_id("1-\u00b9") is None
    assert parse_stream_id("+1-2") is None


def test_cursor_tracks_odd_stream_ids_as_text() -> None:
    tracker = CursorTracker()

    assert tracker.track("\u00b2-1")
    assert tracker.complete(["\u00b2-1"]) == "\u00b2-1"


def test_stream_ids_compare_numerically() -> None:
    assert stream_id_after("100-0", "90-0")
    assert stream_id_after("90-10", "90-9")
    assert not stream_id_after("90-1", "90-1")


def test_cursor_advances_over_contiguous_prefix_only() -> None:
    tracker = CursorTracker()
    for stream_id in ("1-0", "2-0", "3-0"):
        assert tracker.track(stream_id)

    assert tracker.complete(["2-0"]) == ""
    assert tracker.complete(["1-0"]) == "2-0"
    assert tracker.pending == 1
    assert tracker.complete(["3-0"]) == "3-0"
    assert tracker.pending == 0


def test_cursor_rejects_duplicates_and_old_ids() -> None:
    tracker = CursorTracker("5-0")

    assert not tracker.track("4-9")
    assert not tracker.track("5-0")
    assert tracker.track("5-1")
    assert not tracker.track("5-1")


def test_cursor_reset_forgets_in_flight() -> None:
    tracker = CursorTracker()
    tracker.track("1-0")

    tracker.reset("0-5")

    assert tracker.pending == 0
    assert tracker.committed == "0-5"
    assert tracker.complete(["1-0"]) == "0-5"

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator

import pytest

from replicator import log_channels, logs

API_KEY = "sk_live_secretsecretsecret0123"
PASSWORD = "p@ss:w/rd#%x"

logger = logging.getLogger("replicator.test_logs")

TEXT_LINE = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|CRITICAL)\] ([a-z0-9-]+)\[(\d+)\]: (.*)$")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Give each test its own handlers, and put back the ones pytest installed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    logs.shutdown()
    logs.set_role("supervisor")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def wait_for(stream: io.StringIO, predicate: Callable[[str], bool], timeout_s: float = 10.0) -> str:
    """Wait until the stream's text satisfies ``predicate``; records arrive via a thread."""
    deadline = time.monotonic() + timeout_s
    while not predicate(stream.getvalue()):
        if time.monotonic() > deadline:
            raise AssertionError(f"log output not as expected: {stream.getvalue()!r}")
        time.sleep(0.01)
    return stream.getvalue()


def configured(fmt: str = "text", level: str = "DEBUG") -> io.StringIO:
    stream = io.StringIO()
    logs.configure(level, fmt, secrets=[API_KEY, PASSWORD], stream=stream)
    return stream


def test_text_line_format() -> None:
    stream = configured()
    logger.info("Connected to %r.", "wss://stream")
    logger.warning("Queue for shard %d is full.", 3)

    lines = wait_for(stream, lambda text: text.count("\n") == 2).splitlines()
    first, second = (TEXT_LINE.match(line) for line in lines)
    assert first is not None
    assert second is not None
    assert first.group(1) == "INFO"
    assert first.group(2) == "supervisor"
    assert int(first.group(3)) == os.getpid()
    assert first.group(4) == "Connected to 'wss://stream'."
    assert second.group(1) == "WARN"


def test_text_line_traceback() -> None:
    stream = configured()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("Batch write failed.")

    text = wait_for(stream, lambda text: "RuntimeError: boom" in text)
    first, *rest = text.splitlines()
    assert TEXT_LINE.match(first)
    assert first.endswith(f"[ERROR] supervisor[{os.getpid()}]: Batch write failed.")
    assert rest[0] == "Traceback (most recent call last):"


def test_level_filters_records() -> None:
    stream = configured(level="warn")
    logger.info("Not shown.")
    logger.error("Shown.")

    text = wait_for(stream, lambda text: "Shown." in text)
    assert "Not shown." not in text
    assert logging.getLogger().level == logging.WARNING


def test_configure_replaces_handlers() -> None:
    configured()
    configured()
    assert len(logging.getLogger().handlers) == 1


def test_json_line_fields() -> None:
    stream = configured("json")
    logs.set_role("loader")
    logger.warning("Page %d failed.", 3)

    document = json.loads(wait_for(stream, lambda text: text.endswith("\n")))
    assert set(document) == {"time", "level", "role", "pid", "logger", "message"}
    assert document["level"] == "WARN"
    assert document["role"] == "loader"
    assert document["pid"] == os.getpid()
    assert document["logger"] == "replicator.test_logs"
    assert document["message"] == "Page 3 failed."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["time"])


def test_json_line_exc_info() -> None:
    stream = configured("json")
    try:
        raise ValueError("bad record")
    except ValueError:
        logger.error("Record skipped.", exc_info=True)

    document = json.loads(wait_for(stream, lambda text: text.endswith("\n")))
    assert document["message"] == "Record skipped."
    assert document["exc_info"].startswith("Traceback")
    assert "ValueError: bad record" in document["exc_info"]


def _child_logs(role: str) -> None:
    logs.set_role(role)
    logging.getLogger("replicator.ingest").info("Hello from the %s child.", role)
    try:
        raise ConnectionError(f"redis://default:{PASSWORD}@127.0.0.1:1 refused")
    except ConnectionError:
        logging.getLogger("replicator.ingest").exception("Child failed with key %s.", API_KEY)


def run_child(role: str) -> multiprocessing.process.BaseProcess:
    """Fork a child that logs through its own channel, the way the supervisor does."""
    channel = log_channels.ChildLogChannel()

    def main() -> None:
        channel.attach_child()
        _child_logs(role)

    child = multiprocessing.get_context("fork").Process(target=main)
    child.start()
    channel.attach_parent(role)
    child.join(timeout=30)
    log_channels.drain()
    return child


def test_child_records_through_parent() -> None:
    stream = configured()
    child = run_child("ingest")
    assert child.exitcode == 0

    text = wait_for(stream, lambda text: "ConnectionError" in text)
    hello = next(line for line in text.splitlines() if "Hello" in line)
    assert hello.endswith(f"[INFO] ingest[{child.pid}]: Hello from the ingest child.")
    assert child.pid != os.getpid()
    assert f"[ERROR] ingest[{child.pid}]: Child failed with key ***." in text
    assert PASSWORD not in text
    assert API_KEY not in text
    assert "redis://***@127.0.0.1:1" in text


def test_parent_role_unchanged_by_child() -> None:
    stream = configured()
    run_child("flags")
    logger.info("Parent after the child.")

    text = wait_for(stream, lambda text: "Parent after" in text)
    assert f"supervisor[{os.getpid()}]: Parent after the child." in text
    assert logs.get_role() == "supervisor"


def test_redaction_message_and_arguments() -> None:
    stream = configured()
    logger.info("Key %s and password %r.", API_KEY, PASSWORD)
    logger.info("Encoded p%%40ss%%3Aw%%2Frd%%23%%25x and redis://bob:anything@127.0.0.1:6379/0.")
    logger.info("Key inline: " + API_KEY)

    text = wait_for(stream, lambda text: text.count("\n") == 3)
    assert API_KEY not in text
    assert PASSWORD not in text
    assert "p%40ss" not in text
    assert "Key *** and password '***'." in text
    assert "redis://***@127.0.0.1:6379/0" in text


def test_redaction_exception_text() -> None:
    stream = configured("json")
    try:
        raise PermissionError(f"auth failed for {API_KEY} with {PASSWORD}")
    except PermissionError:
        logger.exception("Login failed.")

    document = json.loads(wait_for(stream, lambda text: text.endswith("\n")))
    assert "PermissionError: auth failed for *** with ***" in document["exc_info"]
    assert API_KEY not in json.dumps(document)


def test_redaction_skips_short_secrets() -> None:
    redactor = logs.RedactingFilter(["abc", "", "longer-secret"])
    assert redactor.redact("abc longer-secret") == "abc ***"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture()
def captured() -> Iterator[tuple[logging.Logger, ListHandler]]:
    handler = ListHandler()
    target = logging.getLogger("replicator.test_logs.limited")
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    target.propagate = False
    yield target, handler
    target.removeHandler(handler)
    target.propagate = True


def test_rate_limit_counts_repeats(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    clock = FakeClock()
    limited = logs.RateLimitedLogger(target, interval_s=10, clock=clock)

    assert limited.error("redis-down", "Redis write failed: %s.", "timeout") is True
    for _ in range(41):
        clock.now += 0.1
        assert limited.error("redis-down", "Redis write failed: %s.", "timeout") is False
    assert handler.messages == ["Redis write failed: timeout."]

    clock.now = 1010.0
    assert limited.error("redis-down", "Redis write failed: %s.", "refused") is True
    assert handler.messages[-1] == (
        "Redis write failed: refused (and 41 more like this in the last 10s)."
    )


def test_rate_limit_keys_independent(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    limited = logs.RateLimitedLogger(target, interval_s=10, clock=FakeClock())

    limited.warning("a", "First a.")
    limited.warning("b", "First b.")
    limited.warning("a", "Second a.")
    assert handler.messages == ["First a.", "First b."]


def test_rate_limit_flush(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    clock = FakeClock()
    limited = logs.RateLimitedLogger(target, interval_s=10, clock=clock)

    limited.info("reconnect", "Reconnecting at 100%.")
    limited.info("reconnect", "Reconnecting at 100%.")
    limited.info("reconnect", "Reconnecting at 100%.")
    clock.now += 4
    limited.flush()
    limited.flush()
    assert handler.messages == [
        "Reconnecting at 100%.",
        "Suppressed 2 more log lines like this in the last 4s: Reconnecting at 100%.",
    ]

    clock.now += 20
    limited.info("reconnect", "Reconnecting at 100%.")
    assert handler.messages[-1] == "Reconnecting at 100%."


def test_rate_limit_flush_shows_last_line(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    clock = FakeClock()
    limited = logs.RateLimitedLogger(target, interval_s=10, clock=clock)

    limited.error("redis:user-0", "Write failed: %s.", "timeout")
    limited.error("redis:user-0", "Write failed: %s.", "refused")
    clock.now += 3
    limited.flush()

    assert handler.messages[-1] == (
        "Suppressed 1 more log line like this in the last 3s: Write failed: refused."
    )
    assert "redis:user-0" not in handler.messages[-1]


def test_rate_limit_summary_keeps_percent(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    clock = FakeClock()
    limited = logs.RateLimitedLogger(target, interval_s=1, clock=clock)

    limited.info("cpu", "CPU at 100%")
    limited.info("cpu", "CPU at 100%")
    clock.now += 2
    limited.info("cpu", "CPU at 100%")
    assert handler.messages[-1] == "CPU at 100% (and 1 more like this in the last 2s)."


def test_rate_limit_bounded_keys(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    limited = logs.RateLimitedLogger(target, interval_s=10, max_keys=2, clock=FakeClock())

    for key in ("a", "b", "c", "a"):
        limited.info(key, "Key %s.", key)
    assert handler.messages == ["Key a.", "Key b.", "Key c.", "Key a."]


def test_log_every_shares_state(captured: tuple[logging.Logger, ListHandler]) -> None:
    target, handler = captured
    assert logs.log_every(target, "disk", 3600, logging.WARNING, "Disk almost full.") is True
    assert logs.log_every(target, "disk", 3600, logging.WARNING, "Disk almost full.") is False
    assert handler.messages == ["Disk almost full."]

"""Per-child log pipes: records arrive whole, and a killed child stalls no one else."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import select
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from replicator import log_channels, logs

FORK = multiprocessing.get_context("fork")
LONG = 3 * select.PIPE_BUF + 17

logger = logging.getLogger("replicator.test_log_channels")


@pytest.fixture()
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    output = io.StringIO()
    logs.configure("INFO", stream=output)
    yield output
    log_channels.drain()
    logs.shutdown()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def start_child(role: str, body: Callable[[], None]) -> multiprocessing.process.BaseProcess:
    channel = log_channels.ChildLogChannel()

    def main() -> None:
        logs.set_role(role)
        channel.attach_child()
        body()

    child = FORK.Process(target=main)
    child.start()
    channel.attach_parent(role)
    return child


def wait_for(output: io.StringIO, predicate: Callable[[str], bool], timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while not predicate(output.getvalue()):
        assert time.monotonic() < deadline, f"log output not as expected: {output.getvalue()!r}"
        time.sleep(0.01)
    return output.getvalue()


def test_frames_round_trip_long_record() -> None:
    record = ("x" * LONG).encode()
    frames = log_channels.encode_frames(41, record)

    decoder = log_channels.FrameDecoder()
    completed = [text for frame in frames for text in decoder.feed(frame)]

    assert len(frames) == 4
    assert all(len(frame) <= select.PIPE_BUF for frame in frames)
    assert completed == [record.decode()]
    assert decoder.unfinished() == 0


def test_frames_of_two_writers_interleaved_are_kept_apart() -> None:
    first = log_channels.encode_frames(1, b"a" * LONG)
    second = log_channels.encode_frames(2, b"b" * LONG)
    mixed = [frame for pair in zip(first, second, strict=True) for frame in pair]

    decoder = log_channels.FrameDecoder()
    completed = decoder.feed(b"".join(mixed))

    assert sorted(completed) == ["a" * LONG, "b" * LONG]


def test_decoder_counts_cut_record() -> None:
    frames = log_channels.encode_frames(7, b"z" * LONG)
    decoder = log_channels.FrameDecoder()

    completed = decoder.feed(b"".join(frames[:2]) + frames[2][:5])

    assert completed == []
    assert decoder.unfinished() == 2


def test_empty_message_survives_the_pipe() -> None:
    decoder = log_channels.FrameDecoder()

    assert decoder.feed(b"".join(log_channels.encode_frames(3, b""))) == [""]


def _log_forever() -> None:
    number = 0
    while True:
        logger.info("spam-%d %s", number, "s" * LONG)
        number += 1


def test_child_killed_mid_write_leaves_the_others_logging(stream: io.StringIO) -> None:
    spammer = start_child("company-0", _log_forever)
    wait_for(stream, lambda text: text.count("spam-") >= 20)
    assert spammer.pid is not None
    os.kill(spammer.pid, signal.SIGKILL)
    spammer.join(10)

    quiet = start_child("user-0", lambda: logger.info("Still logging after the kill."))
    quiet.join(30)
    logger.info("The supervisor logs too.")

    text = wait_for(stream, lambda text: "Still logging" in text and "supervisor logs" in text)
    spam = [line for line in text.splitlines() if "spam-" in line]
    assert all(line.endswith("s" * LONG) for line in spam)
    assert f"user-0[{quiet.pid}]: Still logging after the kill." in text


def _log_with_grandchild() -> None:
    grandchild = os.fork()
    if grandchild == 0:
        for number in range(50):
            logger.info("grandchild-%d %s", number, "g" * LONG)
        os._exit(0)
    for number in range(50):
        logger.info("child-%d %s", number, "c" * LONG)
    os.waitpid(grandchild, 0)


def test_records_of_a_forked_grandchild_stay_whole(stream: io.StringIO) -> None:
    child = start_child("health", _log_with_grandchild)
    child.join(60)
    log_channels.drain()

    lines = [line for line in stream.getvalue().splitlines() if "child-" in line]
    assert child.exitcode == 0
    assert len(lines) == 100
    assert all(line.endswith(("c" * LONG, "g" * LONG)) for line in lines)
    assert all(line.startswith("[INFO] health[") for line in lines)

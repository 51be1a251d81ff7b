"""``schematic-datastream-replicator simulate``: serve a simulated Schematic service.

The process serves until SIGINT or SIGTERM, then closes its connections (code 1001),
writes the truth when ``--dump-on-exit`` is given and exits 0. A second signal during
that shutdown uses the default action, which ends the process at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from replicator.simulator.config import AUTH_REJECT_STYLES, SimulatorConfig
from replicator.simulator.dataset import DatasetError
from replicator.simulator.faults import FAULT_KINDS, required_parameters
from replicator.simulator.runner import Simulator

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
_LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"
#: Faults that ``--fault`` can schedule: those that need no parameter.
SCHEDULED_KINDS = [kind for kind in FAULT_KINDS if not required_parameters(kind)]


def parse_fault(text: str) -> tuple[str, float]:
    """Parse ``KIND[@SECONDS]`` into the fault name and its delay after start."""
    kind, _, delay = text.partition("@")
    if kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"unknown fault {kind!r}; expected one of: {', '.join(SCHEDULED_KINDS)}"
        )
    if kind not in SCHEDULED_KINDS:
        raise argparse.ArgumentTypeError(
            f"fault {kind!r} needs {', '.join(required_parameters(kind))}; "
            "inject it with POST /_simulator/faults instead"
        )
    try:
        seconds = float(delay) if delay else 0.0
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise argparse.ArgumentTypeError(
            f"invalid delay {delay!r} in {text!r}; expected seconds >= 0, e.g. reset@30"
        )
    return kind, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of the ``simulate`` command to a parser."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--companies", type=int, default=1000, help="number of generated companies (default 1000)"
    )
    data.add_argument(
        "--users", type=int, default=3000, help="number of generated users (default 3000)"
    )
    data.add_argument(
        "--flags", type=int, default=50, help="number of generated flags (default 50)"
    )
    data.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    data.add_argument(
        "--dataset", metavar="FILE", help="serve this dataset file instead of generated data"
    )
    data.add_argument(
        "--rate", type=float, default=10.0, help="live changes per second, 0 for none (default 10)"
    )
    data.add_argument(
        "--dump-on-exit",
        metavar="FILE",
        help="write the final truth to FILE in the dataset format on exit",
    )

    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other address "
        "exposes the simulator to other hosts)",
    )
    server.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on, 0 for any free port (default 8080)",
    )
    server.add_argument("--api-key", help="API key clients must send (default: $SCHEMATIC_API_KEY)")
    server.add_argument(
        "--retention",
        type=int,
        default=100_000,
        help="change messages kept for replay (default 100000)",
    )
    server.add_argument(
        "--auth-reject",
        choices=AUTH_REJECT_STYLES,
        default="close",
        help="reject a bad key by closing with 4001 after the upgrade "
        "(close, default) or with HTTP 401 (http)",
    )
    server.add_argument(
        "--no-replay-flags-snapshot",
        action="store_true",
        help="do not send the flags snapshot to connections that replay",
    )

    operations = parser.add_argument_group("faults and logging")
    operations.add_argument(
        "--fault",
        action="append",
        default=[],
        type=parse_fault,
        metavar="KIND[@SECONDS]",
        help="inject a fault SECONDS after start (repeatable); kinds: "
        + ", ".join(SCHEDULED_KINDS),
    )
    operations.add_argument(
        "--stats-interval",
        type=float,
        default=10.0,
        help="seconds between two INFO lines of counters (default 10)",
    )
    operations.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level (default INFO; DEBUG logs every REST page)",
    )


def dump_path_problem(path: str | None) -> str | None:
    """Return why the truth could not be written to ``path`` at exit, or None when it can."""
    if path is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return (
            f"Invalid --dump-on-exit {path!r}: the folder {folder!r} does not exist; "
            "create it or choose another path."
        )
    if os.path.isdir(path):
        return f"Invalid --dump-on-exit {path!r}: it is a folder; give a file name."
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"Invalid --dump-on-exit {path!r}: this process may not create files in "
            f"{folder!r}; choose another folder or change its permissions."
        )
    return None


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=_LOG_FORMAT)
    root.setLevel(level)


def _build(args: argparse.Namespace, api_key: str) -> Simulator:
    config = SimulatorConfig(
        api_key=api_key,
        companies=args.companies,
        users=args.users,
        flags=args.flags,
        seed=args.seed,
        rate=args.rate,
        host=args.host,
        port=args.port,
        retention=args.retention,
        dataset_path=args.dataset,
        auth_reject_style=args.auth_reject,
        replay_sends_flags_snapshot=not args.no_replay_flags_snapshot,
    )
    return Simulator(config)


def _log_stats(simulator: Simulator) -> None:
    stats = simulator.stats()
    logger.info(
        "Published %d changes %r; sent %d messages; %d open connections; "
        "%d companies, %d users, %d flags; last stream id %r.",
        sum(stats["published"].values()),
        stats["published"],
        stats["messages_sent"],
        stats["open_connections"],
        stats["companies"],
        stats["users"],
        stats["flags"],
        stats["last_stream_id"],
    )


def _inject(simulator: Simulator, kind: str) -> None:
    try:
        result = simulator.faults.inject(kind)
        logger.info("Injected fault %r: %r.", kind, result)
    except (ValueError, RuntimeError) as error:
        logger.error("Fault %r failed: %s", kind, error)


def _serve(simulator: Simulator, args: argparse.Namespace, stop: threading.Event) -> None:
    started = time.monotonic()
    pending = sorted(args.fault, key=lambda fault: fault[1])
    next_stats = started + args.stats_interval
    while True:
        now = time.monotonic()
        while pending and started + pending[0][1] <= now:
            _inject(simulator, pending.pop(0)[0])
        if now >= next_stats:
            _log_stats(simulator)
            next_stats = now + args.stats_interval
        wake = min([next_stats] + [started + delay for _, delay in pending[:1]])
        if stop.wait(max(0.0, wake - time.monotonic())):
            return


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; return the exit code."""
    _configure_logging(args.log_level)
    api_key = args.api_key or os.environ.get("SCHEMATIC_API_KEY", "")
    if not api_key:
        print(
            "Missing API key: set SCHEMATIC_API_KEY or pass --api-key; clients must send "
            "the same key.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    problem = dump_path_problem(args.dump_on_exit)
    if problem is not None:
        print(f"Cannot start the simulator: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        simulator = _build(args, api_key)
    except (ValueError, DatasetError) as error:
        print(f"Cannot start the simulator: {error}", file=sys.stderr)
        return EXIT_USAGE

    stop = threading.Event()
    received: list[int] = []

    def record_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, record_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        simulator.start()
    except OSError as error:
        logger.error("Cannot start the simulator: %s", error)
        _restore(previous)
        return EXIT_FAILURE
    try:
        _serve(simulator, args, stop)
        logger.info("Received %s; stopping.", signal.Signals(received[0]).name)
    finally:
        # A second signal now takes its default action and ends the process at once.
        _restore(previous)
        simulator.stop()
        exit_code = _dump(simulator, args.dump_on_exit)
    return exit_code


def _dump(simulator: Simulator, path: str | None) -> int:
    """Write the truth to ``path`` when one is given; return the exit code."""
    if path is None:
        return EXIT_OK
    try:
        simulator.dump_truth(path)
    except OSError as error:
        logger.error("Cannot write the truth to %r: %s.", path, error)
        return EXIT_FAILURE
    return EXIT_OK


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)

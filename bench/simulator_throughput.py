"""Measure how fast the simulator sends change messages, or serves REST pages.

``--mode stream`` (the default) measures the datastream. The simulator runs in this
process. The client, an aiohttp WebSocket client that only counts frames, runs in another
process, so on a machine with two cores each has its own.
The simulator publishes a burst of pre-built company ``full`` changes of about 1.6 KB
and records the send time of each. The report gives three rates: published, sent (first
to last send) and received by the client.

    python bench/simulator_throughput.py --messages 200000

``--mode rest`` measures REST paging: a simulator in a child process serves ``--entities``
companies and as many users, client threads fetch them all in pages of 100, and the
report gives entities per second and the simulator's CPU time per entity (see
``bench/rest_paging.py``).

    python bench/simulator_throughput.py --mode rest --entities 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from replicator.simulator import Simulator, SimulatorConfig

API_KEY = "bench-key"
_WAIT_S = 30.0


async def _consume(url: str, expected: int, pipe: Connection) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url, headers={"X-Schematic-Api-Key": API_KEY}, max_msg_size=0, compress=0
        ) as ws,
    ):
        await ws.send_str(json.dumps({"data": {"entity_type": "rulesengine.Companies"}}))
        await ws.receive()  # the subscription confirmation
        pipe.send("ready")
        count = 0
        first_ns = last_ns = 0
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            count += 1
            last_ns = time.time_ns()
            first_ns = first_ns or last_ns
            if count >= expected:
                break
        pipe.send((count, first_ns, last_ns))


def _client_main(url: str, expected: int, pipe: Connection) -> None:
    asyncio.run(_consume(url, expected, pipe))


def _rate(count: int, first_ns: int, last_ns: int) -> float:
    elapsed_s = (last_ns - first_ns) / 1e9
    return count / elapsed_s if elapsed_s > 0 else float("nan")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        choices=("stream", "rest"),
        default="stream",
        help="measure the datastream (stream) or REST paging (rest)",
    )
    parser.add_argument("--messages", type=int, default=200_000, help="stream mode: burst size")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="stream mode: target messages per second, 0 for as fast as possible",
    )
    parser.add_argument(
        "--companies",
        type=int,
        default=10_000,
        help="stream mode: generated companies (the burst updates the first 1000)",
    )
    parser.add_argument(
        "--entities",
        type=int,
        default=20_000,
        help="rest mode: companies, and as many users, to fetch in pages of 100",
    )
    parser.add_argument(
        "--clients", type=int, default=2, help="rest mode: client threads fetching pages"
    )
    return parser


def _rest_main(args: argparse.Namespace) -> int:
    from bench import rest_paging

    if args.entities < 1 or args.clients < 1:
        raise SystemExit(
            f"Invalid --entities {args.entities} or --clients {args.clients}: both must be >= 1."
        )
    print(rest_paging.report(rest_paging.measure(args.entities, args.clients)))
    return 0


def _stream_main(args: argparse.Namespace) -> int:
    config = SimulatorConfig(
        api_key=API_KEY, companies=args.companies, users=0, flags=0, retention=args.messages
    )
    with Simulator(config) as simulator:
        url = simulator.base_url.replace("http", "ws", 1) + "/datastream"
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        client = multiprocessing.get_context("spawn").Process(
            target=_client_main, args=(url, args.messages, theirs)
        )
        client.start()
        if not ours.poll(_WAIT_S) or ours.recv() != "ready":
            raise SystemExit("The client did not subscribe within 30 s.")

        result = simulator.burst(args.messages, rate=args.rate)
        received, first_ns, last_ns = ours.recv()
        client.join(_WAIT_S)
        sent = [simulator.send_times[s] for s in result.stream_ids if s in simulator.send_times]

    print(f"messages            {args.messages}")
    print(f"frame size          {len(simulator.window.messages[-1].frame)} bytes")
    print(f"published per s     {result.publish_rate:,.0f}")
    print(f"sent per s          {_rate(len(sent), min(sent), max(sent)):,.0f}")
    print(f"received per s      {_rate(received, first_ns, last_ns):,.0f} ({received} received)")
    return 0


def main() -> int:
    args = _parser().parse_args()
    return _rest_main(args) if args.mode == "rest" else _stream_main(args)


if __name__ == "__main__":
    sys.exit(main())

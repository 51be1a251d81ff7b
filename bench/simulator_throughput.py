"""Measure how fast the simulator sends change messages to one fast client.

The simulator runs in this process. The client, an aiohttp WebSocket client that only
counts frames, runs in another process, so on a machine with two cores each has its own.
The simulator publishes a burst of pre-built company ``full`` changes of about 1.6 KB
and records the send time of each. The report gives three rates: published, sent (first
to last send) and received by the client.

    python bench/simulator_throughput.py --messages 200000
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="burst size")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="target messages per second, 0 for as fast as possible",
    )
    parser.add_argument(
        "--companies",
        type=int,
        default=10_000,
        help="generated companies (the burst updates the first 1000)",
    )
    args = parser.parse_args()

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


if __name__ == "__main__":
    sys.exit(main())

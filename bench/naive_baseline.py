"""A naive replicator, the baseline of the throughput benchmark.

One Python process, one websocket-client ``WebSocketApp``, and an ``on_message``
callback that writes each company ``full`` change to Redis at once with individual
redis-py commands: ``SET`` of the record, then one ``SET`` per lookup key. Nothing is
batched or pipelined, so every key costs one round trip to Redis. It writes the keys
the replicator writes (``schematic:company:<version>:<id>`` holding the record, and
``schematic:company:<version>:<key name>:<key value>`` holding the id as a JSON string,
both lower-cased in lookups), but stores ``data`` as received: no normalisation, no
merge of partials, no deletes, no replay cursor.

Like the replicator, it turns off websocket-client's UTF-8 check of text frames
(``skip_utf8_validation=True``), which is pure Python without the optional wsaccel
package and would otherwise dominate the cost of a frame.

    python bench/naive_baseline.py --url ws://127.0.0.1:8080/datastream \\
        --api-key sim-key --redis-port 6379 --cache-version 1a2b3c4d

It prints ``subscribed`` once the companies subscription is confirmed, and the number
of changes written when SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType

import redis
import websocket


class NaiveReplicator:
    """Writes every company ``full`` change with one SET per key, as it arrives."""

    def __init__(self, client: redis.Redis, version: str) -> None:
        self.client = client
        self.version = version
        self.written = 0

    def on_open(self, ws: websocket.WebSocketApp) -> None:
        request = {"data": {"action": "start", "entity_type": "rulesengine.Companies"}}
        ws.send(json.dumps(request))

    def on_message(self, ws: websocket.WebSocketApp, text: str) -> None:
        message = json.loads(text)
        record = message.get("data")
        if message.get("entity_id") is None:
            # The confirmation is a "full" message with no entity and {"subscribed": true}.
            if isinstance(record, dict) and record.get("subscribed"):
                print("subscribed", flush=True)
            return
        if message.get("message_type") != "full":
            return  # The benchmark sends only full changes.
        company_id = str(record["id"])
        prefix = f"schematic:company:{self.version}"
        self.client.set(f"{prefix}:{company_id}", json.dumps(record))
        id_value = json.dumps(company_id)
        for name, value in (record.get("keys") or {}).items():
            self.client.set(f"{prefix}:{str(name).lower()}:{str(value).lower()}", id_value)
        self.written += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="datastream WebSocket URL (ws://...)")
    parser.add_argument("--api-key", required=True, help="API key the datastream expects")
    parser.add_argument("--redis-port", type=int, required=True, help="Redis port on 127.0.0.1")
    parser.add_argument("--cache-version", required=True, help="version segment of the keys")
    args = parser.parse_args()

    client = redis.Redis(host="127.0.0.1", port=args.redis_port)
    replicator = NaiveReplicator(client, args.cache_version)
    app = websocket.WebSocketApp(
        args.url,
        header=[f"X-Schematic-Api-Key: {args.api_key}"],
        on_open=replicator.on_open,
        on_message=replicator.on_message,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        app.keep_running = False
        app.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.run_forever(skip_utf8_validation=True)
    print(f"written {replicator.written}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

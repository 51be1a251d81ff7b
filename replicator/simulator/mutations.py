"""The live change generator: a thread that changes the truth at a steady rate.

It mixes company and user partial updates (traits, metrics, keys, credit balances), key
renames, full updates, creates and deletes, and flag edits, creates and deletes. Creates
and deletes steer each table back to its starting size, so sizes stay roughly stable.
Every change goes through the service, which applies it to the truth and publishes it.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from replicator.simulator.catalog import (
    COMPANY_KEY_NAMES,
    EVENT_SUBTYPES,
    METRIC_PERIODS,
    USER_KEY_NAMES,
)
from replicator.simulator.dataset import generate
from replicator.simulator.entities import company_content, make_metric, make_traits
from replicator.simulator.rules import make_rules
from replicator.simulator.service import Service

logger = logging.getLogger(__name__)

Record = dict[str, Any]
_MAX_WAIT_S = 0.1


class MutationStream:
    """Publishes ``rate`` random changes per second until stopped."""

    def __init__(self, service: Service, rate: float, seed: int) -> None:
        self.service = service
        self.rate = rate
        self.applied: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unique = itertools.count(1)
        self._run_tag = f"{time.time_ns() // 1_000_000:x}"
        self._targets = {kind: service.count(kind) for kind in ("company", "user")}
        self._targets["flag"] = len(service.state.flags)
        self._operations: list[tuple[Callable[[], str], int]] = [
            (lambda: self._partial("company"), 30),
            (lambda: self._full("company"), 8),
            (lambda: self._rename("company"), 4),
            (lambda: self._churn("company"), 8),
            (lambda: self._partial("user"), 20),
            (lambda: self._full("user"), 8),
            (lambda: self._churn("user"), 8),
            (self._edit_flag, 6),
            (self._churn_flag, 2),
        ]

    def start(self) -> None:
        """Start the generator thread."""
        self._thread = threading.Thread(target=self._run, name="simulator-mutations", daemon=True)
        self._thread.start()
        logger.info("Started the mutation stream at %.1f changes per second.", self.rate)

    def stop(self) -> None:
        """Stop the generator thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        logger.info("Stopped the mutation stream after %d changes.", sum(self.applied.values()))

    def _run(self) -> None:
        start = time.monotonic()
        done = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while done < due and not self._stop.is_set():
                self.step()
                done += 1
            wait_s = start + (done + 1) / self.rate - time.monotonic()
            self._stop.wait(min(max(wait_s, 0.0), _MAX_WAIT_S))

    def step(self) -> str:
        """Apply and publish one random change; return its name."""
        operations, weights = zip(*self._operations, strict=True)
        with self.service.lock:
            name = self._rng.choices(operations, weights)[0]()
        self.applied[name] += 1
        return name

    # Helpers. Every method below runs with the service lock held.

    def _pick(self, kind: str) -> str | None:
        table = self.service.state.table(kind)
        count = table.count()
        return table.id_at(self._rng.randrange(count)) if count else None

    def _unique_value(self, name: str) -> str:
        serial = next(self._unique)
        if name == "domain":
            return f"changed-{self._run_tag}-{serial}.example.com"
        return f"{name}-changed-{self._run_tag}-{serial}"

    def _record(self, kind: str, entity_id: str) -> Record:
        record = self.service.state.table(kind).get(entity_id)
        assert record is not None
        return record

    # Companies and users.

    def _partial(self, kind: str) -> str:
        entity_id = self._pick(kind)
        if entity_id is None:
            return self._create(kind)
        record = self._record(kind, entity_id)
        choices = ["traits", "keys"] + (["metrics", "credit_balances"] if kind == "company" else [])
        field = self._rng.choice(choices)
        fields = getattr(self, f"_partial_{field}")(kind, record)
        self.service.patch(kind, entity_id, fields)
        return f"{kind}_partial_{field}"

    def _partial_traits(self, kind: str, record: Record) -> Record:
        return {"traits": make_traits(self.service.catalog, self._rng, kind)}

    def _partial_keys(self, kind: str, record: Record) -> Record:
        names = COMPANY_KEY_NAMES if kind == "company" else USER_KEY_NAMES
        missing = [n for n in names if n not in (record.get("keys") or {})]
        name = self._rng.choice(missing or list(names))
        return {"keys": {name: self._unique_value(name)}}

    def _partial_metrics(self, kind: str, record: Record) -> Record:
        metrics = record.get("metrics") or []
        if metrics and self._rng.random() < 0.8:
            metric = self._rng.choice(metrics)
            return {"metrics": [{**metric, "value": metric["value"] + self._rng.randint(1, 50)}]}
        new = make_metric(
            self.service.catalog,
            self._rng,
            str(record["id"]),
            self._rng.choice(EVENT_SUBTYPES),
            self._rng.choice(METRIC_PERIODS),
            "first_of_month",
        )
        return {"metrics": [new]}

    def _partial_credit_balances(self, kind: str, record: Record) -> Record:
        credit_id = self._rng.choice(self.service.catalog.credit_ids)
        return {"credit_balances": {credit_id: self._rng.choice((0, 50, 480, 1200.5))}}

    def _full(self, kind: str) -> str:
        entity_id = self._pick(kind)
        if entity_id is None:
            return self._create(kind)
        record = self._record(kind, entity_id)
        if kind == "company":
            fresh = company_content(self.service.catalog, self._rng, entity_id, record["keys"])
        else:
            fresh = {**record, "traits": make_traits(self.service.catalog, self._rng, "user")}
        self.service.upsert(kind, fresh)
        return f"{kind}_full"

    def _rename(self, kind: str) -> str:
        entity_id = self._pick(kind)
        if entity_id is None:
            return self._create(kind)
        keys = self._record(kind, entity_id).get("keys") or {}
        name = self._rng.choice(sorted(keys) or ["domain"])
        self.service.rename_key(kind, entity_id, name, self._unique_value(name))
        return f"{kind}_rename"

    def _create(self, kind: str) -> str:
        index = self.service.state.table(kind).allocate_index()
        self.service.upsert(kind, generate(self.service.catalog, kind, index))
        return f"{kind}_create"

    def _churn(self, kind: str) -> str:
        count = self.service.state.table(kind).count()
        target = self._targets[kind]
        grow = count < target if count != target else self._rng.random() < 0.5
        if grow or count == 0:
            return self._create(kind)
        entity_id = self._pick(kind)
        assert entity_id is not None
        self.service.delete(kind, entity_id)
        return f"{kind}_delete"

    # Flags.

    def _edit_flag(self) -> str:
        if not self.service.state.flags:
            return self._create_flag()
        key = self._rng.choice(sorted(self.service.state.flags))
        flag = self.service.state.flags[key]
        index = self.service.catalog.entity_index("flag", str(flag["id"])) or 0
        rules = make_rules(
            self.service.catalog, self._rng, str(flag["id"]), index, next(self._unique)
        )
        edited = {**flag, "rules": rules, "default_value": not flag.get("default_value")}
        message_type = self._rng.choice(("full", "partial"))
        self.service.upsert_flag(edited, message_type)
        return "flag_edit"

    def _create_flag(self) -> str:
        state = self.service.state
        while True:
            index = state.next_flag_index
            state.next_flag_index += 1
            flag = generate(self.service.catalog, "flag", index)
            if flag["key"] not in state.flags:
                break
        self.service.upsert_flag(flag)
        return "flag_create"

    def _churn_flag(self) -> str:
        count = len(self.service.state.flags)
        target = self._targets["flag"]
        grow = count < target if count != target else self._rng.random() < 0.5
        if grow or count == 0:
            return self._create_flag()
        self.service.delete_flag(self._rng.choice(sorted(self.service.state.flags)))
        return "flag_delete"

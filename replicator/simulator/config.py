"""Settings of one simulated Schematic service."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from replicator.simulator.dataset import MAX_GENERATED

AUTH_REJECT_CLOSE = "close"
AUTH_REJECT_HTTP = "http"
AUTH_REJECT_STYLES = (AUTH_REJECT_CLOSE, AUTH_REJECT_HTTP)

#: Largest REST page; a larger ``limit`` is rejected with 400.
#: NOTE: the real API's largest page is not known; 1000 is this simulator's choice.
MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_LIMIT = 100


def check_rate(rate: object) -> None:
    """Raise ValueError unless ``rate`` is a finite number of messages per second >= 0."""
    if (
        isinstance(rate, (int, float))
        and not isinstance(rate, bool)
        and math.isfinite(rate)
        and rate >= 0
    ):
        return
    raise ValueError(
        f"Invalid rate={rate!r}: expected a finite number of messages per second >= 0."
    )


@dataclass
class SimulatorConfig:
    """Settings of one simulator: its data, its port, its stream and its auth behaviour.

    ``companies``, ``users`` and ``flags`` size the generated dataset; ``dataset`` (a dict
    in the dataset-file format) or ``dataset_path`` replace it. ``rate`` is the mutation
    stream in messages per second (0 = none). ``retention`` is how many change messages
    are kept for replay. ``auth_reject_style`` is how a bad API key is rejected: ``close``
    (accept the upgrade, then close with 4001) or ``http`` (reject the upgrade with 401).
    ``replay_sends_flags_snapshot`` decides whether a connection that replays still gets
    the flags snapshot when it requests flags.
    """

    api_key: str
    companies: int = 100
    users: int = 300
    flags: int = 20
    seed: int = 7
    rate: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    retention: int = 100_000
    dataset: dict[str, Any] | None = None
    dataset_path: str | None = None
    auth_reject_style: str = AUTH_REJECT_CLOSE
    replay_sends_flags_snapshot: bool = True

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting and the accepted values."""
        if not self.api_key:
            raise ValueError("Missing api_key: the simulator needs the key clients must send.")
        for name in ("companies", "users", "flags"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_GENERATED:
                raise ValueError(
                    f"Invalid {name}={value!r}: expected an integer from 0 to {MAX_GENERATED}."
                )
        check_rate(self.rate)
        if self.retention < 0:
            raise ValueError(f"Invalid retention={self.retention!r}: expected an integer >= 0.")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"Invalid port={self.port!r}: expected 0 (any free port) to 65535.")
        if self.auth_reject_style not in AUTH_REJECT_STYLES:
            raise ValueError(
                f"Invalid auth_reject_style={self.auth_reject_style!r}: "
                f"expected one of {', '.join(AUTH_REJECT_STYLES)}."
            )
        if self.dataset is not None and self.dataset_path is not None:
            raise ValueError("Both dataset and dataset_path are set: give only one of them.")

"""Checks of the simulator's settings and rates, without a server where none is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from replicator.simulator import SimulatorConfig
from replicator.simulator.cli import dump_path_problem
from tests.simulator_helpers import API_KEY, running


@pytest.mark.parametrize("rate", [float("inf"), float("nan"), -1.0, -0.001, True, "10"])
def test_simulator_config_rejects_rate(rate: object) -> None:
    config = SimulatorConfig(api_key=API_KEY, rate=rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as caught:
        config.validate()
    assert str(caught.value).startswith(f"Invalid rate={rate!r}: expected a finite number")


@pytest.mark.parametrize("rate", [0, 0.5, 10, 1e6])
def test_simulator_config_accepts_rate(rate: float) -> None:
    SimulatorConfig(api_key=API_KEY, rate=rate).validate()


def test_simulator_mutation_rate_checked() -> None:
    with running(companies=5, users=5, flags=2) as simulator:
        for rate in (float("inf"), float("nan"), -2.0):
            with pytest.raises(ValueError, match="Invalid rate"):
                simulator.start_mutations(rate)
            with pytest.raises(ValueError, match="Invalid rate"):
                simulator.burst(5, rate=rate)
        assert simulator.seq == 0


def test_dump_path_problem(tmp_path: Path) -> None:
    assert dump_path_problem(None) is None
    assert dump_path_problem(str(tmp_path / "truth.json")) is None
    missing = dump_path_problem(str(tmp_path / "absent" / "truth.json"))
    assert missing is not None
    assert "does not exist; create it or choose another path" in missing
    folder = dump_path_problem(str(tmp_path))
    assert folder is not None
    assert "is a folder" in folder

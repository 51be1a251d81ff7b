"""The REST client against the simulator: items, 404s, auth, retries, the breaker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from replicator.api_client import ApiAuthError, ApiClient, ApiError
from replicator.simulator import Simulator, SimulatorConfig

KEY = "client-key"


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(api_key=KEY, companies=20, users=10, flags=2)) as sim:
        yield sim


def client(sim: Simulator, **options: float) -> ApiClient:
    return ApiClient(sim.base_url, KEY, int(options.pop("retries", 2)), 0, **options)


def test_item_returns_api_shape_or_none(simulator: Simulator) -> None:
    api = client(simulator)
    company_id = simulator.truth()["companies"][0]["id"]

    found = api.item("companies", company_id)
    missing = api.item("companies", "comp_missing")

    assert found is not None and found["id"] == company_id
    assert missing is None


def test_ids_are_escaped_in_item_paths(simulator: Simulator) -> None:
    record = dict(simulator.truth()["companies"][0], id="comp:odd/id?x", keys={"k": "odd"})
    simulator.upsert_company(record)

    found = client(simulator).item("companies", "comp:odd/id?x")

    assert found is not None and found["id"] == "comp:odd/id?x"


def test_wrong_key_raises_auth_error(simulator: Simulator) -> None:
    api = ApiClient(simulator.base_url, "wrong-key", 2, 0)

    with pytest.raises(ApiAuthError, match="SCHEMATIC_API_KEY"):
        api.count("companies")


def test_retries_then_succeeds(simulator: Simulator) -> None:
    simulator.faults.fail_page("/users/count", status=503, times=2, retry_after_s=0)

    assert client(simulator, retries=2).count("users") == 10


def test_breaker_opens_after_repeated_failures(simulator: Simulator) -> None:
    simulator.faults.fail_page("/companies/count", status=500, times=None, retry_after_s=0)
    api = client(simulator, retries=0, breaker_threshold=2, breaker_timeout_s=60)
    try:
        for _ in range(2):
            with pytest.raises(ApiError, match="HTTP 500"):
                api.count("companies")
        with pytest.raises(ApiError, match="circuit is open"):
            api.count("companies")
    finally:
        simulator.faults.clear_pages()

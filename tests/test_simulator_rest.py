"""REST paging and authentication of the simulator, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from schematic.companies.types.count_companies_response import CountCompaniesResponse
from schematic.companies.types.count_users_response import CountUsersResponse
from schematic.companies.types.list_companies_response import ListCompaniesResponse
from schematic.companies.types.list_users_response import ListUsersResponse

from replicator.simulator import Simulator
from tests.simulator_helpers import API_KEY, rest, running

COMPANIES = 250
USERS = 120


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with running(companies=COMPANIES, users=USERS, flags=5) as simulator:
        yield simulator


def _all_ids(simulator: Simulator, path: str, limit: int) -> list[str]:
    ids: list[str] = []
    offset = 0
    while True:
        page = rest(simulator, path, limit=limit, offset=offset).json()["data"]
        ids += [item["id"] for item in page]
        if len(page) < limit:
            return ids
        offset += limit


def test_rest_companies_pages_validate(simulator: Simulator) -> None:
    count = rest(simulator, "/companies/count")
    CountCompaniesResponse.model_validate(count.json())
    offset = 0
    while offset < COMPANIES:
        response = rest(simulator, "/companies", limit=100, offset=offset)
        body = ListCompaniesResponse.model_validate(response.json())
        assert body.params.limit == 100
        assert body.params.offset == offset
        assert len(body.data) == min(100, COMPANIES - offset)
        offset += 100

    assert count.json() == {"data": {"count": COMPANIES}, "params": {}}
    assert response.headers["Content-Type"].startswith("application/json")


def test_rest_users_pages_validate(simulator: Simulator) -> None:
    count = rest(simulator, "/users/count")
    CountUsersResponse.model_validate(count.json())
    for offset in (0, 100):
        body = ListUsersResponse.model_validate(
            rest(simulator, "/users", limit=100, offset=offset).json()
        )
        assert len(body.data) == min(100, USERS - offset)

    assert count.json()["data"]["count"] == USERS


def test_rest_pages_cover_every_entity(simulator: Simulator) -> None:
    ids = _all_ids(simulator, "/companies", 37)

    assert len(ids) == COMPANIES
    assert len(set(ids)) == COMPANIES
    assert ids[0] == simulator.catalog.entity_id("comp", 0)
    assert _all_ids(simulator, "/users", 1000) == [
        simulator.catalog.entity_id("user", i) for i in range(USERS)
    ]


def test_rest_default_limit(simulator: Simulator) -> None:
    body = rest(simulator, "/companies").json()

    assert body["params"] == {"limit": 100, "offset": 0}
    assert len(body["data"]) == 100


def test_rest_offset_past_end(simulator: Simulator) -> None:
    body = rest(simulator, "/users", limit=100, offset=10_000).json()

    assert body == {"data": [], "params": {"limit": 100, "offset": 10_000}}


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"limit": 0}, "Invalid limit='0'"),
        ({"limit": 1001}, "Invalid limit='1001'"),
        ({"limit": "ten"}, "Invalid limit='ten'"),
        ({"offset": -1}, "Invalid offset='-1'"),
        ({"offset": "1.5"}, "Invalid offset='1.5'"),
    ],
)
def test_rest_bad_paging_rejected(
    simulator: Simulator, params: dict[str, Any], fragment: str
) -> None:
    response = rest(simulator, "/companies", **params)

    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert "expected an integer" in response.json()["error"]


@pytest.mark.parametrize(
    "path", ["/companies", "/companies/count", "/users", "/users/count", "/_simulator/status"]
)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_rest_auth_required(simulator: Simulator, path: str, key: str | None) -> None:
    response = rest(simulator, path, key=key)

    assert response.status_code == 401
    assert "X-Schematic-Api-Key" in response.json()["error"]


def test_rest_counts_follow_truth() -> None:
    with running(companies=10, users=10) as simulator:
        company_id = simulator.catalog.entity_id("comp", 3)
        created = {
            **simulator.company(company_id),
            "id": "comp_new",  # type: ignore[dict-item]
            "keys": {"domain": "new.example.com"},
        }
        simulator.delete_company(company_id)
        simulator.upsert_company(created)
        simulator.delete_user(simulator.catalog.entity_id("user", 0))
        ids = [item["id"] for item in rest(simulator, "/companies").json()["data"]]

        assert rest(simulator, "/companies/count").json()["data"]["count"] == 10
        assert rest(simulator, "/users/count").json()["data"]["count"] == 9
        assert company_id not in ids
        assert ids[-1] == "comp_new"
        assert rest(simulator, "/users", limit=1).json()["data"][0]["id"].endswith("000001")


def test_rest_items_reflect_changes() -> None:
    with running(companies=5, users=5) as simulator:
        company_id = simulator.catalog.entity_id("comp", 0)
        simulator.rename_company_key(company_id, "domain", "renamed.example.com")
        item = rest(simulator, "/companies", limit=1).json()["data"][0]
        keys = {key["key"]: key["value"] for key in item["keys"]}

        assert keys["domain"] == "renamed.example.com"


def test_rest_status_endpoint(simulator: Simulator) -> None:
    body = rest(simulator, "/_simulator/status").json()

    assert body["companies"] == COMPANIES
    assert body["users"] == USERS
    assert body["flags"] == 5


def test_event_capture_batch_is_accepted_and_counted(simulator: Simulator) -> None:
    url = f"{simulator.base_url}/batch"
    key = {"X-Schematic-Api-Key": API_KEY}
    before = simulator.captured_events

    accepted = requests.post(
        url, json={"events": [{"type": "track"}, {"type": "flag_check"}]}, headers=key, timeout=5
    )
    rejected = requests.post(url, json={"events": []}, timeout=5)
    malformed = requests.post(url, data=b"[1]", headers=key, timeout=5)

    assert accepted.status_code == 200
    assert rejected.status_code == 401
    assert malformed.status_code == 400
    assert simulator.captured_events == before + 2


def test_rest_single_items_validate_and_404(simulator: Simulator) -> None:
    from schematic.companies.types.get_company_response import GetCompanyResponse
    from schematic.companies.types.get_user_response import GetUserResponse

    company_id = _all_ids(simulator, "/companies", 100)[0]
    user_id = _all_ids(simulator, "/users", 100)[0]

    company = rest(simulator, f"/companies/{company_id}")
    user = rest(simulator, f"/users/{user_id}")
    missing = rest(simulator, "/companies/comp_does_not_exist")
    unauthorized = rest(simulator, f"/users/{user_id}", key=None)

    assert company.status_code == 200
    assert GetCompanyResponse.model_validate(company.json()).data.id == company_id
    assert GetUserResponse.model_validate(user.json()).data.id == user_id
    assert missing.status_code == 404
    assert "comp_does_not_exist" in missing.json()["error"]
    assert unauthorized.status_code == 401

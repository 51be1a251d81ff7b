"""The REST fast path: items and pages encoded from draws and templates, byte for byte.

Each test compares the fast path with the dict path it replaces: the record from
``entities``, the item from ``api_shapes`` and ``orjson.dumps``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
import requests

from replicator.simulator import Simulator
from replicator.simulator.api_shapes import company_item, item, user_item
from replicator.simulator.catalog import build_catalog
from replicator.simulator.config import SimulatorConfig
from replicator.simulator.entities import make_company, make_user
from replicator.simulator.generated_items import company_json, user_json
from replicator.simulator.item_templates import build_templates
from replicator.simulator.projection import ENTITLEMENT_FIELDS, api_projection
from replicator.simulator.rest_pages import CHUNK_BYTES
from replicator.simulator.service import Service
from tests.simulator_helpers import API_KEY, company_from_item, rest, running, user_from_item

Record = dict[str, Any]

SEEDS = (0, 1, 7, 12345, 2**40 + 3)
#: Indexes from the start, around the six-digit id boundaries and far into a large set.
INDEXES = (*range(400), 3843, 3844, 3845, 238_327, 238_328, 999_999, 62**6 - 1, 62**6)


def _reference_page(service: Service, kind: str, offset: int, limit: int) -> bytes:
    items = service.page_items(kind, offset, limit)
    return orjson.dumps({"data": items, "params": {"limit": limit, "offset": offset}})


def _page(service: Service, kind: str, offset: int, limit: int) -> bytes:
    return b"".join(service.page_body(kind, offset, limit))


@pytest.mark.parametrize("seed", SEEDS)
def test_company_json_matches_dict_path(seed: int) -> None:
    catalog = build_catalog(seed)
    templates = build_templates(catalog)
    for index in INDEXES:
        expected = orjson.dumps(company_item(make_company(catalog, index))).decode()
        assert company_json(templates, index) == expected, f"seed {seed}, company {index}"


@pytest.mark.parametrize("seed", SEEDS)
def test_user_json_matches_dict_path(seed: int) -> None:
    catalog = build_catalog(seed)
    templates = build_templates(catalog)
    for index in INDEXES:
        expected = orjson.dumps(user_item(make_user(catalog, index))).decode()
        assert user_json(templates, index) == expected, f"seed {seed}, user {index}"


def test_fast_path_covers_every_item_shape() -> None:
    # The byte comparisons above only prove the shapes that the indexes reach.
    catalog = build_catalog(7)
    items = [company_item(make_company(catalog, index)) for index in range(400)]

    assert {e["value_type"] for i in items for e in i["entitlements"]} >= {"numeric", "credit"}
    assert any("soft_limit" in e for i in items for e in i["entitlements"])
    assert any(i["billing_credit_balances"] is None for i in items)
    assert any(i["billing_credit_balances"] == {} for i in items)
    assert any(i["plan"] is None for i in items)
    assert any(len(i["add_ons"]) == 2 for i in items)
    assert any(i["billing_subscription"] is None and i["billing_subscriptions"] for i in items)
    assert any(not i["billing_subscriptions"] for i in items)
    assert {len(i["rules"]) for i in items} == {0, 1, 2}
    assert any(len(i["keys"]) == 4 for i in items)
    assert {len(i["entity_traits"]) for i in items} == {1, 2, 3, 4, 5}


def test_entitlement_fields_sorted() -> None:
    # The fast path encodes entitlements with sorted keys to get the API field order.
    assert list(ENTITLEMENT_FIELDS) == sorted(ENTITLEMENT_FIELDS)


@pytest.mark.parametrize("seed, companies, users", [(3, 250, 130), (7, 1000, 1), (11, 0, 99)])
def test_pages_match_dict_path(seed: int, companies: int, users: int) -> None:
    service = Service(SimulatorConfig(api_key="k", seed=seed, companies=companies, users=users))
    for kind, size in (("company", companies), ("user", users)):
        for offset, limit in [(0, 100), (0, 1), (size - 1, 100), (size, 100), (size + 7, 5)]:
            if offset < 0:
                continue
            page = _page(service, kind, offset, limit)
            assert page == _reference_page(service, kind, offset, limit), (kind, offset, limit)


def test_pages_with_changes_match_dict_path() -> None:
    service = Service(SimulatorConfig(api_key="k", seed=5, companies=300, users=300))
    catalog = service.catalog
    service.patch_company(catalog.entity_id("comp", 3), {"traits": []})
    service.delete_company(catalog.entity_id("comp", 4))
    service.delete_company(catalog.entity_id("comp", 150))
    service.rename_user_key(catalog.entity_id("user", 0), "email", "renamed@example.com")
    created = {**make_company(catalog, 900), "id": "comp_created"}
    service.upsert_company(created)

    for kind in ("company", "user"):
        for offset in range(0, 320, 50):
            assert _page(service, kind, offset, 50) == _reference_page(service, kind, offset, 50)
    last = orjson.loads(_page(service, "company", 297, 100))["data"]
    assert [i["id"] for i in last] == [catalog.entity_id("comp", 299), "comp_created"]


def test_pages_from_dataset_match_dict_path() -> None:
    catalog = build_catalog(9)
    dataset = {
        "flags": [],
        "companies": [make_company(catalog, i) for i in range(120)],
        "users": [make_user(catalog, i) for i in range(30)],
    }
    service = Service(SimulatorConfig(api_key="k", seed=9, dataset=dataset))

    for kind in ("company", "user"):
        for offset in (0, 100):
            assert _page(service, kind, offset, 100) == _reference_page(service, kind, offset, 100)


def test_page_chunks_bounded() -> None:
    service = Service(SimulatorConfig(api_key="k", companies=1000, users=0))
    chunks = service.page_body("company", 0, 1000)
    largest_item = max(len(orjson.dumps(i)) for i in service.page_items("company", 0, 1000))

    assert len(chunks) > 1
    assert all(len(chunk) < CHUNK_BYTES + largest_item + 64 for chunk in chunks)
    assert b"".join(chunks) == _reference_page(service, "company", 0, 1000)


# Over real sockets.


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with running(companies=333, users=205, flags=0, seed=21) as simulator:
        yield simulator


def _fetch_all(simulator: Simulator, path: str, limit: int) -> list[Record]:
    items: list[Record] = []
    offset = 0
    while True:
        page = rest(simulator, path, limit=limit, offset=offset).json()["data"]
        items += page
        if len(page) < limit:
            return items
        offset += limit


def test_rest_bytes_match_dict_path(simulator: Simulator) -> None:
    for path, kind in (("/companies", "company"), ("/users", "user")):
        for offset, limit in [(0, 100), (300, 100), (204, 1), (0, 1000)]:
            response = rest(simulator, path, limit=limit, offset=offset)
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("application/json")
            assert int(response.headers["Content-Length"]) == len(response.content)
            assert response.content == _reference_page(simulator, kind, offset, limit)


def test_rest_round_trip_is_truth_projection(simulator: Simulator) -> None:
    truth = simulator.truth()
    companies = _fetch_all(simulator, "/companies", 100)
    users = _fetch_all(simulator, "/users", 100)

    assert [company_from_item(i) for i in companies] == [
        api_projection("company", record) for record in truth["companies"]
    ]
    assert [user_from_item(i) for i in users] == [
        api_projection("user", record) for record in truth["users"]
    ]


@pytest.mark.parametrize(
    "offset, limit, expected",
    [
        (0, 100, 100),
        (300, 100, 33),  # the last, partial page
        (332, 100, 1),
        (333, 100, 0),  # exactly at the end
        (5000, 100, 0),  # past the end
        (100, 1, 1),
        (0, 1000, 333),
    ],
)
def test_rest_paging_edges(simulator: Simulator, offset: int, limit: int, expected: int) -> None:
    body = rest(simulator, "/companies", limit=limit, offset=offset).json()
    ids = [i["id"] for i in body["data"]]

    assert body["params"] == {"limit": limit, "offset": offset}
    assert len(ids) == expected
    assert ids == [simulator.catalog.entity_id("comp", i) for i in range(offset, offset + expected)]


def test_rest_pages_cover_each_entity_once(simulator: Simulator) -> None:
    for limit in (1, 7, 100, 333, 334):
        ids = [i["id"] for i in _fetch_all(simulator, "/users", limit)]
        assert ids == [simulator.catalog.entity_id("user", i) for i in range(205)], limit


def test_rest_item_matches_page_item(simulator: Simulator) -> None:
    company_id = simulator.catalog.entity_id("comp", 17)
    one = rest(simulator, f"/companies/{company_id}").json()["data"]
    paged = rest(simulator, "/companies", limit=1, offset=17).json()["data"][0]

    assert one == paged
    assert one == item("company", simulator.company(company_id) or {})


def test_rest_pages_concurrent_clients(simulator: Simulator) -> None:
    # Pages are built on executor threads; concurrent requests must not mix their draws.
    def fetch(offset: int) -> bytes:
        with requests.Session() as session:
            session.headers["X-Schematic-Api-Key"] = API_KEY
            url = simulator.base_url + "/companies"
            return session.get(url, params={"limit": 10, "offset": offset}, timeout=10).content

    offsets = list(range(0, 330, 10)) * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(fetch, offsets))

    for offset, body in zip(offsets, bodies, strict=True):
        assert body == _reference_page(simulator, "company", offset, 10), offset

"""REST items of generated companies and users, encoded straight from the seeded draws.

``company_json(templates, index)`` returns the text of
``orjson.dumps(company_item(make_company(catalog, index)))``, and ``user_json`` that of
the user item. Neither builds the record or the item as dicts. Each makes the draws of
:mod:`entities` in the same order (see :mod:`draws`) and fills the templates of
:mod:`item_templates`.

NOTE: this module repeats the generator of :mod:`entities` draw for draw, so a change
there must be made here too. The tests compare both paths for several seeds and fail
on any difference.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from replicator.simulator.api_shapes import PRICE
from replicator.simulator.catalog import (
    COMPANY_KEY_NAMES,
    COMPANY_TRAITS,
    EVENT_SUBTYPES,
    FEATURE_KEYS,
    METRIC_PERIODS,
    MONTH_RESETS,
    USER_KEY_NAMES,
    USER_TRAITS,
    VALUE_TYPES,
    WORDS,
    Catalog,
)
from replicator.simulator.draws import Bits, below, sample_positions, seeded_core
from replicator.simulator.entities import PERIOD_WINDOWS, company_key_value, user_key_value
from replicator.simulator.item_templates import ItemTemplates
from replicator.simulator.times import stamp

Uniform = Callable[[], float]
#: (event subtype, period, month reset, value) of one generated metric.
Metric = tuple[str, str, str, int]

_COUNTS_0_0_1_2 = (0, 0, 1, 2)
_BALANCES = (0, 250, 1200, 99.5, 10_000)
_ALLOCATIONS = (1000, 5000, 100_000)
_CONSUMPTION_RATES = (1, 0.5, 2)
_BOOLEANS = ("true", "false")
_RESOURCE_POOL = 1000
_FLAG_POOL = 50
_MAX_TRAITS = 5
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_RESET_JSON = tuple(orjson.dumps(reset).decode() for reset in MONTH_RESETS)


def _array(parts: list[str]) -> str:
    return "[" + ",".join(parts) + "]"


# Keys and traits, shared by companies and users.


def _keys(catalog: Catalog, kind: str, index: int) -> list[tuple[str, str]]:
    """Draw which keys an entity has, as entities._keys does; return (name, value) pairs."""
    bits = seeded_core(f"{catalog.seed}:{kind}:keys:{index}").getrandbits
    names: tuple[str, ...]
    if kind == "company":
        names, fixed, value_of = COMPANY_KEY_NAMES, 2, company_key_value
    else:
        names, fixed, value_of = USER_KEY_NAMES, 1, user_key_value
    chosen = list(names[:fixed])
    count = below(bits, 3)
    if count:
        chosen += [names[fixed + p] for p in sample_positions(bits, len(names) - fixed, count)]
    return [(name, value_of(catalog, name, index)) for name in chosen]


def _display_name(keys: list[tuple[str, str]]) -> str:
    """Return api_shapes.display_name of generated keys, whose first key is always the
    ``domain`` of a company or the ``email`` of a user."""
    name, value = keys[0]
    if name == "domain":
        return value.split(".")[0].replace("-", " ").title()
    return value.split("@")[0].replace(".", " ").title()


def _trait_value(bits: Bits, name: str, comparable_type: str) -> str:
    if comparable_type == "int":
        return str(1 + below(bits, 2000))
    if comparable_type == "bool":
        return _BOOLEANS[below(bits, 2)]
    if comparable_type == "date":
        month = _TWO_DIGITS[1 + below(bits, 12)]
        return f"2026-{month}-{_TWO_DIGITS[1 + below(bits, 28)]}"
    if name == "website":
        return f"https://{WORDS[below(bits, len(WORDS))]}.example.com"
    return WORDS[below(bits, len(WORDS))]


def _traits(bits: Bits, kind: str) -> list[tuple[int, str]]:
    """Draw the traits as (table position, value), as entities.make_traits does."""
    table = COMPANY_TRAITS if kind == "company" else USER_TRAITS
    count = 1 + below(bits, min(_MAX_TRAITS, len(table)))
    positions = sample_positions(bits, len(table), count)
    positions.sort()
    traits = []
    for p in positions:
        name, comparable_type = table[p]
        traits.append((p, _trait_value(bits, name, comparable_type)))
    return traits


def _common_parts(
    t: ItemTemplates,
    kind: str,
    entity_id: str,
    keys: list[tuple[str, str]],
    traits: list[tuple[int, str]],
    created: str,
) -> tuple[str, str, str]:
    """Encode the ``keys``, ``entity_traits`` and ``traits`` fields of an item."""
    # The f-strings fill the templates' slots in order: see ItemTemplates.
    key_items = t.key_items
    key_parts = []
    for name, value in keys:
        f0, f1, f2, f3, f4, f5, f6, f7 = key_items[kind, name]
        key_parts.append(
            f"{f0}{entity_id}{f1}{value}{f2}{entity_id}"
            f"{f3}{created}{f4}{created}{f5}{created}{f6}{created}{f7}"
        )
    items, members = t.trait_items[kind], t.trait_members[kind]
    trait_parts, member_parts = [], []
    for position, (p, value) in enumerate(traits):
        f0, f1, f2, f3, f4, f5, f6 = items[p][position]
        trait_parts.append(
            f"{f0}{entity_id}{f1}{value}{f2}{created}{f3}{created}{f4}{created}{f5}{created}{f6}"
        )
        m0, m1 = members[p]
        member_parts.append(f"{m0}{value}{m1}")
    return _array(key_parts), _array(trait_parts), "{" + ",".join(member_parts) + "}"


# Companies.


def _plan(t: ItemTemplates, bits: Bits, uniform: Uniform) -> tuple[int, int, list[int]] | None:
    """Draw (plan, version, add-ons) as entities._plans does; None for no plan."""
    plan = below(bits, len(t.plan_entries))
    add_on_count = _COUNTS_0_0_1_2[below(bits, 4)]
    add_ons = sorted(sample_positions(bits, len(t.add_on_entries), add_on_count))
    version = below(bits, 2)
    if uniform() < 0.1:
        return None
    return plan, version, add_ons


def _balances(t: ItemTemplates, bits: Bits) -> list[tuple[str, float]]:
    """Draw the credit balances as (credit id, balance), in the order of the record's map."""
    credit_ids = t.catalog.credit_ids
    credits = sample_positions(bits, len(credit_ids), below(bits, len(credit_ids) + 1))
    return [(credit_ids[c], _BALANCES[below(bits, len(_BALANCES))]) for c in credits]


def _metrics(bits: Bits) -> list[Metric]:
    """Draw up to five distinct metrics, sorted, each with its value, as entities._metrics."""
    count = below(bits, 6)
    if not count:
        return []
    combos = set()
    for _ in range(count):
        subtype = EVENT_SUBTYPES[below(bits, len(EVENT_SUBTYPES))]
        period = METRIC_PERIODS[below(bits, len(METRIC_PERIODS))]
        combos.add((subtype, period, MONTH_RESETS[below(bits, len(MONTH_RESETS))]))
    return [
        (subtype, period, reset, below(bits, 50_001)) for subtype, period, reset in sorted(combos)
    ]


def _metered(bits: Bits, uniform: Uniform, metrics: list[Metric]) -> dict[str, object]:
    subtype, period, reset, value = metrics[below(bits, len(metrics))]
    allocation = _ALLOCATIONS[below(bits, len(_ALLOCATIONS))]
    fields: dict[str, object] = {
        "allocation": allocation,
        "usage": value,
        "event_name": subtype,
        "metric_period": period,
        "month_reset": reset,
        "metric_reset_at": PERIOD_WINDOWS[period][1],
    }
    if uniform() < 0.5:
        fields["soft_limit"] = allocation * 2
        fields["warning_tiers"] = [{"key": "80-percent", "value": allocation * 8 // 10}]
    return fields


def _credit(bits: Bits, balances: list[tuple[str, float]]) -> dict[str, object]:
    choices = sorted(balances)
    credit_id, balance = choices[below(bits, len(choices))]
    total = balance + below(bits, 501)
    return {
        "credit_id": credit_id,
        "credit_total": total,
        "credit_used": total - balance,
        "credit_remaining": balance,
        "consumption_rate": _CONSUMPTION_RATES[below(bits, len(_CONSUMPTION_RATES))],
        "event_subtype": EVENT_SUBTYPES[below(bits, len(EVENT_SUBTYPES))],
    }


def _entitlement(
    t: ItemTemplates,
    bits: Bits,
    uniform: Uniform,
    value_type: str,
    metrics: list[Metric],
    balances: list[tuple[str, float]],
) -> dict[str, object]:
    feature = below(bits, len(FEATURE_KEYS))
    fields: dict[str, object] = {
        "feature_id": t.catalog.feature_ids[feature],
        "feature_key": FEATURE_KEYS[feature],
        "value_type": value_type,
    }
    if value_type == "numeric" and metrics:
        fields.update(_metered(bits, uniform, metrics))
    elif value_type == "credit" and balances:
        fields.update(_credit(bits, balances))
    elif value_type == "numeric":
        fields["allocation"] = 1 + below(bits, 50)
        fields["usage"] = below(bits, 51)
    return fields


def _entitlements(
    t: ItemTemplates,
    bits: Bits,
    uniform: Uniform,
    metrics: list[Metric],
    balances: list[tuple[str, float]],
) -> list[dict[str, object]]:
    count = below(bits, 5)
    value_types = [VALUE_TYPES[p] for p in sample_positions(bits, len(VALUE_TYPES), count)]
    return [_entitlement(t, bits, uniform, kind, metrics, balances) for kind in value_types]


def _override_rule(
    t: ItemTemplates, bits: Bits, uniform: Uniform, company_id: str, position: int
) -> str:
    suffix = company_id[5:]
    if position == 0:
        # A company condition draws three resource ids and a sample of them, then the
        # generator replaces them with the company itself.
        for _ in range(3):
            below(bits, _RESOURCE_POOL)
        sample_positions(bits, 3, 1 + below(bits, 3))
        flag_id, value = _flag_and_value(t, bits, uniform)
        f0, f1, f2, f3, f4, f5 = t.override_rules[0]
        return f"{f0}{suffix}{f1}{flag_id}{f2}{value}{f3}{suffix}{f4}{company_id}{f5}"

    period = METRIC_PERIODS[below(bits, len(METRIC_PERIODS))]
    subtype = EVENT_SUBTYPES[below(bits, len(EVENT_SUBTYPES))]
    metric_value = 10 + below(bits, 99_991)
    reset = "null"
    if period == "current_month":
        reset = _RESET_JSON[below(bits, len(MONTH_RESETS))]
    flag_id, value = _flag_and_value(t, bits, uniform)
    f0, f1, f2, f3, f4, f5, f6, f7, f8 = t.override_rules[1]
    return (
        f"{f0}{suffix}{f1}{flag_id}{f2}{value}{f3}{suffix}"
        f"{f4}{subtype}{f5}{metric_value}{f6}{period}{f7}{reset}{f8}"
    )


def _flag_and_value(t: ItemTemplates, bits: Bits, uniform: Uniform) -> tuple[str, str]:
    """Draw an override rule's flag and its value (JSON), after its condition."""
    flag_id = t.flag_ids[below(bits, _FLAG_POOL)]
    return flag_id, "true" if uniform() < 0.5 else "false"


def _rules(t: ItemTemplates, bits: Bits, uniform: Uniform, company_id: str) -> list[str]:
    count = _COUNTS_0_0_1_2[below(bits, 4)]
    return [_override_rule(t, bits, uniform, company_id, position) for position in range(count)]


def _plan_parts(t: ItemTemplates, plan: tuple[int, int, list[int]] | None) -> tuple[str, str, str]:
    """Encode the ``plan``, ``add_ons`` and ``plans`` fields."""
    if plan is None:
        return "null", "[]", "[]"
    chosen, version, add_ons = plan
    add_on_views = [t.add_on_views[a] for a in add_ons]
    entries = [t.plan_entries[chosen], *(t.add_on_entries[a] for a in add_ons)]
    return t.plan_views[chosen][version], _array(add_on_views), _array(entries)


def _billing(
    t: ItemTemplates, company_id: str, month: int | None, products: list[int]
) -> tuple[str, str]:
    """Encode the ``billing_subscription`` and ``billing_subscriptions`` fields."""
    if month is None and not products:
        return "null", "[]"
    if month is None:
        subscription_id = f"sub_{company_id}_billing"
        start, end = 0, 0
    else:
        subscription_id = f"sub_{company_id[5:]}"
        start, end = t.subscription_periods[month - 1]
    product_parts = []
    for p in products:
        f0, f1 = t.products[p]
        product_parts.append(f"{f0}{subscription_id}{f1}")
    s = t.subscription
    view = (
        f"{s[0]}{subscription_id}{s[1]}{company_id}{s[2]}{company_id}{s[3]}{start}{s[4]}{end}"
        f"{s[5]}{_array(product_parts)}{s[6]}{subscription_id}{s[7]}{PRICE * len(products)}"
        f"{s[8]}{stamp(company_id, 'subscribed')}{s[9]}"
    )
    return ("null" if month is None else view), "[" + view + "]"


def _balances_json(balances: list[tuple[str, float]], null: bool) -> str:
    return "null" if null else orjson.dumps(dict(balances)).decode()


def company_json(t: ItemTemplates, index: int) -> str:
    """Encode the REST item of generated company ``index`` (revision 0)."""
    catalog = t.catalog
    company_id = catalog.entity_id("comp", index)
    core = seeded_core(f"{catalog.seed}:company:{index}:0")
    bits, uniform = core.getrandbits, core.random
    plan = _plan(t, bits, uniform)
    balances = _balances(t, bits)
    metrics = _metrics(bits)
    entitlements = _entitlements(t, bits, uniform, metrics, balances)
    products = sample_positions(bits, len(t.products), below(bits, 4))

    # entities._go_null draws once for each empty list or map, in the record's field order.
    if not products:
        uniform()
    balances_null = not balances and uniform() < 0.5
    if not metrics:
        uniform()
    if plan is None:  # empty plan_ids and plan_version_ids
        uniform()
        uniform()
    rules = _rules(t, bits, uniform, company_id)
    if not rules:
        uniform()
    month = None if uniform() < 0.15 else 1 + below(bits, 12)
    traits = _traits(bits, "company")

    keys = _keys(catalog, "company", index)
    created = stamp(company_id, "created")
    key_json, entity_traits, trait_object = _common_parts(
        t, "company", company_id, keys, traits, created
    )
    name = _display_name(keys)
    user_count = int.from_bytes(company_id.encode()[-2:], "big") % 50
    plan_json, add_ons, plans = _plan_parts(t, plan)
    billing, billings = _billing(t, company_id, month, products)
    metric_parts = []
    for subtype, period, reset, value in metrics:
        f0, f1, f2 = t.metrics[subtype, period, reset]
        metric_parts.append(f"{f0}{company_id}{f1}{value}{f2}")
    # The REST item lists entitlement fields in ENTITLEMENT_FIELDS order, which is sorted.
    entitlement_json = orjson.dumps(entitlements, option=orjson.OPT_SORT_KEYS).decode()
    h = t.company_head
    return (
        f"{h[0]}{company_id}{h[1]}{name}{h[2]}{created}{h[3]}{stamp(company_id, 'updated')}"
        f"{h[4]}{user_count}{h[5]}{key_json}{h[6]}{entity_traits}{h[7]}{trait_object}"
        f"{h[8]}{plan_json}{h[9]}{add_ons}{h[10]}{plans}{h[11]}{billing}{h[12]}{billings}"
        f"{h[13]}{_balances_json(balances, balances_null)}{h[14]}{_array(metric_parts)}"
        f"{h[15]}{_array(rules)}{h[16]}{entitlement_json}{h[17]}"
    )


# Users.


def user_json(t: ItemTemplates, index: int) -> str:
    """Encode the REST item of generated user ``index`` (revision 0)."""
    catalog = t.catalog
    user_id = catalog.entity_id("user", index)
    bits = seeded_core(f"{catalog.seed}:user:{index}:0").getrandbits
    # entities.user_content draws once more after the traits, for its empty rules list,
    # which the REST item does not carry.
    traits = _traits(bits, "user")
    keys = _keys(catalog, "user", index)
    created = stamp(user_id, "created")
    key_json, entity_traits, trait_object = _common_parts(t, "user", user_id, keys, traits, created)
    name = _display_name(keys)
    h = t.user_head
    return (
        f"{h[0]}{user_id}{h[1]}{name}{h[2]}{created}{h[3]}{stamp(user_id, 'updated')}"
        f"{h[4]}{key_json}{h[5]}{entity_traits}{h[6]}{trait_object}{h[7]}"
    )

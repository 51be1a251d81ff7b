"""Fixed vocabulary of a simulated environment: ids, plans, credits, features, traits.

Everything here is derived from the seed alone, so two simulators started with the same
seed describe the same environment. Entity ids have the form ``<prefix>_<tag><index>``,
where the tag is three base-62 characters taken from the seed and the index is base-62,
so an id can be turned back into its index without any table.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from replicator.simulator.draws import seed_text, seed_value

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX_WIDTH = 6
#: Indexes below this have six base-62 digits.
_PAIRS_LIMIT = 62**_INDEX_WIDTH

RULE_TYPES = (
    "company_override",
    "company_override_usage_exceeded",
    "default",
    "global_override",
    "plan_entitlement",
    "plan_entitlement_usage_exceeded",
    "standard",
)
OVERRIDE_RULE_TYPES = ("company_override", "company_override_usage_exceeded")
CONDITION_TYPES = (
    "base_plan",
    "billing_product",
    "company",
    "credit",
    "metric",
    "plan",
    "plan_version",
    "trait",
    "user",
)
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "is_empty", "not_empty")
METRIC_PERIODS = ("all_time", "current_day", "current_week", "current_month")
MONTH_RESETS = ("first_of_month", "billing_cycle")
VALUE_TYPES = ("boolean", "credit", "numeric", "trait", "unknown", "unlimited")
EVENT_SUBTYPES = ("api_call", "export", "report_run", "ai_tokens", "sms_sent", "seat_added")
COMPANY_KEY_NAMES = ("domain", "external_id", "crm_id", "stripe_customer_id")
USER_KEY_NAMES = ("email", "user_id", "slack_id")

#: (name, comparable type) of the trait definitions of companies and of users.
COMPANY_TRAITS = (
    ("tier", "string"),
    ("seats", "int"),
    ("is_enterprise", "bool"),
    ("renewal_date", "date"),
    ("region", "string"),
    ("website", "string"),
)
USER_TRAITS = (
    ("role", "string"),
    ("logins", "int"),
    ("beta_opt_in", "bool"),
    ("signup_date", "date"),
)

WORDS = (
    "acme",
    "apex",
    "blue",
    "bright",
    "cedar",
    "coral",
    "delta",
    "ember",
    "fable",
    "globe",
    "harbor",
    "iron",
    "jade",
    "kite",
    "lumen",
    "maple",
    "nova",
    "orbit",
    "pine",
    "quartz",
    "river",
    "summit",
    "tidal",
    "umber",
    "vertex",
    "willow",
    "xenon",
    "yonder",
    "zephyr",
)
FIRST_NAMES = (
    "ana",
    "ben",
    "chen",
    "dana",
    "eli",
    "fatima",
    "goran",
    "hana",
    "ivan",
    "jun",
    "kofi",
    "lena",
    "mateo",
    "nia",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sven",
    "tara",
)
PLAN_NAMES = ("Free", "Starter", "Pro", "Business", "Enterprise", "Scale")
ADD_ON_NAMES = ("Extra Seats", "Priority Support", "AI Pack")
FEATURE_KEYS = (
    "api-calls",
    "exports",
    "reports",
    "ai-assistant",
    "sms",
    "seats",
    "sso",
    "audit-log",
    "custom-domains",
    "webhooks",
    "sandbox",
    "analytics",
)
CREDIT_NAMES = ("api-credits", "ai-tokens", "sms-credits")


def encode_index(index: int, width: int = _INDEX_WIDTH) -> str:
    """Encode a non-negative integer in base 62, left-padded with zeros to ``width``."""
    if width == _INDEX_WIDTH and 0 <= index < _PAIRS_LIMIT:
        # Every entity id takes this path: three lookups of two digits each.
        high, low = divmod(index, 62 * 62)
        top, middle = divmod(high, 62 * 62)
        pairs = _digit_pairs()
        return pairs[top] + pairs[middle] + pairs[low]
    digits = []
    while True:
        index, rest = divmod(index, 62)
        digits.append(_ALPHABET[rest])
        if index == 0:
            break
    return "".join(reversed(digits)).rjust(width, "0")


@functools.cache
def _digit_pairs() -> tuple[str, ...]:
    """Return every two-digit base-62 string, "00" to "zz", in numeric order."""
    return tuple(first + second for first in _ALPHABET for second in _ALPHABET)


def decode_index(text: str) -> int | None:
    """Decode a base-62 string, or return None when it contains another character."""
    value = 0
    for char in text:
        digit = _ALPHABET.find(char)
        if digit < 0:
            return None
        value = value * 62 + digit
    return value if text else None


def seeded_random(seed: int, *parts: object) -> random.Random:
    """Return a generator whose sequence depends only on the seed and the parts."""
    return random.Random(seed_value(seed_text(seed, *parts)))


@dataclass(frozen=True)
class Catalog:
    """Ids and names shared by every flag, company and user of one seed."""

    seed: int
    tag: str
    account_id: str
    environment_id: str
    plan_ids: tuple[str, ...]
    plan_version_ids: tuple[tuple[str, ...], ...]
    add_on_ids: tuple[str, ...]
    add_on_version_ids: tuple[str, ...]
    billing_product_ids: tuple[str, ...]
    credit_ids: tuple[str, ...]
    feature_ids: tuple[str, ...]
    company_trait_ids: tuple[str, ...]
    user_trait_ids: tuple[str, ...]

    def entity_id(self, prefix: str, index: int) -> str:
        """Return the id of entity ``index`` of a kind (``comp``, ``user``, ``flag``)."""
        return f"{prefix}_{self.tag}{encode_index(index)}"

    def entity_index(self, prefix: str, entity_id: str) -> int | None:
        """Return the index encoded in an id made by :meth:`entity_id`, else None."""
        head = f"{prefix}_{self.tag}"
        if not entity_id.startswith(head):
            return None
        return decode_index(entity_id[len(head) :])

    def trait_definition(self, kind: str, position: int) -> dict[str, str]:
        """Return the rules-engine trait definition number ``position`` of a kind."""
        if kind == "company":
            return {
                "id": self.company_trait_ids[position],
                "comparable_type": COMPANY_TRAITS[position][1],
                "entity_type": "company",
            }
        return {
            "id": self.user_trait_ids[position],
            "comparable_type": USER_TRAITS[position][1],
            "entity_type": "user",
        }


def build_catalog(seed: int) -> Catalog:
    """Derive the catalog of a seed."""
    rng = seeded_random(seed, "catalog")
    tag = "".join(rng.choice(_ALPHABET) for _ in range(3))

    def ids(prefix: str, count: int) -> tuple[str, ...]:
        return tuple(f"{prefix}_{tag}{encode_index(i, 3)}" for i in range(count))

    plan_ids = ids("plan", len(PLAN_NAMES))
    versions = tuple(
        tuple(f"plvr_{tag}{encode_index(p, 2)}{v}" for v in range(2)) for p in range(len(plan_ids))
    )
    add_on_ids = ids("plan_addon", len(ADD_ON_NAMES))
    return Catalog(
        seed=seed,
        tag=tag,
        account_id=f"acct_{tag}Sim",
        environment_id=f"env_{tag}Sim",
        plan_ids=plan_ids,
        plan_version_ids=versions,
        add_on_ids=add_on_ids,
        add_on_version_ids=tuple(f"plvr_{tag}a{encode_index(i, 2)}" for i in range(3)),
        billing_product_ids=ids("bprod", 8),
        credit_ids=ids("bcrd", len(CREDIT_NAMES)),
        feature_ids=ids("feat", len(FEATURE_KEYS)),
        company_trait_ids=tuple(f"tdef_{tag}_{name}" for name, _ in COMPANY_TRAITS),
        user_trait_ids=tuple(f"tdef_{tag}_user_{name}" for name, _ in USER_TRAITS),
    )

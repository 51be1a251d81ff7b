"""Declarative shape of every record the replicator writes to Redis.

Each record type lists its fields in the order they are written: the field order of the
Go rules-engine structs (github.com/schematichq/rulesengine v0.1.19 ``models.go``), with the
fields that only the Python SDK 1.4.6 models have appended at the end. ``records.py``
normalises data to this shape and ``version.py`` hashes it into the cache version.
"""

from __future__ import annotations

from dataclasses import dataclass

STRING = "string"
INT64 = "int64"
FLOAT = "float"
BOOL = "bool"
DATETIME = "datetime"
ENUM = "enum"
LIST = "list"
MAP = "map"
OBJECT = "object"

#: Go zero time, written for a required date-time that is missing.
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class FieldType:
    """Type of a field value.

    ``element`` is the item type of a list or the value type of a map (map keys are always
    strings). ``record`` names the record type of an object. ``values`` lists the known
    values of an enum. They document the SDK's literals and are not enforced, because the
    SDK models and the Go structs both accept any string there.
    """

    kind: str
    element: FieldType | None = None
    record: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    """One JSON field of a record type.

    ``required`` is true when the SDK model has no default for the field, so a record
    without it fails validation. ``nullable`` is true when the replicator writes ``null``
    for a missing or null value. A field that is neither required nor nullable is written
    with its empty value (only ``Company.entitlements``, written as ``[]``).
    """

    name: str
    type: FieldType
    required: bool
    nullable: bool


def list_of(element: FieldType) -> FieldType:
    """Return the type of a JSON array of ``element``."""
    return FieldType(LIST, element=element)


def map_of(element: FieldType) -> FieldType:
    """Return the type of a JSON object with string keys and ``element`` values."""
    return FieldType(MAP, element=element)


def object_of(record: str) -> FieldType:
    """Return the type of a nested record."""
    return FieldType(OBJECT, record=record)


def enum_of(*values: str) -> FieldType:
    """Return the type of a string with the known ``values``."""
    return FieldType(ENUM, values=values)


def required(name: str, field_type: FieldType) -> Field:
    """Return a field the SDK model requires; it is never written as null."""
    return Field(name, field_type, required=True, nullable=False)


def optional(name: str, field_type: FieldType) -> Field:
    """Return a field the SDK model may omit; it is written as null when missing."""
    return Field(name, field_type, required=False, nullable=True)


STRING_TYPE = FieldType(STRING)
INT64_TYPE = FieldType(INT64)
FLOAT_TYPE = FieldType(FLOAT)
BOOL_TYPE = FieldType(BOOL)
DATETIME_TYPE = FieldType(DATETIME)

COMPARABLE_TYPE = enum_of("bool", "date", "int", "string")
ENTITY_TYPE = enum_of("company", "user")
CONDITION_TYPE = enum_of(
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
OPERATOR = enum_of("eq", "ne", "gt", "gte", "lt", "lte", "is_empty", "not_empty")
RULE_TYPE = enum_of(
    "company_override",
    "company_override_usage_exceeded",
    "default",
    "global_override",
    "plan_entitlement",
    "plan_entitlement_usage_exceeded",
    "standard",
)
VALUE_TYPE = enum_of("boolean", "credit", "numeric", "trait", "unknown", "unlimited")
METRIC_PERIOD = enum_of("all_time", "current_day", "current_week", "current_month")
MONTH_RESET = enum_of("first_of_month", "billing_cycle")
SPEND_POLICY_SCOPE = enum_of("company", "user", "group")

STRING_LIST = list_of(STRING_TYPE)
FLOAT_MAP = map_of(FLOAT_TYPE)

FLAG = "Flag"
COMPANY = "Company"
USER = "User"

RECORDS: dict[str, tuple[Field, ...]] = {
    FLAG: (
        required("id", STRING_TYPE),
        required("account_id", STRING_TYPE),
        required("environment_id", STRING_TYPE),
        required("key", STRING_TYPE),
        required("rules", list_of(object_of("Rule"))),
        required("default_value", BOOL_TYPE),
    ),
    "Rule": (
        required("id", STRING_TYPE),
        optional("flag_id", STRING_TYPE),
        required("account_id", STRING_TYPE),
        required("environment_id", STRING_TYPE),
        required("rule_type", RULE_TYPE),
        required("name", STRING_TYPE),
        required("priority", INT64_TYPE),
        required("conditions", list_of(object_of("Condition"))),
        required("condition_groups", list_of(object_of("ConditionGroup"))),
        required("value", BOOL_TYPE),
    ),
    "Condition": (
        required("id", STRING_TYPE),
        required("account_id", STRING_TYPE),
        required("environment_id", STRING_TYPE),
        required("condition_type", CONDITION_TYPE),
        required("operator", OPERATOR),
        required("resource_ids", STRING_LIST),
        optional("event_subtype", STRING_TYPE),
        optional("metric_value", INT64_TYPE),
        optional("metric_period", METRIC_PERIOD),
        optional("metric_period_month_reset", MONTH_RESET),
        optional("credit_id", STRING_TYPE),
        optional("consumption_rate", FLOAT_TYPE),
        optional("trait_definition", object_of("TraitDefinition")),
        required("trait_value", STRING_TYPE),
        optional("comparison_trait_definition", object_of("TraitDefinition")),
        optional("quantity_rates", FLOAT_MAP),
    ),
    "ConditionGroup": (required("conditions", list_of(object_of("Condition"))),),
    "TraitDefinition": (
        required("id", STRING_TYPE),
        required("comparable_type", COMPARABLE_TYPE),
        required("entity_type", ENTITY_TYPE),
    ),
    "Trait": (
        optional("trait_definition", object_of("TraitDefinition")),
        required("value", STRING_TYPE),
    ),
    "CompanyMetric": (
        required("account_id", STRING_TYPE),
        required("environment_id", STRING_TYPE),
        required("company_id", STRING_TYPE),
        required("event_subtype", STRING_TYPE),
        required("period", METRIC_PERIOD),
        required("month_reset", MONTH_RESET),
        required("value", INT64_TYPE),
        required("created_at", DATETIME_TYPE),
        optional("valid_until", DATETIME_TYPE),
    ),
    "Subscription": (
        required("id", STRING_TYPE),
        required("period_start", DATETIME_TYPE),
        required("period_end", DATETIME_TYPE),
    ),
    "FeatureEntitlement": (
        optional("allocation", INT64_TYPE),
        optional("consumption_rate", FLOAT_TYPE),
        optional("credit_id", STRING_TYPE),
        optional("credit_remaining", FLOAT_TYPE),
        optional("credit_reserved", FLOAT_TYPE),
        optional("credit_settled", FLOAT_TYPE),
        optional("credit_total", FLOAT_TYPE),
        optional("credit_used", FLOAT_TYPE),
        optional("event_name", STRING_TYPE),
        optional("event_subtype", STRING_TYPE),
        required("feature_id", STRING_TYPE),
        required("feature_key", STRING_TYPE),
        optional("metric_period", METRIC_PERIOD),
        optional("metric_reset_at", DATETIME_TYPE),
        optional("month_reset", MONTH_RESET),
        optional("soft_limit", INT64_TYPE),
        optional("usage", INT64_TYPE),
        required("value_type", VALUE_TYPE),
        optional("warning_tiers", list_of(object_of("WarningTier"))),
        optional("quantity_rates", FLOAT_MAP),
    ),
    "WarningTier": (
        required("key", STRING_TYPE),
        required("value", INT64_TYPE),
    ),
    COMPANY: (
        required("id", STRING_TYPE),
        required("account_id", STRING_TYPE),
        required("environment_id", STRING_TYPE),
        optional("base_plan_id", STRING_TYPE),
        required("billing_product_ids", STRING_LIST),
        required("credit_balances", FLOAT_MAP),
        Field("entitlements", list_of(object_of("FeatureEntitlement")), False, False),
        required("keys", map_of(STRING_TYPE)),
        required("metrics", list_of(object_of("CompanyMetric"))),
        required("plan_ids", STRING_LIST),
        required("plan_version_ids", STRING_LIST),
        required("rules", list_of(object_of("Rule"))),
        optional("subscription", object_of("Subscription")),
        required("traits", list_of(object_of("Trait"))),
        optional("credit_postpaid", map_of(object_of("CreditPostpaidConfig"))),
        optional("credit_spend_policies", list_of(object_of("CreditSpendPolicy"))),
    ),
    "CreditPostpaidConfig": (optional("overdraft_limit", FLOAT_TYPE),),
    # No Go struct exists for the spend policy types, so they keep the SDK model's order.
    "CreditSpendPolicy": (
        optional("company_id", STRING_TYPE),
        optional("consumed", FLOAT_TYPE),
        required("credit_id", STRING_TYPE),
        required("id", STRING_TYPE),
        required("kind", STRING_TYPE),
        optional("label", STRING_TYPE),
        required("limit", FLOAT_TYPE),
        optional("resets_at", DATETIME_TYPE),
        required("scope", SPEND_POLICY_SCOPE),
        optional("window", object_of("CreditSpendWindow")),
    ),
    "CreditSpendWindow": (
        required("count", INT64_TYPE),
        required("unit", STRING_TYPE),
    ),
    USER: (
        required("id", STRING_TYPE),
        required("account_id", STRING_TYPE),
        required("environment_id", STRING_TYPE),
        required("keys", map_of(STRING_TYPE)),
        required("traits", list_of(object_of("Trait"))),
        required("rules", list_of(object_of("Rule"))),
        optional("credit_spend_policies", list_of(object_of("CreditSpendPolicy"))),
    ),
}

#: Record types stored under their own Redis keys, in the order the version hashes them.
ROOTS: tuple[str, ...] = (FLAG, COMPANY, USER)


def field_names(record: str) -> tuple[str, ...]:
    """Return the JSON field names of ``record`` in written order."""
    return tuple(field.name for field in RECORDS[record])

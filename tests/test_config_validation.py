"""Configuration values that look valid but fail at run time, and secrets in error messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replicator.config import MAX_DURATIONS_S, Config, ConfigError, load_config
from replicator.durations import parse_duration
from replicator.redis_settings import MAX_TIMEOUT_S

API_KEY = "sk_test_0123456789abcdef0123456789abcdef"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SECRET = "topsecretpass"
#: Python's selectors and multiprocessing waits raise OverflowError above this many seconds.
WAIT_LIMIT_S = (2**31 - 1) / 1000


@pytest.fixture(autouse=True)
def _empty_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory, so that no stray .env file is read."""
    monkeypatch.chdir(tmp_path)


def load(**env: str) -> Config:
    return load_config({"SCHEMATIC_API_KEY": API_KEY, **env})


def errors_of(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config({"SCHEMATIC_API_KEY": API_KEY, **env})
    return caught.value.errors


def docs_row(name: str) -> str:
    match = re.search(rf"^\| `{name}` \|.*$", DOCS.read_text(), flags=re.MULTILINE)
    assert match is not None, f"{name} has no row in {DOCS.name}"
    return match.group()


# Upper bounds of durations.

#: (variable, largest accepted value, other variables that value needs, Config field).
DURATION_MAXIMUMS = [
    ("CACHE_TTL", "8760h", {}, "cache_ttl_s"),
    ("CACHE_CLEANUP_INTERVAL", "720h", {}, "cache_cleanup_interval_s"),
    ("BATCH_TIMEOUT", "1m", {}, "batch_timeout_s"),
    ("CIRCUIT_BREAKER_TIMEOUT", "1h", {}, "breaker_timeout_s"),
    ("SHUTDOWN_TIMEOUT", "1h", {}, "shutdown_timeout_s"),
    ("ASYNC_LOADER_CIRCUIT_BREAKER_TIMEOUT", "1h", {}, "loader_breaker_timeout_s"),
    ("LOADER_RETRY_INTERVAL", "24h", {}, "loader_retry_interval_s"),
    ("WS_PING_INTERVAL", "1h", {"WS_PONG_WAIT": "2h"}, "ws_ping_interval_s"),
    ("WS_PONG_WAIT", "2h", {}, "ws_pong_wait_s"),
    ("WRITER_LOCK_TTL", "10m", {}, "writer_lock_ttl_s"),
    ("REDIS_DIAL_TIMEOUT", "10m", {}, "redis.dial_timeout_s"),
    ("REDIS_READ_TIMEOUT", "10m", {}, "redis.read_timeout_s"),
    ("REDIS_WRITE_TIMEOUT", "10m", {}, "redis.write_timeout_s"),
]


def field_of(config: Config, field: str) -> object:
    owner = config.redis if field.startswith("redis.") else config
    return getattr(owner, field.removeprefix("redis."))


@pytest.mark.parametrize(("name", "maximum", "needs", "field"), DURATION_MAXIMUMS)
def test_config_duration_maximum(
    name: str, maximum: str, needs: dict[str, str], field: str
) -> None:
    assert field_of(load(**{name: maximum}, **needs), field) == parse_duration(maximum)

    too_long = "600h" if parse_duration(maximum) < 600 * 3600 else "9000h"
    (line,) = errors_of(**{name: too_long})
    assert line.startswith(f"Invalid {name}='{too_long}': expected a duration ")
    assert f"at most {maximum}" in line

    (line,) = errors_of(**{name: maximum + "1s"}, **needs)
    assert line.startswith(f"Invalid {name}='{maximum}1s'")


def test_config_duration_range_message() -> None:
    assert errors_of(BATCH_TIMEOUT="2m") == [
        "Invalid BATCH_TIMEOUT='2m': expected a duration greater than 0s and at most 1m."
    ]
    assert errors_of(WRITER_LOCK_TTL="11m") == [
        "Invalid WRITER_LOCK_TTL='11m': expected a duration of at least 1s and at most 10m."
    ]
    assert errors_of(CACHE_TTL="9000h") == [
        "Invalid CACHE_TTL='9000h': expected a duration of at most 8760h (365 days)."
    ]


def test_config_duration_maximum_negative_ttl() -> None:
    assert load(CACHE_TTL="-9000h").cache_ttl_s == 0
    assert load(CACHE_CLEANUP_INTERVAL="-9000h").cache_cleanup_interval_s == 0


def test_config_duration_maximums_every_variable() -> None:
    names = {name for name, _, _, _ in DURATION_MAXIMUMS}
    assert names == set(MAX_DURATIONS_S) | {
        "REDIS_DIAL_TIMEOUT",
        "REDIS_READ_TIMEOUT",
        "REDIS_WRITE_TIMEOUT",
    }


def test_config_duration_maximums_fit_waits() -> None:
    """Values used as thread or process timeouts stay below the OverflowError limit."""
    waits = [value for name, value in MAX_DURATIONS_S.items() if not name.startswith("CACHE_")]
    assert max(waits) < WAIT_LIMIT_S
    assert MAX_TIMEOUT_S < WAIT_LIMIT_S


@pytest.mark.parametrize(("name", "maximum", "needs", "field"), DURATION_MAXIMUMS)
def test_config_duration_maximum_documented(
    name: str, maximum: str, needs: dict[str, str], field: str
) -> None:
    assert f"at most `{maximum}`" in docs_row(name)


# URLs.


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
        "https://api.example.invalid:http",
        "http://127.0.0.1:\u0669\u0660",
        "http://:9000",
        "http://[::1",
    ],
)
def test_config_api_url_bad_host_or_port(url: str) -> None:
    (line,) = errors_of(SCHEMATIC_API_URL=url)
    assert line.startswith(f"Invalid SCHEMATIC_API_URL={url!r}: expected an http:// or https://")
    assert "port from 1 to 65535" in line


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/?region=eu",
        "http://127.0.0.1:9000?region=eu",
        "https://api.example.invalid/v1#top",
        "https://api.example.invalid/?",
    ],
)
def test_config_api_url_query_rejected(url: str) -> None:
    (line,) = errors_of(SCHEMATIC_API_URL=url)
    assert line.startswith(f"Invalid SCHEMATIC_API_URL={url!r}")
    assert "without a query string or fragment" in line
    assert "remove the part from '?' or '#' on" in line


def test_config_api_url_accepted_forms() -> None:
    assert load(SCHEMATIC_API_URL="https://api.example.invalid/v1/").api_url == (
        "https://api.example.invalid/v1"
    )
    assert load(SCHEMATIC_API_URL="http://[::1]:65535").api_url == "http://[::1]:65535"
    assert load(SCHEMATIC_API_URL="http://127.0.0.1:1").datastream_url == (
        "ws://127.0.0.1:1/datastream"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:99999/datastream",
        "wss://stream.example.invalid:0/datastream",
        "https://api.example.invalid:70000",
        "ws:///datastream",
    ],
)
def test_config_datastream_url_bad_port(url: str) -> None:
    (line,) = errors_of(SCHEMATIC_DATASTREAM_URL=url)
    assert line.startswith(f"Invalid SCHEMATIC_DATASTREAM_URL={url!r}")
    assert "port from 1 to 65535" in line


def test_config_datastream_url_query_kept() -> None:
    url = "wss://stream.example.invalid:8443/datastream?region=eu"
    assert load(SCHEMATIC_DATASTREAM_URL=url).datastream_url == url
    (line,) = errors_of(SCHEMATIC_DATASTREAM_URL="wss://stream.example.invalid/ds#part")
    assert "without a fragment" in line


def test_config_url_error_masks_password() -> None:
    (line,) = errors_of(SCHEMATIC_API_URL=f"http://bob:{SECRET}@127.0.0.1:99999")
    assert SECRET not in line
    assert "http://bob:***@127.0.0.1:99999" in line


# Secrets in Redis errors.

REDIS_SECRET_CASES = [
    {"REDIS_ADDR": f"redis://:{SECRET}@127.0.0.1:6390"},
    {"REDIS_ADDR": f"bob:{SECRET}@127.0.0.1:6390"},
    {"REDIS_ADDR": f"{SECRET}@127.0.0.1:http"},
    {"REDIS_CLUSTER_MODE": "true", "REDIS_CLUSTER_ADDRS": f"redis://:{SECRET}@127.0.0.1:6390"},
    {"REDIS_CLUSTER_ADDRS": f"127.0.0.1:7000,rediss://bob:{SECRET}@127.0.0.1:7001"},
    {"REDIS_CLUSTER_ADDRS": f"127.0.0.1:7000,bob:{SECRET}@127.0.0.1:7001"},
    {"REDIS_CLUSTER_ADDRS": "redis://:top secretpass@127.0.0.1:7001"},
    {"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:6390/0?db=1"},
    {"REDIS_URL": "redis://:topsecret#pass@127.0.0.1:6390"},
    {"REDIS_URL": f"redis://user:top@{SECRET}@127.0.0.1:6390/x"},
    {"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:99999"},
    {"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:0"},
    {"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:6390/abc"},
    {"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:6390/\u0663"},
    {"REDIS_URL": f"http://:{SECRET}@127.0.0.1:6390"},
    {"REDIS_URL": f"redis://:{SECRET}@"},
    {"REDIS_URL": "redis://:top secretpass@127.0.0.1:6390/abc"},
    {"REDIS_TLS_CA_FILE": f"redis://:{SECRET}@127.0.0.1/ca.pem"},
]


@pytest.mark.parametrize("env", REDIS_SECRET_CASES)
def test_config_redis_errors_hide_password(env: dict[str, str]) -> None:
    lines = errors_of(**env)
    text = "\n".join(lines)
    assert lines
    assert all(line.startswith("Invalid REDIS_") for line in lines)
    assert SECRET not in text
    assert "secretpass" not in text
    assert "***" in text


def test_config_redis_cluster_error_shows_entry() -> None:
    (line,) = errors_of(REDIS_CLUSTER_ADDRS=f"127.0.0.1:7000,redis://bob:{SECRET}@127.0.0.1:7001")
    assert "(in entry 'redis://bob:***@127.0.0.1:7001')" in line


# ASCII digits only.


@pytest.mark.parametrize(
    "env",
    [
        {"NUM_WORKERS": "\u0663"},
        {"BATCH_SIZE": "\uff15"},
        {"HEALTH_PORT": "\u0668\u0660\u0669\u0660"},
        {"CACHE_TTL": "\u0661s"},
        {"BATCH_TIMEOUT": "1\u0660ms"},
        {"ASYNC_LOADER_RATE_LIMIT_RPS": "1_0"},
        {"ASYNC_LOADER_RATE_LIMIT_RPS": "\u0661"},
        {"ASYNC_LOADER_RATE_LIMIT_RPS": "1e1"},
        {"ASYNC_LOADER_RATE_LIMIT_RPS": "infinity"},
        {"REDIS_DB": "\u0663"},
        {"REDIS_ADDR": "127.0.0.1:\u0666\u0663\u0667\u0669"},
        {"REDIS_URL": "redis://127.0.0.1:6379/\u00b2"},
    ],
)
def test_config_non_ascii_numbers_rejected(env: dict[str, str]) -> None:
    ((name, value),) = env.items()
    (line,) = errors_of(**env)
    assert line.startswith(f"Invalid {name}={value!r}: expected ")


def test_config_rate_decimal_forms() -> None:
    for text, rate in (("2.5", 2.5), ("10", 10.0), (".5", 0.5), ("5.", 5.0), ("+1", 1.0)):
        assert load(ASYNC_LOADER_RATE_LIMIT_RPS=text).loader_rate_limit_rps == rate
    (line,) = errors_of(ASYNC_LOADER_RATE_LIMIT_RPS="1_0")
    assert line == (
        "Invalid ASYNC_LOADER_RATE_LIMIT_RPS='1_0': expected a decimal number >= 0 of "
        "requests per second, such as 2.5 (0 means no limit)."
    )

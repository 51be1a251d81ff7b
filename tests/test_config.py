from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from replicator.config import (
    VARIABLES,
    Config,
    ConfigError,
    derive_datastream_url,
    describe,
    load_config,
    redis_config_from,
    secret_values,
)

API_KEY = "sk_test_0123456789abcdef0123456789abcdef"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


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


class RecordingEnv(Mapping[str, str]):
    """An empty environment that records every name looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        self.known = values
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self.known[name]

    def __contains__(self, name: object) -> bool:
        self.names.add(str(name))
        return name in self.known

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("load_config must look up names, not list the environment")

    def __len__(self) -> int:
        return len(self.known)


def test_config_defaults() -> None:
    config = load()
    assert config.api_key == API_KEY
    assert config.api_url == "https://api.schematichq.com"
    assert config.datastream_url == "wss://datastream.schematichq.com/datastream"
    assert config.cache_ttl_s == 0
    assert config.cache_cleanup_interval_s == 3600
    assert config.cache_version_override is None
    assert config.log_level == "INFO"
    assert config.log_format == "text"
    assert config.health_host == "0.0.0.0"
    assert config.health_port == 8090
    assert 2 <= config.num_workers <= 16
    assert config.batch_size == 5
    assert config.batch_timeout_s == pytest.approx(0.010)
    assert (config.company_channel_size, config.user_channel_size, config.flags_channel_size) == (
        200,
        200,
        50,
    )
    assert config.ws_ping_interval_s == 30
    assert config.ws_pong_wait_s == 40
    assert config.writer_lock_key == "schematic:datastream:writer_lock"
    assert config.replay_cursor_key == "schematic:datastream:replay_cursor"
    assert config.warnings == ()


def test_config_defaults_redis() -> None:
    redis = load().redis
    assert (redis.host, redis.port, redis.db) == ("localhost", 6379, 0)
    assert redis.url is None
    assert redis.password is None
    assert redis.tls is False
    assert redis.cluster_mode is False
    assert redis.cluster_nodes == (("localhost", 7000), ("localhost", 7001), ("localhost", 7002))
    assert redis.max_redirects == 8
    assert (redis.dial_timeout_s, redis.read_timeout_s, redis.write_timeout_s) == (5, 3, 3)
    assert redis.max_retries == 3


def test_config_is_frozen() -> None:
    config = load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 9  # type: ignore[misc]


def test_config_api_key_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({})
    message = str(caught.value)
    assert "Missing SCHEMATIC_API_KEY" in message
    assert "SCHEMATIC_API_KEY=" in message


def test_config_error_format() -> None:
    assert errors_of(BATCH_SIZE="abc") == [
        "Invalid BATCH_SIZE='abc': expected an integer from 1 to 100000."
    ]


def test_config_errors_collected() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"BATCH_SIZE": "0", "LOG_LEVEL": "trace", "CACHE_TTL": "soon"})
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert lines == caught.value.errors
    assert any(line.startswith("Missing SCHEMATIC_API_KEY") for line in lines)
    assert any(line.startswith("Invalid LOG_LEVEL='trace'") for line in lines)
    assert any(line.startswith("Invalid CACHE_TTL='soon'") for line in lines)


@pytest.mark.parametrize(
    ("name", "low", "high", "field"),
    [
        ("BATCH_SIZE", 1, 100_000, "batch_size"),
        ("NUM_WORKERS", 1, 64, "num_workers"),
        ("HEALTH_PORT", 1, 65535, "health_port"),
        ("COMPANY_CHANNEL_SIZE", 1, 1_000_000, "company_channel_size"),
        ("USER_CHANNEL_SIZE", 1, 1_000_000, "user_channel_size"),
        ("FLAGS_CHANNEL_SIZE", 1, 1_000_000, "flags_channel_size"),
        ("ASYNC_LOADER_PAGE_SIZE", 1, 1000, "loader_page_size"),
        ("ASYNC_LOADER_MAX_CONCURRENT_REQUESTS", 1, 64, "loader_max_concurrent_requests"),
        ("LOADER_PAGE_RETRIES", 0, 100, "loader_page_retries"),
        ("REDIS_MAX_RETRIES", 0, 100, "redis.max_retries"),
    ],
)
def test_config_integer_range(name: str, low: int, high: int, field: str) -> None:
    def value_of(config: Config) -> object:
        owner = config.redis if field.startswith("redis.") else config
        return getattr(owner, field.removeprefix("redis."))

    assert value_of(load(**{name: str(low)})) == low
    assert value_of(load(**{name: str(high)})) == high
    assert errors_of(**{name: str(low - 1)}) == [
        f"Invalid {name}='{low - 1}': expected an integer from {low} to {high}."
    ]
    assert len(errors_of(**{name: str(high + 1)})) == 1
    assert len(errors_of(**{name: "1.5"})) == 1


@pytest.mark.parametrize("word", ["true", "TRUE", "1", "yes", "On"])
def test_config_boolean_true(word: str) -> None:
    config = load(WRITER_LOCK_DISABLED=word, REPLAY_DISABLED=word)
    assert config.writer_lock_disabled is True
    assert config.replay_disabled is True


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "OFF"])
def test_config_boolean_false(word: str) -> None:
    assert load(WRITER_LOCK_DISABLED=word).writer_lock_disabled is False


def test_config_boolean_invalid() -> None:
    (line,) = errors_of(REPLAY_DISABLED="maybe")
    assert line.startswith("Invalid REPLAY_DISABLED='maybe': expected true or false")


def test_config_durations() -> None:
    config = load(
        CACHE_TTL="1h30m",
        BATCH_TIMEOUT="25ms",
        WRITER_LOCK_TTL="20s",
        SHUTDOWN_TIMEOUT="1m",
        ASYNC_LOADER_CIRCUIT_BREAKER_TIMEOUT="45s",
    )
    assert config.cache_ttl_s == 5400
    assert config.batch_timeout_s == pytest.approx(0.025)
    assert config.writer_lock_ttl_s == 20
    assert config.shutdown_timeout_s == 60
    assert config.loader_breaker_timeout_s == 45


def test_config_negative_durations_mean_zero() -> None:
    config = load(CACHE_TTL="-5m", CACHE_CLEANUP_INTERVAL="-1s")
    assert config.cache_ttl_s == 0
    assert config.cache_cleanup_interval_s == 0
    assert load(CACHE_CLEANUP_INTERVAL="0").cache_cleanup_interval_s == 0


def test_config_duration_bare_number() -> None:
    (line,) = errors_of(CACHE_TTL="30")
    assert line.startswith("Invalid CACHE_TTL='30': expected a duration")
    assert '"30s"' in line


@pytest.mark.parametrize(
    "name",
    [
        "BATCH_TIMEOUT",
        "SHUTDOWN_TIMEOUT",
        "REDIS_DIAL_TIMEOUT",
        "CIRCUIT_BREAKER_TIMEOUT",
        "WS_PING_INTERVAL",
    ],
)
def test_config_duration_positive(name: str) -> None:
    for value in ("0s", "-1s"):
        (line,) = errors_of(**{name: value})
        assert line.startswith(f"Invalid {name}='{value}': expected a duration greater than 0s")


def test_config_writer_lock_ttl_minimum() -> None:
    assert load(WRITER_LOCK_TTL="1s").writer_lock_ttl_s == 1
    (line,) = errors_of(WRITER_LOCK_TTL="500ms")
    assert "of at least 1s" in line


def test_config_pong_wait_after_ping() -> None:
    (line,) = errors_of(WS_PING_INTERVAL="30s", WS_PONG_WAIT="30s")
    assert line.startswith("Invalid WS_PONG_WAIT='30s'")
    assert "WS_PING_INTERVAL='30s'" in line
    (line,) = errors_of(WS_PING_INTERVAL="1m")
    assert "WS_PONG_WAIT='40s' (the default)" in line
    assert load(WS_PING_INTERVAL="5s", WS_PONG_WAIT="6s").ws_pong_wait_s == 6


@pytest.mark.parametrize(
    ("word", "level"),
    [
        ("debug", "DEBUG"),
        ("INFO", "INFO"),
        ("warn", "WARNING"),
        ("Warning", "WARNING"),
        ("error", "ERROR"),
    ],
)
def test_config_log_level(word: str, level: str) -> None:
    assert load(LOG_LEVEL=word).log_level == level


def test_config_log_format() -> None:
    assert load(LOG_FORMAT="JSON").log_format == "json"
    (line,) = errors_of(LOG_FORMAT="xml")
    assert line == "Invalid LOG_FORMAT='xml': expected one of text, json."


def test_config_health_port_fallback() -> None:
    assert load(PORT="5000").health_port == 5000
    assert load(PORT="5000", HEALTH_PORT="9000").health_port == 9000
    assert load(HEALTH_HOST="127.0.0.1").health_host == "127.0.0.1"
    (line,) = errors_of(PORT="http")
    assert line.startswith("Invalid PORT='http'")


def test_config_cache_version() -> None:
    assert load(CACHE_VERSION="v2.beta_1-x").cache_version_override == "v2.beta_1-x"
    assert len(errors_of(CACHE_VERSION="a:b")) == 1
    assert len(errors_of(CACHE_VERSION="x" * 65)) == 1


def test_config_rate_limit() -> None:
    assert load(ASYNC_LOADER_RATE_LIMIT_RPS="2.5").loader_rate_limit_rps == 2.5
    assert load(ASYNC_LOADER_RATE_LIMIT_RPS="0").loader_rate_limit_rps == 0
    for value in ("-1", "nan", "inf", "fast"):
        assert len(errors_of(ASYNC_LOADER_RATE_LIMIT_RPS=value)) == 1


def test_config_api_url() -> None:
    config = load(SCHEMATIC_API_URL="http://127.0.0.1:9000/")
    assert config.api_url == "http://127.0.0.1:9000"
    assert config.datastream_url == "ws://127.0.0.1:9000/datastream"
    (line,) = errors_of(SCHEMATIC_API_URL="ftp://example.invalid")
    assert line.startswith("Invalid SCHEMATIC_API_URL='ftp://example.invalid'")


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("https://api.schematichq.com", "wss://datastream.schematichq.com/datastream"),
        (
            "https://api.staging.schematichq.com",
            "wss://datastream.staging.schematichq.com/datastream",
        ),
        ("http://127.0.0.1:9000", "ws://127.0.0.1:9000/datastream"),
        ("http://api.localhost:8080", "ws://datastream.localhost:8080/datastream"),
        ("http://localhost:8080", "ws://localhost:8080/datastream"),
        ("https://custom.schematichq.com", "wss://custom.schematichq.com/datastream"),
        ("http://api:8080", "ws://api:8080/datastream"),
        ("https://apix.example.invalid/v1/?a=1", "wss://apix.example.invalid/datastream"),
        (
            "https://api.example.invalid/base?region=eu",
            "wss://datastream.example.invalid/datastream",
        ),
    ],
)
def test_derive_datastream_url_cases(api_url: str, expected: str) -> None:
    assert derive_datastream_url(api_url) == expected


@pytest.mark.parametrize("api_url", ["ftp://api.example.invalid", "not-a-url", "ws://x"])
def test_derive_datastream_url_invalid(api_url: str) -> None:
    with pytest.raises(ValueError):
        derive_datastream_url(api_url)


def test_config_datastream_url_explicit() -> None:
    verbatim = "wss://stream.example.invalid/custom/path?x=1"
    assert load(SCHEMATIC_DATASTREAM_URL=verbatim).datastream_url == verbatim
    converted = load(SCHEMATIC_DATASTREAM_URL="https://api.example.invalid/ignored")
    assert converted.datastream_url == "wss://datastream.example.invalid/datastream"
    (line,) = errors_of(SCHEMATIC_DATASTREAM_URL="ftp://x.invalid")
    assert "expected a ws://, wss://, http:// or https:// URL" in line


def test_dotenv_file_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"SCHEMATIC_API_KEY={API_KEY}\nBATCH_SIZE=7\n# comment\nexport LOG_LEVEL=debug\n"
        "REDIS_PASSWORD='pa$$word ${HOME}'\n"
    )
    config = load_config({})
    assert config.api_key == API_KEY
    assert config.batch_size == 7
    assert config.log_level == "DEBUG"
    assert config.redis.password == "pa$$word ${HOME}"


def test_dotenv_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BATCH_SIZE=7\nNUM_WORKERS=3\n")
    config = load(BATCH_SIZE="9", NUM_WORKERS="")
    assert config.batch_size == 9
    assert config.num_workers == Config().num_workers


def test_dotenv_explicit_path(tmp_path: Path) -> None:
    path = tmp_path / "custom.env"
    path.write_text("BATCH_SIZE=oops\n")
    with pytest.raises(ConfigError) as caught:
        load_config({"SCHEMATIC_API_KEY": API_KEY}, dotenv_path=str(path))
    assert caught.value.errors == [
        f"Invalid BATCH_SIZE='oops' (from {path}): expected an integer from 1 to 100000."
    ]


def test_dotenv_explicit_path_missing(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.env")
    with pytest.raises(ConfigError) as caught:
        load_config({"SCHEMATIC_API_KEY": API_KEY}, dotenv_path=missing)
    assert "was not found" in str(caught.value)
    assert missing in str(caught.value)


def test_dotenv_leaves_os_environ(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REPLICATOR_TEST_ONLY_VARIABLE=1\nBATCH_SIZE=8\n")
    before = dict(os.environ)
    assert load().batch_size == 8
    assert dict(os.environ) == before


def test_config_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMATIC_API_KEY", API_KEY)
    monkeypatch.setenv("BATCH_SIZE", "11")
    assert load_config().batch_size == 11


def test_config_ignored_variables_warn() -> None:
    config = load(USE_ASYNC_LOADING="false", REDIS_ENABLE_MAINTENANCE_NOTIFICATIONS="true")
    assert len(config.warnings) == 2
    assert config.warnings[0].startswith("USE_ASYNC_LOADING is set but has no effect")


def test_config_variables_match_lookups() -> None:
    env = RecordingEnv({"SCHEMATIC_API_KEY": API_KEY})
    load_config(env)
    assert env.names == set(VARIABLES)
    assert len(VARIABLES) == len(set(VARIABLES))


def test_config_variables_match_docs() -> None:
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", DOCS.read_text(), flags=re.MULTILINE)
    assert len(rows) == len(set(rows))
    assert set(rows) == set(VARIABLES)


def test_config_repr_hides_secrets() -> None:
    config = load(REDIS_URL="redis://u:hunter2-secret@127.0.0.1:6400/1")
    text = repr(config)
    assert API_KEY not in text
    assert "hunter2-secret" not in text


def test_describe_masks_secrets() -> None:
    config = load(REDIS_URL="redis://bob:hunter2-secret@127.0.0.1:6400/1", CACHE_TTL="1h30m")
    described = describe(config)
    assert described["api_key"] == "sk_t\u2026(len=40)"
    assert described["redis.password"] == "***"
    assert described["redis.url"] == "redis://bob:***@127.0.0.1:6400/1"
    assert described["cache_ttl_s"] == "1h30m"
    assert described["batch_timeout_s"] == "10ms"
    assert described["redis.cluster_nodes"] == "127.0.0.1:6400"
    assert all(isinstance(value, str) for value in described.values())
    assert not any("hunter2" in value or API_KEY in value for value in described.values())


def test_describe_short_api_key() -> None:
    described = describe(load_config({"SCHEMATIC_API_KEY": "short"}))
    assert described["api_key"] == "***"
    assert described["redis.password"] == "unset"


def test_secret_values_lists_password_forms() -> None:
    config = load(REDIS_PASSWORD="p@ss:word")
    assert secret_values(config) == [API_KEY, "p@ss:word", "p%40ss%3Aword"]
    assert secret_values(load()) == [API_KEY]


def test_redis_url_parts() -> None:
    url = "redis://bob:p%40ss%3Aw%2Frd%23%25x@127.0.0.1:6400/3"
    redis = load(REDIS_URL=url).redis
    assert redis.url == url
    assert (redis.host, redis.port, redis.db) == ("127.0.0.1", 6400, 3)
    assert redis.username == "bob"
    assert redis.password == "p@ss:w/rd#%x"
    assert redis.tls is False


def test_redis_url_defaults_and_ipv6() -> None:
    redis = load(REDIS_URL="rediss://[::1]").redis
    assert (redis.host, redis.port, redis.db) == ("::1", 6379, 0)
    assert redis.tls is True
    assert redis.username is None
    assert redis.password is None


def test_redis_url_wins_and_variables_fill() -> None:
    config = load(
        REDIS_URL="redis://127.0.0.1:6400",
        REDIS_ADDR="127.0.0.1:1",
        REDIS_USERNAME="alice",
        REDIS_PASSWORD=" spaced ",
        REDIS_DB="4",
        REDIS_TLS="true",
    )
    redis = config.redis
    assert (redis.host, redis.port) == ("127.0.0.1", 6400)
    assert redis.username == "alice"
    assert redis.password == " spaced "
    assert redis.db == 4
    assert redis.tls is True
    assert config.warnings == ("REDIS_ADDR is ignored because REDIS_URL is set.",)


def test_redis_url_password_conflict_warns() -> None:
    config = load(REDIS_URL="redis://:from-url@127.0.0.1/2", REDIS_PASSWORD="other", REDIS_DB="5")
    assert config.redis.password == "from-url"
    assert config.redis.db == 2
    assert any("REDIS_PASSWORD is ignored" in warning for warning in config.warnings)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379", "starts with redis:// or rediss://"),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", "no '?' options"),
        ("redis://:pa#ss@127.0.0.1", "percent-encode"),
        ("redis://127.0.0.1:99999", "port from 1 to 65535"),
        ("redis://127.0.0.1/zero", "database number"),
        ("redis://", "host name"),
    ],
)
def test_redis_url_invalid(url: str, reason: str) -> None:
    (line,) = errors_of(REDIS_URL=url)
    assert line.startswith("Invalid REDIS_URL=")
    assert reason in line


def test_redis_url_error_masks_password() -> None:
    (line,) = errors_of(REDIS_URL="redis://bob:hunter2-secret@127.0.0.1:0x1/0")
    assert "hunter2-secret" not in line
    assert "redis://bob:***@127.0.0.1:0x1/0" in line


@pytest.mark.parametrize(
    ("addr", "host", "port"),
    [
        ("127.0.0.1:6400", "127.0.0.1", 6400),
        ("[::1]:6401", "::1", 6401),
        ("[::1]", "::1", 6379),
        ("redis.internal.invalid", "redis.internal.invalid", 6379),
    ],
)
def test_redis_addr_valid(addr: str, host: str, port: int) -> None:
    redis = load(REDIS_ADDR=addr).redis
    assert (redis.host, redis.port) == (host, port)
    assert redis.url is None


@pytest.mark.parametrize(
    ("addr", "reason"),
    [
        ("redis://127.0.0.1:6379", "put a URL in REDIS_URL"),
        ("::1:6379", "IPv6 address in brackets"),
        ("127.0.0.1:http", "port from 1 to 65535"),
        ("127.0.0.1:0", "port from 1 to 65535"),
        (":6379", "host:port"),
    ],
)
def test_redis_addr_invalid(addr: str, reason: str) -> None:
    (line,) = errors_of(REDIS_ADDR=addr)
    assert line.startswith(f"Invalid REDIS_ADDR={addr!r}")
    assert reason in line


def test_redis_cluster_settings() -> None:
    redis = load(
        REDIS_CLUSTER_MODE="true",
        REDIS_MAX_REDIRECTS="3",
        REDIS_CLUSTER_ADDRS="127.0.0.1:7000, [::1]:7001,,127.0.0.1",
    ).redis
    assert redis.cluster_mode is True
    assert redis.cluster_nodes == (("127.0.0.1", 7000), ("::1", 7001), ("127.0.0.1", 6379))
    assert redis.max_redirects == 3


def test_redis_cluster_seed_from_url() -> None:
    redis = load(REDIS_CLUSTER_MODE="true", REDIS_URL="rediss://:pw@127.0.0.1:7100").redis
    assert redis.cluster_nodes == (("127.0.0.1", 7100),)
    assert redis.tls is True


def test_redis_cluster_errors() -> None:
    (line,) = errors_of(REDIS_CLUSTER_MODE="true", REDIS_DB="1")
    assert line.startswith("Invalid REDIS_DB='1'")
    assert "cluster mode" in line
    (line,) = errors_of(REDIS_CLUSTER_ADDRS="127.0.0.1:7000,bad:port")
    assert "'bad:port'" in line


def test_redis_route_by_latency_warns() -> None:
    config = load(REDIS_ROUTE_BY_LATENCY="true")
    assert config.redis.route_by_latency is True
    assert any("REDIS_ROUTE_BY_LATENCY=true has no effect" in w for w in config.warnings)


def test_redis_timeouts() -> None:
    redis = load(
        REDIS_DIAL_TIMEOUT="250ms", REDIS_READ_TIMEOUT="2s", REDIS_WRITE_TIMEOUT="4s"
    ).redis
    assert redis.dial_timeout_s == pytest.approx(0.25)
    assert (redis.read_timeout_s, redis.write_timeout_s) == (2, 4)


def test_redis_tls_files(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("test\n")
    redis = load(
        REDIS_TLS="yes",
        REDIS_TLS_CA_FILE=str(tmp_path / "ca.pem"),
        REDIS_TLS_CERT_FILE=str(tmp_path / "cert.pem"),
        REDIS_TLS_KEY_FILE=str(tmp_path / "key.pem"),
    ).redis
    assert redis.tls is True
    assert redis.tls_ca_file == str(tmp_path / "ca.pem")
    assert redis.tls_cert_file == str(tmp_path / "cert.pem")
    assert redis.tls_key_file == str(tmp_path / "key.pem")


def test_redis_tls_file_errors(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("test\n")
    (line,) = errors_of(REDIS_TLS="true", REDIS_TLS_CA_FILE=str(tmp_path / "absent.pem"))
    assert "existing file" in line
    (line,) = errors_of(REDIS_TLS="true", REDIS_TLS_CERT_FILE=str(cert))
    assert "REDIS_TLS_KEY_FILE to be set as well" in line
    (line,) = errors_of(REDIS_TLS_CA_FILE=str(cert))
    assert "set REDIS_TLS=true or use a rediss:// URL" in line


def test_redis_tls_skip_verify_warns() -> None:
    config = load(REDIS_URL="rediss://127.0.0.1:6400", REDIS_TLS_SKIP_VERIFY="true")
    assert config.redis.tls_skip_verify is True
    assert any("not checked" in warning for warning in config.warnings)
    plain = load(REDIS_TLS_SKIP_VERIFY="true")
    assert any("no effect because TLS is off" in w for w in plain.warnings)


def test_redis_config_from_alone() -> None:
    redis = redis_config_from({"REDIS_ADDR": "127.0.0.1:6400", "REDIS_DB": "2"})
    assert (redis.host, redis.port, redis.db) == ("127.0.0.1", 6400, 2)
    with pytest.raises(ConfigError) as caught:
        redis_config_from({"REDIS_DB": "-1"})
    assert caught.value.errors == ["Invalid REDIS_DB='-1': expected an integer >= 0."]

"""Configuration from environment variables and an optional ``.env`` file, read once at start.

The variable names and defaults are those of the original Go service, so an existing
deployment keeps working. Unlike that service, an invalid value is never ignored:
:func:`load_config` collects every problem and raises one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from replicator.durations import format_duration
from replicator.env_reader import EnvReader, read_dotenv
from replicator.redis_settings import RedisConfig, mask_url, read_redis_config
from replicator.urls import derive_datastream_url, parse_api_url, parse_datastream_url

__all__ = [
    "IGNORED_VARIABLES",
    "VARIABLES",
    "Config",
    "ConfigError",
    "RedisConfig",
    "derive_datastream_url",
    "describe",
    "load_config",
    "redis_config_from",
    "secret_values",
]


DEFAULT_API_URL = "https://api.schematichq.com"

LOG_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}
LOG_FORMATS = {"text": "text", "json": "json"}

_CACHE_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
_REDIS_KEY = re.compile(r"\S{1,512}")
_HOST = re.compile(r"[A-Za-z0-9.:_-]{1,255}")
# A plain decimal number in ASCII: no exponent, no "_", no "inf" or "nan".
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")

_MINUTE_S = 60.0
_HOUR_S = 3600.0
_DAY_S = 86400.0
#: Largest accepted value of each duration variable, in seconds. Python's thread and
#: process waits raise OverflowError above 2**31 - 1 ms (about 596 hours), so every
#: value that reaches such a wait must stay well below that. Each bound is also far
#: above any useful setting. REDIS_*_TIMEOUT bounds live in replicator.redis_settings.
MAX_DURATIONS_S: dict[str, float] = {
    "CACHE_TTL": 365 * _DAY_S,
    "CACHE_CLEANUP_INTERVAL": 30 * _DAY_S,
    "BATCH_TIMEOUT": _MINUTE_S,
    "CIRCUIT_BREAKER_TIMEOUT": _HOUR_S,
    "SHUTDOWN_TIMEOUT": _HOUR_S,
    "ASYNC_LOADER_CIRCUIT_BREAKER_TIMEOUT": _HOUR_S,
    "LOADER_RETRY_INTERVAL": 24 * _HOUR_S,
    "WS_PING_INTERVAL": _HOUR_S,
    # Twice the ping bound, so that every accepted ping interval has a longer pong wait.
    "WS_PONG_WAIT": 2 * _HOUR_S,
    "WRITER_LOCK_TTL": 10 * _MINUTE_S,
}

#: Variables the original service read that change nothing here, with the reason.
IGNORED_VARIABLES: dict[str, str] = {
    "USE_ASYNC_LOADING": "this replicator always loads companies and users in a separate "
    "loader process, and /ready waits for that load in either case",
    "REDIS_ENABLE_MAINTENANCE_NOTIFICATIONS": "maintenance notifications are not supported",
}


def default_num_workers() -> int:
    """Return the usable CPU count clamped to 2..16, the original service's default."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 2
    return min(16, max(2, cpus))


@dataclass(frozen=True)
class Config:
    """The replicator's whole configuration. Every field has the product default."""

    api_key: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    datastream_url: str = "wss://datastream.schematichq.com/datastream"
    cache_ttl_s: float = 0.0
    cache_cleanup_interval_s: float = 3600.0
    cache_version_override: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    health_host: str = "0.0.0.0"
    health_port: int = 8090
    num_workers: int = field(default_factory=default_num_workers)
    batch_size: int = 5
    batch_timeout_s: float = 0.010
    #: Queue capacities, counted in messages. Company and user sizes are per worker.
    company_channel_size: int = 200
    user_channel_size: int = 200
    flags_channel_size: int = 50
    loader_page_size: int = 100
    loader_max_concurrent_requests: int = 5
    loader_rate_limit_rps: float = 10.0
    loader_breaker_threshold: int = 5
    loader_breaker_timeout_s: float = 30.0
    loader_page_retries: int = 5
    loader_retry_interval_s: float = 60.0
    ws_ping_interval_s: float = 30.0
    ws_pong_wait_s: float = 40.0
    breaker_threshold: int = 3
    breaker_timeout_s: float = 15.0
    shutdown_timeout_s: float = 30.0
    writer_lock_disabled: bool = False
    writer_lock_key: str = "schematic:datastream:writer_lock"
    writer_lock_ttl_s: float = 15.0
    replay_disabled: bool = False
    replay_cursor_key: str = "schematic:datastream:replay_cursor"
    redis: RedisConfig = field(default_factory=RedisConfig)
    #: Problems worth a warning at start that do not stop the service.
    warnings: tuple[str, ...] = ()


class ConfigError(Exception):
    """One or more invalid variables; the message has one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def _parse_rate(text: str) -> float:
    rate = float(text) if _DECIMAL.fullmatch(text) else -1.0
    if rate < 0:
        raise ValueError(
            "expected a decimal number >= 0 of requests per second, such as 2.5 (0 means no limit)"
        )
    return rate


def load_config(environ: Mapping[str, str] | None = None, dotenv_path: str | None = None) -> Config:
    """Build the :class:`Config` from ``environ`` (default ``os.environ``) and a .env file.

    A variable in ``environ`` always wins over the file, even when it is empty. The file
    is ``dotenv_path``, or ``.env`` in the working directory when that exists.
    ``os.environ`` is never modified. Raises :class:`ConfigError` listing every problem.
    """
    file_values, label, problems = read_dotenv(dotenv_path)
    reader = EnvReader(os.environ if environ is None else environ, file_values, label)
    reader.errors.extend(problems)

    config = Config(**_read_service(reader), redis=read_redis_config(reader))
    _check_ignored(reader)
    if reader.errors:
        raise ConfigError(reader.errors)
    return dataclasses.replace(config, warnings=tuple(reader.warnings))


def redis_config_from(
    environ: Mapping[str, str] | None = None, dotenv_path: str | None = None
) -> RedisConfig:
    """Read only the ``REDIS_*`` variables, for tools that need Redis but no API key.

    The sources and rules are those of :func:`load_config`. Warnings are dropped.
    """
    file_values, label, problems = read_dotenv(dotenv_path)
    reader = EnvReader(os.environ if environ is None else environ, file_values, label)
    reader.errors.extend(problems)

    redis = read_redis_config(reader)
    if reader.errors:
        raise ConfigError(reader.errors)
    return redis


def _duration(
    reader: EnvReader,
    name: str,
    default: float,
    minimum: float | None = 0.0,
    inclusive: bool = False,
) -> float:
    """Read a duration variable up to its bound in :data:`MAX_DURATIONS_S`."""
    return reader.duration(name, default, minimum, inclusive, MAX_DURATIONS_S[name])


def _read_service(reader: EnvReader) -> dict[str, Any]:
    """Read every variable outside the Redis group into Config keyword arguments."""
    base = Config()
    values: dict[str, Any] = {"api_key": _read_api_key(reader)}
    values.update(_read_urls(reader))
    values.update(_read_cache_and_logs(reader, base))
    values.update(_read_pipeline(reader, base))
    values.update(_read_loader(reader, base))
    values.update(_read_stream_and_lock(reader, base))
    return values


def _read_api_key(reader: EnvReader) -> str:
    api_key = reader.raw("SCHEMATIC_API_KEY")
    if api_key is None:
        reader.errors.append(
            "Missing SCHEMATIC_API_KEY: set it to your Schematic API key in the environment "
            "or in the .env file (SCHEMATIC_API_KEY=...)."
        )
        return ""
    return api_key


def _read_urls(reader: EnvReader) -> dict[str, Any]:
    api_url = reader.parse("SCHEMATIC_API_URL", DEFAULT_API_URL, parse_api_url)
    derived = derive_datastream_url(api_url)
    datastream_url = reader.parse("SCHEMATIC_DATASTREAM_URL", derived, parse_datastream_url)
    return {"api_url": api_url, "datastream_url": datastream_url}


def _read_cache_and_logs(reader: EnvReader, base: Config) -> dict[str, Any]:
    version = reader.pattern(
        "CACHE_VERSION",
        None,
        _CACHE_VERSION,
        "1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
    )
    port_name = "HEALTH_PORT" if reader.raw("HEALTH_PORT") is not None else "PORT"
    return {
        "cache_ttl_s": max(0.0, _duration(reader, "CACHE_TTL", base.cache_ttl_s, None)),
        "cache_cleanup_interval_s": max(
            0.0, _duration(reader, "CACHE_CLEANUP_INTERVAL", base.cache_cleanup_interval_s, None)
        ),
        "cache_version_override": version,
        "log_level": reader.choice("LOG_LEVEL", base.log_level, LOG_LEVELS),
        "log_format": reader.choice("LOG_FORMAT", base.log_format, LOG_FORMATS),
        "health_host": reader.pattern(
            "HEALTH_HOST", base.health_host, _HOST, "an IP address or host name to listen on"
        ),
        "health_port": reader.integer(port_name, base.health_port, 1, 65535),
    }


def _read_pipeline(reader: EnvReader, base: Config) -> dict[str, Any]:
    return {
        "num_workers": reader.integer("NUM_WORKERS", base.num_workers, 1, 64),
        "batch_size": reader.integer("BATCH_SIZE", base.batch_size, 1, 100_000),
        "batch_timeout_s": _duration(reader, "BATCH_TIMEOUT", base.batch_timeout_s),
        "company_channel_size": reader.integer(
            "COMPANY_CHANNEL_SIZE", base.company_channel_size, 1, 1_000_000
        ),
        "user_channel_size": reader.integer(
            "USER_CHANNEL_SIZE", base.user_channel_size, 1, 1_000_000
        ),
        "flags_channel_size": reader.integer(
            "FLAGS_CHANNEL_SIZE", base.flags_channel_size, 1, 1_000_000
        ),
        "breaker_threshold": reader.integer(
            "CIRCUIT_BREAKER_THRESHOLD", base.breaker_threshold, 1, 1000
        ),
        "breaker_timeout_s": _duration(reader, "CIRCUIT_BREAKER_TIMEOUT", base.breaker_timeout_s),
        "shutdown_timeout_s": _duration(reader, "SHUTDOWN_TIMEOUT", base.shutdown_timeout_s),
    }


def _read_loader(reader: EnvReader, base: Config) -> dict[str, Any]:
    return {
        "loader_page_size": reader.integer(
            "ASYNC_LOADER_PAGE_SIZE", base.loader_page_size, 1, 1000
        ),
        "loader_max_concurrent_requests": reader.integer(
            "ASYNC_LOADER_MAX_CONCURRENT_REQUESTS", base.loader_max_concurrent_requests, 1, 64
        ),
        "loader_rate_limit_rps": reader.parse(
            "ASYNC_LOADER_RATE_LIMIT_RPS", base.loader_rate_limit_rps, _parse_rate
        ),
        "loader_breaker_threshold": reader.integer(
            "ASYNC_LOADER_CIRCUIT_BREAKER_THRESHOLD", base.loader_breaker_threshold, 1, 1000
        ),
        "loader_breaker_timeout_s": _duration(
            reader, "ASYNC_LOADER_CIRCUIT_BREAKER_TIMEOUT", base.loader_breaker_timeout_s
        ),
        "loader_page_retries": reader.integer(
            "LOADER_PAGE_RETRIES", base.loader_page_retries, 0, 100
        ),
        "loader_retry_interval_s": _duration(
            reader, "LOADER_RETRY_INTERVAL", base.loader_retry_interval_s
        ),
    }


def _read_stream_and_lock(reader: EnvReader, base: Config) -> dict[str, Any]:
    ping_s = _duration(reader, "WS_PING_INTERVAL", base.ws_ping_interval_s)
    pong_s = _duration(reader, "WS_PONG_WAIT", base.ws_pong_wait_s)
    if pong_s <= ping_s:
        reader.fail(
            "WS_PONG_WAIT",
            reader.raw("WS_PONG_WAIT") or format_duration(pong_s),
            f"expected a duration greater than WS_PING_INTERVAL="
            f"'{format_duration(ping_s)}', because the connection is dropped when no pong "
            "arrives within WS_PONG_WAIT; raise WS_PONG_WAIT or lower WS_PING_INTERVAL",
        )

    key_expected = "a Redis key of 1 to 512 characters without spaces"
    return {
        "ws_ping_interval_s": ping_s,
        "ws_pong_wait_s": pong_s,
        "writer_lock_disabled": reader.boolean("WRITER_LOCK_DISABLED", base.writer_lock_disabled),
        "writer_lock_key": reader.pattern(
            "WRITER_LOCK_KEY", base.writer_lock_key, _REDIS_KEY, key_expected
        ),
        "writer_lock_ttl_s": _duration(
            reader, "WRITER_LOCK_TTL", base.writer_lock_ttl_s, 1.0, inclusive=True
        ),
        "replay_disabled": reader.boolean("REPLAY_DISABLED", base.replay_disabled),
        "replay_cursor_key": reader.pattern(
            "REPLAY_CURSOR_KEY", base.replay_cursor_key, _REDIS_KEY, key_expected
        ),
    }


def _check_ignored(reader: EnvReader) -> None:
    for name, reason in IGNORED_VARIABLES.items():
        if reader.raw(name) is not None:
            reader.warnings.append(f"{name} is set but has no effect: {reason}.")


#: Every environment variable that :func:`load_config` reads, in documentation order.
VARIABLES: tuple[str, ...] = (
    "SCHEMATIC_API_KEY",
    "SCHEMATIC_API_URL",
    "SCHEMATIC_DATASTREAM_URL",
    "CACHE_TTL",
    "CACHE_CLEANUP_INTERVAL",
    "CACHE_VERSION",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "HEALTH_HOST",
    "HEALTH_PORT",
    "PORT",
    "NUM_WORKERS",
    "BATCH_SIZE",
    "BATCH_TIMEOUT",
    "COMPANY_CHANNEL_SIZE",
    "USER_CHANNEL_SIZE",
    "FLAGS_CHANNEL_SIZE",
    "CIRCUIT_BREAKER_THRESHOLD",
    "CIRCUIT_BREAKER_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "ASYNC_LOADER_PAGE_SIZE",
    "ASYNC_LOADER_MAX_CONCURRENT_REQUESTS",
    "ASYNC_LOADER_RATE_LIMIT_RPS",
    "ASYNC_LOADER_CIRCUIT_BREAKER_THRESHOLD",
    "ASYNC_LOADER_CIRCUIT_BREAKER_TIMEOUT",
    "LOADER_PAGE_RETRIES",
    "LOADER_RETRY_INTERVAL",
    "WS_PING_INTERVAL",
    "WS_PONG_WAIT",
    "WRITER_LOCK_DISABLED",
    "WRITER_LOCK_KEY",
    "WRITER_LOCK_TTL",
    "REPLAY_DISABLED",
    "REPLAY_CURSOR_KEY",
    "REDIS_URL",
    "REDIS_ADDR",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_TLS",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
    "REDIS_TLS_SKIP_VERIFY",
    "REDIS_CLUSTER_MODE",
    "REDIS_CLUSTER_ADDRS",
    "REDIS_MAX_REDIRECTS",
    "REDIS_ROUTE_BY_LATENCY",
    "REDIS_DIAL_TIMEOUT",
    "REDIS_READ_TIMEOUT",
    "REDIS_WRITE_TIMEOUT",
    "REDIS_MAX_RETRIES",
    *IGNORED_VARIABLES,
)


def mask_api_key(api_key: str) -> str:
    """Show a long key as its first 4 characters and its length, a short one as ``***``."""
    if len(api_key) < 16:
        return "***" if api_key else ""
    return f"{api_key[:4]}\u2026(len={len(api_key)})"


def describe(config: Config) -> dict[str, str]:
    """Return the effective configuration as text for the start-up log, secrets masked.

    Redis fields are prefixed with ``redis.``; durations use the short Go form (``1h30m``).
    """
    described = {
        name: _show(name, value)
        for name, value in _fields(config)
        if name not in ("redis", "warnings")
    }
    for name, value in _fields(config.redis):
        described["redis." + name] = _show("redis." + name, value)
    return described


def _fields(instance: Any) -> list[tuple[str, Any]]:
    return [(item.name, getattr(instance, item.name)) for item in dataclasses.fields(instance)]


def _show(name: str, value: Any) -> str:
    if name == "api_key":
        return mask_api_key(value)
    if name == "redis.password":
        return "***" if value else "unset"
    if name == "redis.url":
        return mask_url(value) if value else "unset"

    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if name.endswith("_s"):
        return format_duration(value)
    if name == "redis.cluster_nodes":
        return ",".join(
            f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in value
        )
    return str(value)


def secret_values(config: Config) -> list[str]:
    """Return the texts a log line must never contain: the API key and the Redis password.

    The password is listed both as it is and percent-encoded, as it appears in a URL.
    """
    secrets = [config.api_key]
    password = config.redis.password
    if password:
        secrets += [password, quote(password, safe="")]
    return [secret for secret in dict.fromkeys(secrets) if secret]

"""Redis connection settings: ``REDIS_URL`` or ``REDIS_ADDR`` plus the other ``REDIS_*`` variables.

How the variables combine:

* ``REDIS_URL`` wins for what it contains: scheme (``rediss://`` means TLS), user name,
  password, host, port and database. ``REDIS_ADDR`` is ignored when it is set.
* ``REDIS_USERNAME``, ``REDIS_PASSWORD`` and ``REDIS_DB`` fill in what the URL lacks.
* ``REDIS_TLS=true`` switches TLS on for a ``redis://`` URL or for ``REDIS_ADDR``.
* In cluster mode the seed nodes are ``REDIS_CLUSTER_ADDRS``; when only ``REDIS_URL`` is
  set, its host and port are the one seed node.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from replicator.env_reader import EnvReader

DEFAULT_PORT = 6379
DEFAULT_CLUSTER_NODES: tuple[tuple[str, int], ...] = (
    ("localhost", 7000),
    ("localhost", 7001),
    ("localhost", 7002),
)
_ENCODING_HINT = "percent-encode @ : / # % in the user name and password (e.g. %40 for @)"
#: Upper bound of REDIS_DIAL_TIMEOUT, REDIS_READ_TIMEOUT and REDIS_WRITE_TIMEOUT: 10 minutes.
MAX_TIMEOUT_S = 600.0
#: A URL inside a longer text, up to the next white space.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


@dataclass(frozen=True)
class RedisConfig:
    """Redis connection settings: address, credentials, TLS, cluster and timeouts.

    The password and the URL are left out of ``repr``.
    """

    #: ``REDIS_URL`` exactly as given (it may contain the password), or None.
    url: str | None = field(default=None, repr=False)
    host: str = "localhost"
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_skip_verify: bool = False
    cluster_mode: bool = False
    cluster_nodes: tuple[tuple[str, int], ...] = DEFAULT_CLUSTER_NODES
    max_redirects: int = 8
    #: Accepted for compatibility only, because every command goes to the primary.
    route_by_latency: bool = False
    dial_timeout_s: float = 5.0
    read_timeout_s: float = 3.0
    write_timeout_s: float = 3.0
    max_retries: int = 3


class RedisUrl(NamedTuple):
    """The parts of a ``redis://`` or ``rediss://`` URL, percent-decoded."""

    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None
    db: int | None


def parse_redis_url(text: str) -> RedisUrl:
    """Parse ``redis[s]://[user[:password]@]host[:port][/db]``; raise ValueError otherwise."""
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("expected a URL that starts with redis:// or rediss://")
    if parts.fragment or "#" in text:
        raise ValueError("expected no '#' in the URL; " + _ENCODING_HINT)
    if parts.query:
        raise ValueError(
            "expected no '?' options; use REDIS_DB, REDIS_TLS and the other "
            "REDIS_* variables instead"
        )
    if not parts.hostname:
        raise ValueError("expected a host name after '://'; " + _ENCODING_HINT)

    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("expected a port from 1 to 65535 after the host; " + _ENCODING_HINT)
    return RedisUrl(
        tls=parts.scheme == "rediss",
        host=parts.hostname,
        port=DEFAULT_PORT if port is None else port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        db=_url_database(parts.path),
    )


def _url_database(path: str) -> int | None:
    number = path.strip("/")
    if not number:
        return None
    if not _is_ascii_number(number):
        raise ValueError(
            f"expected a database number after the host such as /0, not {path!r}; " + _ENCODING_HINT
        )
    return int(number)


def _is_ascii_number(text: str) -> bool:
    """Tell whether ``text`` is ASCII digits only; str.isdigit() also takes other scripts."""
    return text.isascii() and text.isdigit()


def parse_host_port(text: str, url_variable: str = "REDIS_URL") -> tuple[str, int]:
    """Parse ``host:port`` or ``[ipv6]:port``; the port defaults to 6379."""
    if "://" in text:
        raise ValueError(f"expected host:port, not a URL; put a URL in {url_variable} instead")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("expected an IPv6 address as [address]:port, such as [::1]:6379")
        port_text = rest[1:]
    elif text.count(":") > 1:
        raise ValueError("expected an IPv6 address in brackets, such as [::1]:6379")
    else:
        host, _, port_text = text.partition(":")

    if not host or any(char in host for char in " /@?#"):
        raise ValueError("expected host:port, such as localhost:6379")
    if not port_text:
        return host, DEFAULT_PORT
    if not _is_ascii_number(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError("expected a port from 1 to 65535 after the host")
    return host, int(port_text)


def parse_node_list(text: str) -> tuple[tuple[str, int], ...]:
    """Parse a comma-separated list of ``host:port``; empty entries are skipped."""
    nodes = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        try:
            nodes.append(parse_host_port(entry.strip()))
        except ValueError as exc:
            raise ValueError(f"{exc} (in entry {mask_address(entry.strip())!r})") from None
    if not nodes:
        raise ValueError("expected at least one host:port")
    return tuple(nodes)


def mask_url(text: str) -> str:
    """Hide the password of a URL: ``redis://user:***@host``; without a user, ``***@``."""
    scheme, separator, rest = text.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not separator or not at:
        return text

    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return f"{scheme}://{masked}@{hostpart}"


def mask_address(text: str) -> str:
    """Hide the user information of an address, with or without a scheme: ``***@host:6379``.

    A text with ``://`` is masked as a URL; otherwise everything up to the last ``@`` is
    hidden, so ``user:password@host`` in a ``host:port`` variable shows no password.
    """
    if "://" in text:
        return mask_url(text)
    _, at, hostpart = text.rpartition("@")
    return f"***@{hostpart}" if at else text


def mask_urls(text: str) -> str:
    """Hide the password of every URL in a longer text, such as an error message.

    A URL ends at the first white space, so a password that contains a space is only
    hidden up to it. Mask such a value with :func:`mask_url` before it goes into a text.
    """
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)


def _readable_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError("expected the path of an existing file")
    if not os.access(path, os.R_OK):
        raise ValueError("expected a file this process can read; check its permissions")
    return path


def read_redis_config(reader: EnvReader) -> RedisConfig:
    """Read every ``REDIS_*`` variable into a :class:`RedisConfig`, recording problems."""
    url = reader.parse("REDIS_URL", None, parse_redis_url, mask=mask_url)
    values = _read_endpoint(reader, url)
    values.update(_read_tls(reader, url))
    values.update(_read_cluster(reader, url, values["db"]))
    values.update(_read_tuning(reader))
    return RedisConfig(**values)


def _read_endpoint(reader: EnvReader, url: RedisUrl | None) -> dict[str, Any]:
    base = RedisConfig()
    username = reader.raw("REDIS_USERNAME")
    password = reader.raw("REDIS_PASSWORD", strip=False)
    db = reader.integer("REDIS_DB", base.db, 0)
    if url is None:
        host, port = reader.parse(
            "REDIS_ADDR", (base.host, base.port), parse_host_port, mask=mask_address
        )
        return {"host": host, "port": port, "username": username, "password": password, "db": db}

    if reader.raw("REDIS_ADDR") is not None:
        reader.warnings.append("REDIS_ADDR is ignored because REDIS_URL is set.")
    if url.password is not None and password is not None and password != url.password:
        reader.warnings.append("REDIS_PASSWORD is ignored because REDIS_URL contains a password.")
    return {
        "url": reader.raw("REDIS_URL"),
        "host": url.host,
        "port": url.port,
        "username": url.username or username,
        "password": url.password or password,
        "db": db if url.db is None else url.db,
    }


def _read_tls(reader: EnvReader, url: RedisUrl | None) -> dict[str, Any]:
    tls = reader.boolean("REDIS_TLS", False) or (url is not None and url.tls)
    names = ("REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE")
    ca_file, cert_file, key_file = (reader.parse(name, None, _readable_file) for name in names)
    skip_verify = reader.boolean("REDIS_TLS_SKIP_VERIFY", False)

    for name, partner in ((names[1], names[2]), (names[2], names[1])):
        if reader.raw(name) is not None and reader.raw(partner) is None:
            reader.fail(
                name,
                reader.raw(name) or "",
                f"expected {partner} to be set as well, because a client certificate "
                "and its private key go together",
            )
    if not tls:
        for name in names:
            if reader.raw(name) is not None:
                reader.fail(
                    name,
                    reader.raw(name) or "",
                    "expected TLS to be on; set "
                    "REDIS_TLS=true or use a rediss:// URL, or remove this variable",
                )

    if skip_verify and tls:
        reader.warnings.append(
            "REDIS_TLS_SKIP_VERIFY=true: the Redis server's certificate and host name are not "
            "checked, so anyone on the network path can read and change replicated data."
        )
    elif skip_verify:
        reader.warnings.append("REDIS_TLS_SKIP_VERIFY=true has no effect because TLS is off.")
    return {
        "tls": tls,
        "tls_ca_file": ca_file,
        "tls_cert_file": cert_file,
        "tls_key_file": key_file,
        "tls_skip_verify": skip_verify,
    }


def _read_cluster(reader: EnvReader, url: RedisUrl | None, db: int) -> dict[str, Any]:
    cluster_mode = reader.boolean("REDIS_CLUSTER_MODE", False)
    nodes = reader.parse("REDIS_CLUSTER_ADDRS", None, parse_node_list, mask=mask_address)
    if nodes is None:
        nodes = ((url.host, url.port),) if url is not None else DEFAULT_CLUSTER_NODES

    if cluster_mode and db != 0:
        reader.fail(
            "REDIS_DB",
            str(db),
            "expected 0 in cluster mode, because Redis Cluster has only database 0",
        )
    return {"cluster_mode": cluster_mode, "cluster_nodes": nodes}


def _read_tuning(reader: EnvReader) -> dict[str, Any]:
    base = RedisConfig()
    route_by_latency = reader.boolean("REDIS_ROUTE_BY_LATENCY", base.route_by_latency)
    if route_by_latency:
        reader.warnings.append(
            "REDIS_ROUTE_BY_LATENCY=true has no effect: the replicator sends every command to "
            "the primary, because its reads come right before its own writes."
        )
    return {
        "max_redirects": reader.integer("REDIS_MAX_REDIRECTS", base.max_redirects, 0, 1000),
        "route_by_latency": route_by_latency,
        "dial_timeout_s": reader.duration(
            "REDIS_DIAL_TIMEOUT", base.dial_timeout_s, maximum=MAX_TIMEOUT_S
        ),
        "read_timeout_s": reader.duration(
            "REDIS_READ_TIMEOUT", base.read_timeout_s, maximum=MAX_TIMEOUT_S
        ),
        "write_timeout_s": reader.duration(
            "REDIS_WRITE_TIMEOUT", base.write_timeout_s, maximum=MAX_TIMEOUT_S
        ),
        "max_retries": reader.integer("REDIS_MAX_RETRIES", base.max_retries, 0, 100),
    }

"""Redis clients built from :class:`RedisConfig`, and the start-up self-test.

Choices that redis-py forces or leaves open:

* redis-py has one socket timeout for reads and writes, so the client uses the larger
  of ``REDIS_READ_TIMEOUT`` and ``REDIS_WRITE_TIMEOUT`` for both.
* Connection errors and timeouts are retried ``REDIS_MAX_RETRIES`` times with
  exponential backoff and full jitter, capped at 2 s per wait.
* ``REDIS_ROUTE_BY_LATENCY`` changes nothing: every command goes to the primary that
  owns the key, because the replicator reads a record right before it rewrites it and
  a replica could return an older copy.
* Idle connections get no PING health check. redis-py runs that check under the same
  Retry object before the command, which then retries too, so one command on a dead
  connection could make (retries + 1) squared attempts instead of retries + 1. A
  stale connection fails the command instead, and the retry reconnects.
* redis-py uses the hiredis parser automatically when the package is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import SSLConnection
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.retry import Retry

from replicator.redis_settings import RedisConfig
from replicator.resp_packer import RespPacker

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLIENT_NAME = "schematic-datastream-replicator"
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0

TEST_KEY = "test:connection:verify"
TEST_VALUE = b"connected"
#: Returns 1 while KEYS[1] holds ARGV[1]: the same GET-and-compare the lease and the
#: workers run in their own scripts.
TEST_SCRIPT_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 1
end
return 0
"""
#: Self-test steps that need the ACL category @scripting.
SCRIPT_STEPS = ("SCRIPT LOAD", "SCRIPT EXISTS", "EVALSHA", "EVAL")
REQUIRED_PERMISSIONS = (
    "PING, CLIENT SETNAME, INFO, SELECT (for a database other than 0), reads and writes "
    "on its keys, and the @scripting commands EVALSHA, EVAL, SCRIPT LOAD and SCRIPT EXISTS"
)

RedisClient = redis.Redis | RedisCluster

#: Exceptions a Redis command can raise. The cluster client raises RedisClusterException,
#: which is not a RedisError, for example SlotNotCoveredError while a failover leaves a
#: slot without a master.
REDIS_ERRORS = (RedisError, RedisClusterException)


class RedisUnavailable(Exception):
    """Redis failed a step of the start-up self-test.

    The message names the target, the step, the error and what to check.
    """

    def __init__(self, target: str, step: str, cause: str, advice: str) -> None:
        super().__init__(f"Redis self-test failed at {step} on {target}: {cause}. {advice}")
        self.target = target
        self.step = step


class RedisClusterMismatch(RedisUnavailable):
    """A single-node client reached a node that runs in cluster mode."""


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_target(redis_config: RedisConfig) -> str:
    """Describe where the client connects, for logs: addresses, database, TLS, user name."""
    if redis_config.cluster_mode:
        nodes = ",".join(format_address(host, port) for host, port in redis_config.cluster_nodes)
        where = f"cluster {nodes}"
    else:
        where = f"{format_address(redis_config.host, redis_config.port)} db {redis_config.db}"

    details = ["TLS" if redis_config.tls else "no TLS"]
    if redis_config.tls and redis_config.tls_skip_verify:
        details.append("certificate not verified")
    if redis_config.username:
        details.append(f"user {redis_config.username!r}")
    return f"{where} ({', '.join(details)})"


def _connection_options(redis_config: RedisConfig) -> dict[str, Any]:
    """Return the keyword arguments shared by the single-node and the cluster client."""
    options: dict[str, Any] = {
        "username": redis_config.username,
        "password": redis_config.password,
        "socket_connect_timeout": redis_config.dial_timeout_s,
        "socket_timeout": max(redis_config.read_timeout_s, redis_config.write_timeout_s),
        "client_name": CLIENT_NAME,
        "retry": Retry(
            ExponentialWithJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S),
            redis_config.max_retries,
        ),
    }
    if redis_config.tls:
        options.update(_tls_options(redis_config))
    return options


def _tls_options(redis_config: RedisConfig) -> dict[str, object]:
    verify = not redis_config.tls_skip_verify
    return {
        "ssl": True,
        "ssl_ca_certs": redis_config.tls_ca_file,
        "ssl_certfile": redis_config.tls_cert_file,
        "ssl_keyfile": redis_config.tls_key_file,
        "ssl_cert_reqs": "required" if verify else "none",
        "ssl_check_hostname": verify,
    }


def create_client(redis_config: RedisConfig) -> RedisClient:
    """Build a client; call it in the process that uses the client, never before a fork.

    A single-node client connects on its first command. A cluster client reads the
    slot map from the seed nodes right away, so it raises :class:`RedisUnavailable`
    here when none of them responds.
    """
    options = _connection_options(redis_config)
    if not redis_config.cluster_mode:
        single_node = redis.Redis(
            host=redis_config.host,
            port=redis_config.port,
            db=redis_config.db,
            **options,
        )
        # Connections are made on first use, so every one of them gets the packer.
        pool = single_node.connection_pool
        pool.connection_kwargs["command_packer"] = RespPacker(pool.get_encoder().encode)
        return single_node

    nodes = [ClusterNode(host, port) for host, port in redis_config.cluster_nodes]
    try:
        client = RedisCluster(startup_nodes=nodes, **options)
    except (RedisError, RedisClusterException, OSError) as exc:
        raise _failure(
            describe_target(redis_config), "cluster discovery", exc, redis_config.password
        ) from exc

    # NOTE: redis-py has no public max-redirects option. A single command makes at most
    # RedisClusterRequestTTL attempts (MOVED, ASK and TRYAGAIN replies each use one), so
    # this allows a first try plus max_redirects more. Pipelines ignore this attribute.
    client.RedisClusterRequestTTL = redis_config.max_redirects + 1
    return client


def ping(client: RedisClient) -> None:
    """PING the server, or every primary of a cluster; raise if any of them fails."""
    if isinstance(client, RedisCluster):
        client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        client.ping()


def primary_run_ids(client: RedisClient) -> dict[str, str]:
    """Return the ``run_id`` of the server, or of every primary of a cluster, by address.

    A server gets a new run_id each time it starts. Raises like any command when a
    primary does not reply, so the caller never gets a partial result.
    """
    if isinstance(client, RedisCluster):
        primaries = client.get_primaries()
        replies = client.info("server", target_nodes=primaries)
        if len(primaries) == 1:
            replies = {primaries[0].name: replies}
    else:
        kwargs = client.connection_pool.connection_kwargs
        address = format_address(str(kwargs.get("host")), int(kwargs.get("port") or 0))
        replies = {address: client.info("server")}
    return {
        str(address): str(info["run_id"])
        for address, info in replies.items()
        if isinstance(info, dict) and info.get("run_id")
    }


def client_target(client: RedisClient) -> str:
    """Describe the client's server, or its cluster seed nodes, without secrets."""
    if isinstance(client, RedisCluster):
        names = sorted(client.nodes_manager.startup_nodes)
        return f"cluster {','.join(names)}"

    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    address = format_address(str(kwargs.get("host")), int(kwargs.get("port") or 0))
    tls = "TLS" if issubclass(pool.connection_class, SSLConnection) else "no TLS"
    return f"{address} db {kwargs.get('db', 0)} ({tls})"


def _client_password(client: RedisClient) -> str | None:
    if isinstance(client, RedisCluster):
        return None
    password = client.connection_pool.connection_kwargs.get("password")
    return password if isinstance(password, str) else None


def self_test(client: RedisClient) -> None:
    """Check that Redis accepts this client's reads and writes, before any work starts.

    Runs PING, and ``INFO cluster`` on a single-node client. Then it runs ``SET`` of a
    test key with a 60 s expiry, ``GET``, a Lua script on that key (``SCRIPT LOAD``,
    ``SCRIPT EXISTS``, ``EVALSHA`` and ``EVAL``) and ``DEL``. Raises
    :class:`RedisUnavailable` naming the step.
    """
    target = client_target(client)
    password = _client_password(client)

    _run_step("PING", target, password, lambda: client.ping())
    if not isinstance(client, RedisCluster):
        _check_not_cluster(client, target, password)

    _run_step("SET", target, password, lambda: client.set(TEST_KEY, TEST_VALUE, ex=60))
    value = _run_step("GET", target, password, lambda: client.get(TEST_KEY))
    if value != TEST_VALUE:
        raise RedisUnavailable(
            target,
            "GET",
            f"{TEST_KEY!r} read back as {value!r}",
            "Check that no other program rewrites keys in this database.",
        )
    _check_scripting(client, target, password)
    _run_step("DEL", target, password, lambda: client.delete(TEST_KEY))
    logger.info("Redis self-test passed on %s.", target)


def _run_step(step: str, target: str, password: str | None, command: Callable[[], T]) -> T:
    try:
        return command()
    except (RedisError, RedisClusterException, OSError) as exc:
        raise _failure(target, step, exc, password) from exc


def _check_scripting(client: RedisClient, target: str, password: str | None) -> None:
    """Run a script on the test key through ``register_script``, as the service does.

    redis-py runs a registered script with EVALSHA and loads it with SCRIPT LOAD when
    the server lacks it. A pipeline runs SCRIPT EXISTS first. The explicit SCRIPT LOAD
    checks that permission even when the server already has the script.
    """
    script = client.register_script(TEST_SCRIPT_LUA)
    _run_step("SCRIPT LOAD", target, password, lambda: client.script_load(TEST_SCRIPT_LUA))
    _run_step("SCRIPT EXISTS", target, password, lambda: client.script_exists(script.sha))
    found = _run_step(
        "EVALSHA", target, password, lambda: script(keys=[TEST_KEY], args=[TEST_VALUE])
    )
    _run_step(
        "EVAL", target, password, lambda: client.eval(TEST_SCRIPT_LUA, 1, TEST_KEY, TEST_VALUE)
    )
    if found != 1:
        raise RedisUnavailable(
            target,
            "EVALSHA",
            f"a script read {TEST_KEY!r} as a value other than {TEST_VALUE!r}",
            "Check that no other program rewrites keys in this database.",
        )


def _check_not_cluster(client: redis.Redis, target: str, password: str | None) -> None:
    try:
        info = client.info("cluster")
    except ResponseError as exc:
        # A user without permission for INFO still gets through; the check is advice.
        logger.debug("Skipped the cluster-mode check on %s: %s.", target, exc)
        return
    except (RedisError, OSError) as exc:
        raise _failure(target, "INFO cluster", exc, password) from exc

    if int(info.get("cluster_enabled", 0)) == 1:
        raise RedisClusterMismatch(
            target,
            "INFO cluster",
            "the server runs in cluster mode (cluster_enabled:1)",
            "Set REDIS_CLUSTER_MODE=true and list the cluster nodes in REDIS_CLUSTER_ADDRS "
            "(host:port,host:port).",
        )


def _failure(target: str, step: str, exc: BaseException, password: str | None) -> RedisUnavailable:
    cause = f"{type(exc).__name__}: {exc}".rstrip(".")
    if password:
        cause = cause.replace(password, "***")
    return RedisUnavailable(target, step, cause, _advice(exc, step))


def _advice(exc: BaseException, step: str) -> str:
    """Suggest what to check for the kind of error ``exc`` is, raised at ``step``."""
    text = str(exc)
    if isinstance(exc, AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
        return (
            "Check REDIS_PASSWORD and REDIS_USERNAME, or the user and password in "
            "REDIS_URL (percent-encoded)."
        )
    if (isinstance(exc, NoPermissionError) or "NOPERM" in text) and step in SCRIPT_STEPS:
        return (
            "The Redis user may not run Lua scripts (ACL category @scripting), which the "
            "workers and the writer lease use: grant it +@scripting, or at least +evalsha "
            f"+eval +script|load +script|exists. The replicator needs {REQUIRED_PERMISSIONS}."
        )
    if isinstance(exc, NoPermissionError) or "NOPERM" in text:
        return f"Check the ACL of the Redis user: the replicator needs {REQUIRED_PERMISSIONS}."
    if "DB index is out of range" in text:
        return (
            "The database number (REDIS_DB, or the /db part of REDIS_URL) is out of range "
            "for this server: choose one below the server's 'databases' setting, which is "
            "16 by default (databases 0 to 15)."
        )
    if isinstance(exc, ReadOnlyError):
        return "The server is a read-only replica: point REDIS_URL or REDIS_ADDR at the primary."
    if "SSL" in text or "certificate" in text or "TLS" in text:
        return (
            "Check REDIS_TLS, REDIS_TLS_CA_FILE and that the server certificate names "
            "the host you connect to."
        )
    if isinstance(exc, RedisClusterException):
        return "Check that REDIS_CLUSTER_ADDRS lists reachable nodes of one healthy cluster."
    return (
        "Check that Redis is running and reachable at that address, that REDIS_URL or "
        "REDIS_ADDR points to it, and whether it expects TLS (REDIS_TLS)."
    )

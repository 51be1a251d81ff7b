from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from redis.cluster import RedisCluster

from replicator.config import load_config
from replicator.redis_conn import (
    CLIENT_NAME,
    TEST_KEY,
    TEST_SCRIPT_LUA,
    RedisClusterMismatch,
    RedisUnavailable,
    client_target,
    create_client,
    describe_target,
    self_test,
)
from replicator.redis_settings import RedisConfig
from tests.redis_fixtures import (
    TlsFiles,
    start_cluster_node,
    start_tls_redis,
    stop_and_remove,
)
from tests.servers import RedisServer, free_port, start_redis

PASSWORD = "p@ss:w/rd#%x"
ACL_PASSWORD = "acl-secret-Value"


@pytest.fixture(autouse=True)
def _empty_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def redis_config(**env: str) -> RedisConfig:
    """Build the Redis settings the way the service does, from variables."""
    fast = {"REDIS_DIAL_TIMEOUT": "2s", "REDIS_MAX_RETRIES": "0"}
    return load_config({"SCHEMATIC_API_KEY": "key-for-tests", **fast, **env}).redis


def failure_of(config: RedisConfig) -> RedisUnavailable:
    client = create_client(config)
    try:
        with pytest.raises(RedisUnavailable) as caught:
            self_test(client)
    finally:
        client.close()
    return caught.value


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    """A server with a requirepass password and three ACL users."""
    server = start_redis("--requirepass", PASSWORD)
    admin = redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD)
    admin.acl_setuser(
        "replicator", enabled=True, passwords=[f"+{ACL_PASSWORD}"], keys=["*"], commands=["+@all"]
    )
    admin.acl_setuser(
        "reader",
        enabled=True,
        passwords=[f"+{ACL_PASSWORD}"],
        keys=["*"],
        commands=["+@read", "+ping", "+info", "+client|setname"],
    )
    admin.acl_setuser(
        "no-name",
        enabled=True,
        passwords=[f"+{ACL_PASSWORD}"],
        keys=["*"],
        commands=["+@all", "-client"],
    )
    admin.close()
    yield server
    stop_and_remove(server)


@pytest.fixture(scope="module")
def wrong_name_server(tls_files: TlsFiles) -> Iterator[RedisServer]:
    server = start_tls_redis(tls_files.ca_cert, tls_files.wrong_name_cert, tls_files.wrong_name_key)
    yield server
    stop_and_remove(server)


@pytest.fixture(scope="module")
def cluster_node() -> Iterator[RedisServer]:
    server = start_cluster_node()
    yield server
    stop_and_remove(server)


def tls_env(files: TlsFiles, port: int, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": f"rediss://127.0.0.1:{port}/0",
        "REDIS_TLS_CA_FILE": files.ca_cert,
        "REDIS_TLS_CERT_FILE": files.client_cert,
        "REDIS_TLS_KEY_FILE": files.client_key,
        **extra,
    }


def test_self_test_passes(redis_server: RedisServer) -> None:
    client = create_client(redis_config(REDIS_URL=redis_server.url))
    self_test(client)
    assert client.get(TEST_KEY) is None
    assert client.client_getname() == CLIENT_NAME
    client.close()


def test_create_client_options() -> None:
    config = redis_config(
        REDIS_ADDR="127.0.0.1:6390",
        REDIS_DB="2",
        REDIS_READ_TIMEOUT="2s",
        REDIS_WRITE_TIMEOUT="7s",
        REDIS_DIAL_TIMEOUT="1s",
        REDIS_MAX_RETRIES="4",
    )
    client = create_client(config)
    assert isinstance(client, redis.Redis)
    options = client.connection_pool.connection_kwargs
    assert (options["host"], options["port"], options["db"]) == ("127.0.0.1", 6390, 2)
    assert options["socket_timeout"] == 7
    assert options["socket_connect_timeout"] == 1
    assert options["client_name"] == CLIENT_NAME
    assert options.get("health_check_interval", 0) == 0
    assert options["retry"].get_retries() == 4
    client.close()


def test_self_test_closed_port() -> None:
    port = free_port()
    error = failure_of(redis_config(REDIS_ADDR=f"127.0.0.1:{port}"))
    message = str(error)
    assert error.step == "PING"
    assert f"127.0.0.1:{port}" in message
    assert "ConnectionError" in message
    assert "Check that Redis is running" in message


def test_self_test_password_in_url(password_server: RedisServer) -> None:
    url = f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{password_server.port}/0"
    config = redis_config(REDIS_URL=url)
    assert config.password == PASSWORD
    client = create_client(config)
    self_test(client)
    client.close()


def test_self_test_password_variable(password_server: RedisServer) -> None:
    client = create_client(redis_config(REDIS_ADDR=password_server.addr, REDIS_PASSWORD=PASSWORD))
    self_test(client)
    client.close()


def test_self_test_wrong_password(password_server: RedisServer) -> None:
    wrong = PASSWORD + "-wrong"
    error = failure_of(redis_config(REDIS_ADDR=password_server.addr, REDIS_PASSWORD=wrong))
    message = str(error)
    assert error.step == "PING"
    assert password_server.addr in message
    assert "Check REDIS_PASSWORD and REDIS_USERNAME" in message
    assert PASSWORD not in message


def test_self_test_no_password(password_server: RedisServer) -> None:
    error = failure_of(redis_config(REDIS_ADDR=password_server.addr))
    assert "Check REDIS_PASSWORD" in str(error)


def test_self_test_acl_user(password_server: RedisServer) -> None:
    in_url = f"redis://replicator:{ACL_PASSWORD}@127.0.0.1:{password_server.port}"
    client = create_client(redis_config(REDIS_URL=in_url))
    self_test(client)
    assert client.acl_whoami() == "replicator"
    client.close()

    client = create_client(
        redis_config(
            REDIS_ADDR=password_server.addr,
            REDIS_USERNAME="replicator",
            REDIS_PASSWORD=ACL_PASSWORD,
        )
    )
    self_test(client)
    client.close()


def test_self_test_acl_denied_setname(password_server: RedisServer) -> None:
    error = failure_of(
        redis_config(
            REDIS_ADDR=password_server.addr, REDIS_USERNAME="no-name", REDIS_PASSWORD=ACL_PASSWORD
        )
    )
    assert error.step == "PING"
    assert "client|setname" in str(error)
    assert "CLIENT SETNAME" in str(error)


def test_self_test_acl_denied_write(password_server: RedisServer) -> None:
    error = failure_of(
        redis_config(
            REDIS_ADDR=password_server.addr, REDIS_USERNAME="reader", REDIS_PASSWORD=ACL_PASSWORD
        )
    )
    assert error.step == "SET"
    assert "NoPermissionError" in str(error)
    assert "Check the ACL of the Redis user" in str(error)
    assert ACL_PASSWORD not in str(error)


def add_acl_user(server: RedisServer, name: str, commands: list[str]) -> None:
    admin = redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD)
    admin.acl_setuser(
        name, enabled=True, passwords=[f"+{ACL_PASSWORD}"], keys=["*"], commands=commands
    )
    admin.close()


@pytest.mark.parametrize(
    ("rule", "step"),
    [
        ("-@scripting", "SCRIPT LOAD"),
        ("-script|exists", "SCRIPT EXISTS"),
        ("-evalsha", "EVALSHA"),
        ("-eval", "EVAL"),
    ],
)
def test_self_test_acl_denied_scripting(password_server: RedisServer, rule: str, step: str) -> None:
    user = "no-script-" + step.lower().replace(" ", "-")
    add_acl_user(password_server, user, ["+@all", rule])
    error = failure_of(
        redis_config(
            REDIS_ADDR=password_server.addr, REDIS_USERNAME=user, REDIS_PASSWORD=ACL_PASSWORD
        )
    )
    message = str(error)

    assert error.step == step
    assert "NoPermissionError" in message
    assert "may not run Lua scripts (ACL category @scripting)" in message
    assert "+@scripting" in message
    assert "EVALSHA, EVAL, SCRIPT LOAD and SCRIPT EXISTS" in message
    assert "CLIENT SETNAME" in message
    assert ACL_PASSWORD not in message


def test_self_test_documented_acl(password_server: RedisServer) -> None:
    commands = ["+@read", "+@write", "+@keyspace", "+@scripting", "+ping", "+info", "+select"]
    add_acl_user(password_server, "documented", [*commands, "+client|setname"])
    config = redis_config(
        REDIS_ADDR=password_server.addr,
        REDIS_USERNAME="documented",
        REDIS_PASSWORD=ACL_PASSWORD,
        REDIS_DB="1",
    )
    client = create_client(config)
    self_test(client)
    assert client.get(TEST_KEY) is None
    client.close()


def test_self_test_runs_script(redis_server: RedisServer) -> None:
    client = create_client(redis_config(REDIS_URL=redis_server.url))
    client.script_flush()
    self_test(client)
    sha = client.register_script(TEST_SCRIPT_LUA).sha
    assert client.script_exists(sha) == [True]
    client.close()


def test_self_test_database_out_of_range(redis_server: RedisServer) -> None:
    error = failure_of(redis_config(REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/16"))
    message = str(error)

    assert error.step == "PING"
    assert "db 16" in message
    assert "DB index is out of range" in message
    assert "The database number (REDIS_DB, or the /db part of REDIS_URL) is out of range" in message
    assert "Check that Redis is running" not in message


def test_self_test_tls(tls_server: RedisServer, tls_files: TlsFiles) -> None:
    config = redis_config(**tls_env(tls_files, tls_server.port))
    assert config.tls is True
    client = create_client(config)
    self_test(client)
    assert client.client_getname() == CLIENT_NAME
    assert "(TLS)" in client_target(client)
    client.close()


def test_self_test_tls_wrong_ca(tls_server: RedisServer, tls_files: TlsFiles) -> None:
    env = tls_env(tls_files, tls_server.port, REDIS_TLS_CA_FILE=tls_files.other_ca_cert)
    error = failure_of(redis_config(**env))
    assert error.step == "PING"
    assert "certificate verify failed" in str(error)
    assert "Check REDIS_TLS, REDIS_TLS_CA_FILE" in str(error)


def test_self_test_tls_hostname_checked(
    wrong_name_server: RedisServer, tls_files: TlsFiles
) -> None:
    error = failure_of(redis_config(**tls_env(tls_files, wrong_name_server.port)))
    assert "127.0.0.1" in str(error)
    assert "certificate" in str(error)

    skip = redis_config(**tls_env(tls_files, wrong_name_server.port, REDIS_TLS_SKIP_VERIFY="true"))
    client = create_client(skip)
    self_test(client)
    client.close()


def test_self_test_tls_client_cert_required(tls_server: RedisServer, tls_files: TlsFiles) -> None:
    env = {
        "REDIS_URL": f"rediss://127.0.0.1:{tls_server.port}",
        "REDIS_TLS_CA_FILE": tls_files.ca_cert,
    }
    error = failure_of(redis_config(**env))
    assert error.step == "PING"


def test_self_test_plain_client_on_tls_port(tls_server: RedisServer) -> None:
    error = failure_of(
        redis_config(REDIS_ADDR=tls_server.addr, REDIS_READ_TIMEOUT="1s", REDIS_WRITE_TIMEOUT="1s")
    )
    assert tls_server.addr in str(error)
    assert "REDIS_TLS" in str(error)


def test_self_test_cluster(cluster_node: RedisServer) -> None:
    config = redis_config(
        REDIS_CLUSTER_MODE="true", REDIS_CLUSTER_ADDRS=cluster_node.addr, REDIS_MAX_REDIRECTS="3"
    )
    client = create_client(config)
    assert isinstance(client, RedisCluster)
    assert client.RedisClusterRequestTTL == 4
    node_options = client.get_default_node().redis_connection.connection_pool.connection_kwargs
    assert node_options["client_name"] == CLIENT_NAME
    assert node_options["socket_timeout"] == 3
    self_test(client)
    assert client_target(client) == f"cluster {cluster_node.addr}"
    client.close()


def test_self_test_detects_cluster_node(cluster_node: RedisServer) -> None:
    error = failure_of(redis_config(REDIS_ADDR=cluster_node.addr))
    assert isinstance(error, RedisClusterMismatch)
    assert error.step == "INFO cluster"
    assert "REDIS_CLUSTER_MODE=true" in str(error)
    assert "REDIS_CLUSTER_ADDRS" in str(error)


def test_create_client_cluster_unreachable() -> None:
    port = free_port()
    config = redis_config(REDIS_CLUSTER_MODE="true", REDIS_CLUSTER_ADDRS=f"127.0.0.1:{port}")
    with pytest.raises(RedisUnavailable) as caught:
        create_client(config)
    assert caught.value.step == "cluster discovery"
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_describe_target_no_secrets() -> None:
    single = redis_config(
        REDIS_URL="rediss://bob:hunter2-secret@[::1]:6400/3", REDIS_TLS_SKIP_VERIFY="true"
    )
    text = describe_target(single)
    assert text == "[::1]:6400 db 3 (TLS, certificate not verified, user 'bob')"
    assert "hunter2" not in text

    cluster = redis_config(
        REDIS_CLUSTER_MODE="true",
        REDIS_CLUSTER_ADDRS="127.0.0.1:7000,127.0.0.1:7001",
        REDIS_PASSWORD="hunter2-secret",
    )
    assert describe_target(cluster) == "cluster 127.0.0.1:7000,127.0.0.1:7001 (no TLS)"

"""The whole service against each supported Redis deployment, proven end to end.

Every test runs the routine of ``tests/variant_replication.py``: simulator, the real
replicator service, the published SDK reading flags, and a comparison of all keys
with the simulator's truth. The deployments are a three-master Redis Cluster (also
through a failover), a TLS-only server that requires a client certificate, and a
server where only an ACL user with a password full of URL delimiters may log in.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import quote

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from replicator import keys, version
from replicator.config import load_config
from replicator.exits import EXIT_REDIS
from replicator.probe import RedisProbe
from replicator.status import StatusBlock
from tests.redis_cluster import LocalCluster, redis_cluster  # noqa: F401
from tests.redis_fixtures import TlsFiles, stop_and_remove
from tests.replicator_process import ReplicatorProcess, wait_until
from tests.servers import RedisServer, start_redis
from tests.variant_replication import API_KEY, RedisVariant, replicate_and_verify

pytestmark = pytest.mark.timeout(240)

ACL_USER = "replicator-acl"
#: Every character that has a meaning in a URL, plus a space-free tail.
ACL_PASSWORD = "p@ss:w/rd#%x-Secret"
#: What the replicator needs and nothing more: its own keys and the self-test key.
ACL_RULES = {
    "keys": ["schematic:*", "test:connection:verify"],
    "commands": ["+@read", "+@write", "+@scripting", "+@connection", "+info", "+client|setname"],
}
OLD_VERSION = "old-release"
STALE_COMPANIES = 40


# Cluster --------------------------------------------------------------------------


def cluster_variant(cluster: LocalCluster, **env: str) -> RedisVariant:
    def async_client() -> AsyncRedisCluster:
        nodes = [AsyncClusterNode("127.0.0.1", server.port) for server in cluster.servers]
        return AsyncRedisCluster(startup_nodes=nodes)

    return RedisVariant(
        name="cluster",
        env={"REDIS_CLUSTER_MODE": "true", "REDIS_CLUSTER_ADDRS": cluster.seeds, **env},
        sync_client=cluster.client,
        async_client=async_client,
    )


def seed_leftovers(cluster: LocalCluster) -> None:
    """Write keys the replicator must remove: records of companies the API lacks, under
    the current version (the sweep), and keys of an older version (the cleanup)."""
    current = version.effective_version(None)
    client = cluster.client()
    try:
        for number in range(STALE_COMPANIES):
            entity_id = f"comp_gone_{number}"
            stale = keys.record_key("company", current, entity_id)
            old = keys.record_key("company", OLD_VERSION, entity_id)
            client.set(stale, b'{"id": "%s"}' % entity_id.encode())
            client.set(old, b"{}")
    finally:
        client.close()


def keys_per_master(cluster: LocalCluster) -> dict[int, int]:
    counts = {}
    for server in cluster.masters():
        admin = cluster.node_client(server)
        try:
            counts[server.port] = int(admin.dbsize())
        finally:
            admin.close()
    return counts


def test_cluster_replicates_end_to_end(redis_cluster: LocalCluster) -> None:  # noqa: F811
    redis_cluster.flush()
    seed_leftovers(redis_cluster)
    assert all(count > 0 for count in keys_per_master(redis_cluster).values())

    variant = cluster_variant(
        redis_cluster,
        REDIS_MAX_REDIRECTS="5",
        REDIS_ROUTE_BY_LATENCY="true",
        CACHE_CLEANUP_INTERVAL="2s",
    )
    process = replicate_and_verify(variant, restart=True)

    # The truth check found no leftover, so the sweep and the cleanup reached every
    # master. Every master also contains part of the replicated data.
    counts = keys_per_master(redis_cluster)
    assert len(counts) == 3
    assert all(count > 0 for count in counts.values()), counts
    assert "CROSSSLOT" not in process.output()


def master_of(cluster: LocalCluster, key: str) -> RedisServer:
    client = cluster.client()
    try:
        port = client.get_node_from_key(key).port
    finally:
        client.close()
    return next(server for server in cluster.servers if server.port == port)


def promote_replica(cluster: LocalCluster, master: RedisServer) -> None:
    """Run CLUSTER FAILOVER on the replica of ``master`` and wait for the new roles."""
    replica = cluster.replica_of(master)
    admin = cluster.node_client(replica)
    try:
        admin.execute_command("CLUSTER", "FAILOVER")
        wait_until(
            lambda: admin.info("replication").get("role") == "master",
            20.0,
            f"the replica on port {replica.port} to become a master",
        )
    finally:
        admin.close()
    cluster.wait_healthy()


def fail_over(cluster: LocalCluster, pause_s: float = 1.5) -> None:
    """While changes flow, promote the replica of the master that holds the writer
    lease, then the replica of another master."""
    time.sleep(pause_s)
    lease_master = master_of(cluster, keys.WRITER_LOCK_KEY)
    promote_replica(cluster, lease_master)
    time.sleep(pause_s)
    other = next(server for server in cluster.masters() if server.port != lease_master.port)
    promote_replica(cluster, other)
    time.sleep(pause_s)


def test_cluster_failover_loses_nothing(redis_cluster: LocalCluster) -> None:  # noqa: F811
    redis_cluster.flush()
    masters_before = {server.port for server in redis_cluster.masters()}

    variant = cluster_variant(redis_cluster)
    process = replicate_and_verify(variant, during_mutations=partial(fail_over, redis_cluster))

    masters_after = {server.port for server in redis_cluster.masters()}
    assert len(masters_before - masters_after) == 2
    assert len(masters_after) == 3
    assert "Lost the writer lease" not in process.output()


def test_probe_pings_every_primary(redis_cluster: LocalCluster) -> None:  # noqa: F811
    config = load_config(
        {
            "SCHEMATIC_API_KEY": API_KEY,
            "REDIS_CLUSTER_MODE": "true",
            "REDIS_CLUSTER_ADDRS": redis_cluster.seeds,
        }
    )
    probe = RedisProbe(config, StatusBlock.create(), on_data_loss=lambda reason: None)
    probe.start()
    state = probe.status.globals
    wait_until(lambda: state.redis_ok == 1, 10.0, "the probe to reach the cluster")

    # A master other than the one a plain PING would use stops replying.
    default = probe.client.get_default_node()
    paused = next(server for server in redis_cluster.masters() if server.port != default.port)
    assert paused.process is not None
    os.kill(paused.process.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: state.redis_ok == 0, 10.0, "the probe to report the paused master")
    finally:
        os.kill(paused.process.pid, signal.SIGCONT)
    wait_until(lambda: state.redis_ok == 1, 10.0, "the probe to report the cluster again")
    assert probe.is_alive()
    probe.stop()


def test_probe_notices_restarted_primary(redis_cluster: LocalCluster) -> None:  # noqa: F811
    config = load_config(
        {
            "SCHEMATIC_API_KEY": API_KEY,
            "REDIS_CLUSTER_MODE": "true",
            "REDIS_CLUSTER_ADDRS": redis_cluster.seeds,
        }
    )
    losses: list[str] = []
    probe = RedisProbe(config, StatusBlock.create(), on_data_loss=losses.append)
    probe.start()
    wait_until(lambda: len(probe.run_ids.known) == 3, 10.0, "the probe to see every primary")

    # A primary that does not own the marker's slot restarts empty, as without persistence.
    marker_port = probe.client.get_node_from_key(keys.LOAD_MARKER_KEY).port
    restarted = next(server for server in redis_cluster.masters() if server.port != marker_port)
    try:
        restarted.restart()
        wait_until(lambda: losses, 20.0, "the probe to notice the restarted primary")
    finally:
        probe.stop()
        redis_cluster.wait_healthy()

    assert len(losses) == 1
    assert restarted.addr in losses[0]
    assert probe.status.globals.data_lost_at > 0


def test_single_node_settings_on_cluster_fail(redis_cluster: LocalCluster) -> None:  # noqa: F811
    node = redis_cluster.servers[0]
    process = ReplicatorProcess("http://127.0.0.1:9", API_KEY, "", REDIS_ADDR=node.addr).start()
    assert process.process is not None
    code = process.process.wait(timeout=60)

    assert code == EXIT_REDIS
    output = process.output()
    assert "cluster mode" in output
    assert "REDIS_CLUSTER_MODE=true" in output
    assert "REDIS_CLUSTER_ADDRS" in output


# TLS ------------------------------------------------------------------------------


def tls_options(files: TlsFiles) -> dict[str, Any]:
    return {
        "ssl": True,
        "ssl_ca_certs": files.ca_cert,
        "ssl_certfile": files.client_cert,
        "ssl_keyfile": files.client_key,
    }


def tls_variant(server: RedisServer, files: TlsFiles, name: str, **env: str) -> RedisVariant:
    certificate_env = {
        "REDIS_TLS_CA_FILE": files.ca_cert,
        "REDIS_TLS_CERT_FILE": files.client_cert,
        "REDIS_TLS_KEY_FILE": files.client_key,
    }
    return RedisVariant(
        name=name,
        env={**certificate_env, **env},
        sync_client=partial(redis.Redis, host="127.0.0.1", port=server.port, **tls_options(files)),
        async_client=partial(
            aioredis.Redis, host="127.0.0.1", port=server.port, **tls_options(files)
        ),
    )


def flush_tls(server: RedisServer, files: TlsFiles) -> None:
    client = redis.Redis(host="127.0.0.1", port=server.port, **tls_options(files))
    try:
        client.flushall()
    finally:
        client.close()


def test_tls_variables_replicate(tls_server: RedisServer, tls_files: TlsFiles) -> None:
    flush_tls(tls_server, tls_files)
    variant = tls_variant(
        tls_server, tls_files, "TLS from variables", REDIS_ADDR=tls_server.addr, REDIS_TLS="true"
    )
    replicate_and_verify(variant)


def test_tls_rediss_url_replicates(tls_server: RedisServer, tls_files: TlsFiles) -> None:
    flush_tls(tls_server, tls_files)
    url = f"rediss://127.0.0.1:{tls_server.port}/0"
    variant = tls_variant(tls_server, tls_files, "TLS from a rediss:// URL", REDIS_URL=url)
    replicate_and_verify(variant, mutation_s=1.0)


# ACL user -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    """A server where the default user is off and only ``ACL_USER`` may log in."""
    server = start_redis()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        admin.acl_setuser(ACL_USER, enabled=True, passwords=[f"+{ACL_PASSWORD}"], **ACL_RULES)
        admin.acl_setuser("default", enabled=False)
    finally:
        admin.close()
    yield server
    stop_and_remove(server)


def acl_variant(server: RedisServer, name: str, **env: str) -> RedisVariant:
    credentials = {"username": ACL_USER, "password": ACL_PASSWORD}
    return RedisVariant(
        name=name,
        env=env,
        sync_client=partial(redis.Redis, host="127.0.0.1", port=server.port, **credentials),
        async_client=partial(aioredis.Redis, host="127.0.0.1", port=server.port, **credentials),
        secrets=(ACL_PASSWORD, quote(ACL_PASSWORD, safe="")),
    )


def flush_acl(server: RedisServer) -> None:
    """Delete the previous test's keys; the ACL user may not run FLUSHALL."""
    client = redis.Redis(
        host="127.0.0.1", port=server.port, username=ACL_USER, password=ACL_PASSWORD
    )
    try:
        for key in client.scan_iter(match="schematic:*"):
            client.delete(key)
    finally:
        client.close()


def test_acl_user_from_url(acl_server: RedisServer) -> None:
    flush_acl(acl_server)
    password = quote(ACL_PASSWORD, safe="")
    url = f"redis://{ACL_USER}:{password}@127.0.0.1:{acl_server.port}/0"
    replicate_and_verify(acl_variant(acl_server, "ACL user in REDIS_URL", REDIS_URL=url))


def test_acl_user_from_variables(acl_server: RedisServer) -> None:
    flush_acl(acl_server)
    variant = acl_variant(
        acl_server,
        "ACL user in REDIS_USERNAME and REDIS_PASSWORD",
        REDIS_ADDR=acl_server.addr,
        REDIS_USERNAME=ACL_USER,
        REDIS_PASSWORD=ACL_PASSWORD,
    )
    replicate_and_verify(variant, mutation_s=1.0)

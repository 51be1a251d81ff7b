"""A real Redis Cluster for tests: three masters with one replica each, on 127.0.0.1.

Six redis-server processes are started on free ports, joined with
``redis-cli --cluster create``, and stopped by their pid when the test module ends.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.servers import RedisServer, free_port

MASTERS = 3
REPLICAS_PER_MASTER = 1
#: How long a node may be unreachable before the cluster fails it over, in milliseconds.
NODE_TIMEOUT_MS = 5000
STARTUP_TIMEOUT_S = 30.0


@dataclass
class LocalCluster:
    """The servers of one test cluster; which of them are masters changes on failover."""

    servers: list[RedisServer]

    @property
    def seeds(self) -> str:
        """``host:port`` of every node, comma-separated, as REDIS_CLUSTER_ADDRS takes them."""
        return ",".join(server.addr for server in self.servers)

    def client(self, **options: object) -> RedisCluster:
        nodes = [ClusterNode("127.0.0.1", server.port) for server in self.servers]
        return RedisCluster(startup_nodes=nodes, **options)  # type: ignore[arg-type]

    def node_client(self, server: RedisServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=server.port)

    def masters(self) -> list[RedisServer]:
        return [server for server in self.servers if self._role(server) == "master"]

    def replica_of(self, master: RedisServer) -> RedisServer:
        """Return the replica that replicates ``master``."""
        for server in self.servers:
            admin = self.node_client(server)
            try:
                info = admin.info("replication")
            finally:
                admin.close()
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
                return server
        raise AssertionError(f"no replica of the master on port {master.port}")

    def flush(self) -> None:
        """Empty every master; safe because the test started this cluster itself."""
        for server in self.masters():
            admin = self.node_client(server)
            try:
                admin.flushall()
            finally:
                admin.close()

    def wait_healthy(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until every node reports cluster_state:ok and lists all six nodes."""
        deadline = time.monotonic() + timeout_s
        while not all(self._node_healthy(server) for server in self.servers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test cluster was not healthy after {timeout_s}s")
            time.sleep(0.1)

    def _node_healthy(self, server: RedisServer) -> bool:
        admin = self.node_client(server)
        try:
            info = admin.cluster("info")
        except redis.RedisError:
            return False
        finally:
            admin.close()
        return (
            info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == len(self.servers)
            and int(info.get("cluster_size", 0)) == MASTERS
        )

    def _role(self, server: RedisServer) -> str:
        admin = self.node_client(server)
        try:
            return str(admin.info("replication").get("role"))
        finally:
            admin.close()

    def stop(self) -> None:
        """Stop every server this cluster started, by pid, and delete its directory."""
        for server in self.servers:
            server.stop()
            shutil.rmtree(server.directory, ignore_errors=True)


def _cluster_server() -> RedisServer:
    # An explicit bus port, because the default (port + 10000) can exceed 65535.
    args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        str(NODE_TIMEOUT_MS),
        "--cluster-port",
        str(free_port()),
    ]
    directory = tempfile.mkdtemp(prefix="replicator-cluster-")
    return RedisServer(port=free_port(), directory=directory, extra_args=args)


def start_cluster() -> LocalCluster:
    """Start six nodes and join them into three masters with one replica each."""
    binary = shutil.which("redis-cli")
    if binary is None:
        raise RuntimeError("redis-cli is not installed; it comes with the redis-server package")
    cluster = LocalCluster(servers=[])
    try:
        for _ in range(MASTERS * (1 + REPLICAS_PER_MASTER)):
            cluster.servers.append(_cluster_server().start())
        addresses = [server.addr for server in cluster.servers]
        replicas = ["--cluster-replicas", str(REPLICAS_PER_MASTER), "--cluster-yes"]
        subprocess.run(
            [binary, "--cluster", "create", *addresses, *replicas],
            check=True,
            capture_output=True,
            timeout=STARTUP_TIMEOUT_S,
        )
        cluster.wait_healthy()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[LocalCluster]:
    """A three-master cluster built once per test module and stopped after it."""
    cluster = start_cluster()
    yield cluster
    cluster.stop()

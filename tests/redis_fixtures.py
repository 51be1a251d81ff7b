"""Throwaway Redis servers with TLS, passwords or cluster mode, for connection tests.

Every server binds 127.0.0.1 on a free port. The test that starts one stops it with
:func:`stop_and_remove`.
Certificates come from the ``openssl`` command and are valid for two days.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import redis

from tests.servers import RedisServer, free_port

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]


@dataclass(frozen=True)
class TlsFiles:
    """A test CA, a second unrelated CA, and certificates signed by the first one."""

    ca_cert: str
    other_ca_cert: str
    server_cert: str
    server_key: str
    wrong_name_cert: str
    wrong_name_key: str
    client_cert: str
    client_key: str


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("the openssl command is not installed; apt-get install openssl")
    subprocess.run([binary, *args], check=True, capture_output=True)


def _make_ca(directory: str, name: str) -> tuple[str, str]:
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    _openssl(
        "req",
        "-x509",
        *EC_KEY,
        "-keyout",
        key,
        "-out",
        cert,
        "-subj",
        f"/CN=Replicator test {name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return cert, key


def _make_leaf(directory: str, name: str, ca: tuple[str, str], alt_name: str) -> tuple[str, str]:
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    _openssl(
        "req",
        "-x509",
        *EC_KEY,
        "-keyout",
        key,
        "-out",
        cert,
        "-subj",
        f"/CN=replicator-test-{name}",
        "-CA",
        ca[0],
        "-CAkey",
        ca[1],
        "-addext",
        f"subjectAltName={alt_name}",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth,clientAuth",
    )
    return cert, key


def make_tls_files(directory: str) -> TlsFiles:
    """Create the CAs and certificates of :class:`TlsFiles` in ``directory``."""
    ca = _make_ca(directory, "ca")
    other_ca = _make_ca(directory, "other-ca")
    server = _make_leaf(directory, "server", ca, "IP:127.0.0.1")
    # Names a host that is not the address the tests connect to.
    wrong_name = _make_leaf(directory, "wrong-name", ca, "DNS:wrong-name.invalid")
    client = _make_leaf(directory, "client", ca, "DNS:replicator-client.invalid")
    return TlsFiles(
        ca_cert=ca[0],
        other_ca_cert=other_ca[0],
        server_cert=server[0],
        server_key=server[1],
        wrong_name_cert=wrong_name[0],
        wrong_name_key=wrong_name[1],
        client_cert=client[0],
        client_key=client[1],
    )


def start_tls_redis(ca_cert: str, cert: str, key: str) -> RedisServer:
    """Start a redis-server that speaks only TLS and requires a client certificate."""
    port = free_port()
    # "--port 0" after the one RedisServer passes turns the plain-text port off.
    args = [
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        ca_cert,
        "--tls-auth-clients",
        "yes",
    ]
    return _start(port, "replicator-redis-tls-", args)


def start_cluster_node() -> RedisServer:
    """Start a one-node Redis Cluster that owns all 16384 slots."""
    port = free_port()
    # An explicit bus port, because the default (port + 10000) can exceed 65535.
    args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-port",
        str(free_port()),
    ]
    server = _start(port, "replicator-redis-cluster-", args)

    admin = redis.Redis(host="127.0.0.1", port=port)
    try:
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        _wait_for_cluster_ok(admin)
    except BaseException:
        stop_and_remove(server)
        raise
    finally:
        admin.close()
    return server


def _start(port: int, prefix: str, args: list[str]) -> RedisServer:
    server = RedisServer(port=port, directory=tempfile.mkdtemp(prefix=prefix), extra_args=args)
    try:
        return server.start()
    except BaseException:
        stop_and_remove(server)
        raise


def stop_and_remove(server: RedisServer) -> None:
    """Stop a server started here and delete its directory."""
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


def _wait_for_cluster_ok(admin: redis.Redis, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while admin.cluster("info").get("cluster_state") != "ok":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the test cluster was not ok after {timeout_s}s")
        time.sleep(0.05)

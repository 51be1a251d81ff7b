"""RespPacker writes the bytes redis-py's own packers write, and clients use it."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest
import redis
from redis.connection import Encoder, PythonRespSerializer

from replicator.config import load_config
from replicator.redis_conn import create_client
from replicator.resp_packer import RespPacker
from tests.servers import RedisServer

ENCODER = Encoder("utf-8", "strict", False)

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "key", b"value"),
    ("MSET", "k1", b"v" * 70_000, "k2", b'"id"', b"k3", b""),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"name"),
    ("SET", "caf\u00e9:\u00fc", "\u00e9t\u00e9 \u2603"),
    ("INCRBY", "counter", 42),
    ("INCRBYFLOAT", "counter", -1.5),
    ("EVALSHA", "a" * 40, 1, "key", b"value"),
    ("SET", "view", memoryview(b"from a view")),
    ("PING",),
]


def python_pack(*args: Any) -> bytes:
    return b"".join(PythonRespSerializer(6000, ENCODER.encode).pack(*args))


def test_packs_like_redis_py() -> None:
    packer = RespPacker(ENCODER.encode)

    for command in COMMANDS:
        assert b"".join(packer.pack(*command)) == python_pack(*command), command


def test_packs_like_hiredis() -> None:
    packer = RespPacker(ENCODER.encode)

    for command in COMMANDS:
        if any(isinstance(argument, memoryview) for argument in command):
            continue
        name = command[0].encode() if isinstance(command[0], str) else command[0]
        arguments = (*name.split(), *(ENCODER.encode(a) for a in command[1:]))
        assert b"".join(packer.pack(*command)) == hiredis.pack_command(arguments), command


@pytest.mark.parametrize("value", [True, None, object(), ["list"]])
def test_rejects_what_redis_py_rejects(value: object) -> None:
    packer = RespPacker(ENCODER.encode)

    with pytest.raises(redis.DataError):
        packer.pack("SET", "key", value)


def test_client_connections_use_packer(redis_server: RedisServer) -> None:
    config = load_config({"SCHEMATIC_API_KEY": "key", "REDIS_URL": redis_server.url}).redis
    client = create_client(config)
    try:
        client.delete("packer:a", "packer:b")
        pipe = client.pipeline(transaction=False)
        pipe.mset({"packer:a": b"\x00\xff binary", "packer:b": "caf\u00e9"})
        pipe.incrby("packer:n", 5)
        pipe.execute()
        connection = client.connection_pool.get_connection()
        packer = connection._command_packer
        client.connection_pool.release(connection)

        assert isinstance(packer, RespPacker)
        assert client.mget("packer:a", "packer:b") == [b"\x00\xff binary", "caf\u00e9".encode()]
        assert client.eval("return redis.call('GET', KEYS[1])", 1, "packer:n") == b"5"
    finally:
        client.delete("packer:a", "packer:b", "packer:n")
        client.close()

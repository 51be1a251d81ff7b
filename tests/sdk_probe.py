"""The published Schematic SDK in replicator mode, driven from synchronous test code."""

from __future__ import annotations

import asyncio
from typing import Any

from schematic.cache import RedisCache
from schematic.client import AsyncSchematic, AsyncSchematicConfig, DataStreamConfig


class SdkProbe:
    """An SDK client that reads every cache from ``redis_client`` (a redis.asyncio client).

    ``health_url`` is the replicator's ``/ready``, from which the SDK takes the cache
    version. The probe closes the Redis client with itself.
    """

    def __init__(self, redis_client: Any, health_url: str, api_url: str, api_key: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.redis = redis_client
        cache = RedisCache(redis_client)
        datastream = DataStreamConfig(
            replicator_mode=True,
            replicator_health_url=health_url,
            company_cache=cache,
            company_lookup_cache=cache,
            user_cache=cache,
            user_lookup_cache=cache,
            flag_cache=cache,
        )
        config = AsyncSchematicConfig(
            base_url=api_url, event_capture_url=api_url, use_datastream=True, datastream=datastream
        )
        self.client = self.loop.run_until_complete(self._open(api_key, config))

    async def _open(self, api_key: str, config: AsyncSchematicConfig) -> AsyncSchematic:
        # The client starts background tasks, so it must be built inside the loop.
        client = AsyncSchematic(api_key, config)
        await client.__aenter__()
        return client

    def check(
        self,
        flag_key: str,
        company: dict[str, str] | None = None,
        user: dict[str, str] | None = None,
    ) -> Any:
        call = self.client.check_flag_with_entitlement(flag_key, company=company, user=user)
        return self.loop.run_until_complete(call)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.shutdown())
        self.loop.run_until_complete(self.redis.aclose())
        self.loop.close()

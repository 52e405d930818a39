"""What analytics keeps in Redis: computed statistics, keyed by query and data version (a
new version is a new key, so stale answers are never served, and old ones expire), and a
snapshot of the frame (`analytics_cache`) that lets a starting replica skip the full sync."""

import asyncio
import base64
import hashlib
import json

from actors.analytics.frame import OrdersFrame


class StatsCache:
    def __init__(self, redis, namespace: str, ttl_s: int):
        self.redis = redis
        self.prefix = f"{namespace}:analytics:stats"
        self.ttl_s = ttl_s

    def key(self, data_version: str, query_key: str) -> str:
        return f"{self.prefix}:{data_version}:{hashlib.sha256(query_key.encode()).hexdigest()[:24]}"

    async def get(self, data_version: str, query_key: str) -> dict | None:
        cached = await self.redis.get(self.key(data_version, query_key))
        return json.loads(cached) if cached else None

    async def put(self, data_version: str, query_key: str, document: dict) -> None:
        await self.redis.set(self.key(data_version, query_key), json.dumps(document), ex=self.ttl_s)


class SnapshotStore:
    """The frame as one Redis value (base64 of an .npz: the shared client decodes replies
    as text), with its data version beside it so replicas at the same version skip the
    write."""

    def __init__(self, redis, namespace: str):
        self.redis = redis
        self.key = f"{namespace}:analytics_cache:frame"
        self.version_key = f"{namespace}:analytics_cache:version"

    async def saved_version(self) -> str | None:
        return await self.redis.get(self.version_key)

    async def save(self, data: bytes, data_version: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key, base64.b64encode(data).decode())
            pipe.set(self.version_key, data_version)
            await pipe.execute()

    async def load(self) -> OrdersFrame | None:
        encoded = await self.redis.get(self.key)
        if not encoded:
            return None
        return await asyncio.to_thread(lambda: OrdersFrame.from_bytes(base64.b64decode(encoded)))

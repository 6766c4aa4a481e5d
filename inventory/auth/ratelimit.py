"""Token-bucket rate limits: per credential and per tenant, reads and writes apart.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a
request takes `cost` tokens from the credential's bucket AND the tenant's bucket,
or from neither (all-or-nothing), and when refused learns how long to wait.

Buckets live in this process by default. With INVENTORY_REDIS_URL they live in
Redis and every API process shares them: one Lua script per request does the
refill-and-take atomically on the Redis server, using Redis's clock.

The `limits` library was considered: it offers fixed/moving/sliding windows but
no token bucket with a burst separate from the rate, so the bucket is written
here (about thirty lines each way). If Redis is unreachable the request is
allowed and a warning logged (fail open): an outage of the limiter must not
become an outage of the inventory.
"""
from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from .principal import Principal
from .settings import SecuritySettings

log = logging.getLogger(__name__)

LOCAL_BUCKETS = 100_000  # oldest idle buckets are forgotten beyond this (they were full)


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float
    burst: float


class LocalBuckets:
    def __init__(self) -> None:
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, bucket: Bucket, cost: float) -> float:
        """Seconds until `cost` tokens are there (0: now), taking nothing."""
        tokens, stamp = self._state.get(bucket.key, (bucket.burst, time.monotonic()))
        tokens = min(bucket.burst, tokens + (time.monotonic() - stamp) * bucket.rate)
        return 0.0 if tokens >= cost else (cost - tokens) / bucket.rate

    async def take(self, buckets: list[Bucket], cost: float) -> float:
        return self.take_now(buckets, cost)

    def take_now(self, buckets: list[Bucket], cost: float) -> float:
        now = time.monotonic()
        levels = []
        wait = 0.0
        for b in buckets:
            tokens, stamp = self._state.get(b.key, (b.burst, now))
            tokens = min(b.burst, tokens + (now - stamp) * b.rate)
            levels.append(tokens)
            if tokens < cost:
                wait = max(wait, (cost - tokens) / b.rate)
        for b, tokens in zip(buckets, levels):
            self._state[b.key] = (tokens - cost if wait == 0 else tokens, now)
            self._state.move_to_end(b.key)
        while len(self._state) > LOCAL_BUCKETS:
            self._state.popitem(last=False)
        return wait


# KEYS: bucket keys; ARGV: cost, then rate and burst per key. Returns the wait in
# seconds as a string (0 = taken).
_TAKE = """
local cost = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(v[1]) or burst
  local stamp = tonumber(v[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
  levels[i] = tokens
  if tokens < cost then wait = math.max(wait, (cost - tokens) / rate) end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tokens = levels[i]
  if wait == 0 then tokens = tokens - cost end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return tostring(wait)
"""


class RedisBuckets:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.script = self.client.register_script(_TAKE)

    async def take(self, buckets: list[Bucket], cost: float) -> float:
        args: list[float] = [cost]
        for b in buckets:
            args += [b.rate, b.burst]
        try:
            wait = await self.script(keys=[f"inventory:rl:{b.key}" for b in buckets], args=args)
        except Exception as error:  # fail open, see the module docstring
            log.warning("rate limiter unavailable, request allowed: %s", error)
            return 0.0
        return float(wait)

    async def close(self) -> None:
        await self.client.aclose()


class RateLimiter:
    def __init__(self, settings: SecuritySettings):
        self.settings = settings
        self.store = RedisBuckets(settings.redis_url) if settings.redis_url else LocalBuckets()
        # Refused documents, per credential and per process (no Redis round trip:
        # the check runs before parsing, for every request).
        self.refusals = LocalBuckets()
        # The buckets of recent callers: the same for every request of a
        # credential while the settings are these.
        self._known: dict[tuple, tuple[SecuritySettings, list[Bucket]]] = {}

    def _remembered(self, key: tuple, make) -> list[Bucket]:
        found = self._known.get(key)
        if found is None or found[0] is not self.settings:
            if len(self._known) >= LOCAL_BUCKETS:
                self._known.clear()
            found = self._known[key] = (self.settings, make())
        return found[1]

    def _refusal_bucket(self, principal: Principal) -> Bucket | None:
        rate = self.settings.refusal_rate
        if rate <= 0:
            return None
        return self._remembered(("x", principal.credential), lambda: [
            Bucket(f"x:cred:{principal.credential}", rate, max(rate * 4, 1))])[0]

    def refusal_wait_ms(self, principal: Principal) -> int:
        """0 while the credential may still have documents refused; otherwise
        the milliseconds until it may (its next document is refused unparsed)."""
        bucket = self._refusal_bucket(principal)
        wait = self.refusals.wait(bucket, 1) if bucket is not None else 0.0
        return math.ceil(wait * 1000) if wait > 0 else 0

    def note_refusal(self, principal: Principal) -> None:
        bucket = self._refusal_bucket(principal)
        if bucket is not None:
            self.refusals.take_now([bucket], 1)

    def _buckets(self, principal: Principal, write: bool) -> list[Bucket]:
        return self._remembered((write, principal.credential, principal.tenant_id),
                                lambda: self._new_buckets(principal, write))

    def _new_buckets(self, principal: Principal, write: bool) -> list[Bucket]:
        s = self.settings
        rate, burst = (s.write_rate, s.write_burst) if write else (s.read_rate, s.read_burst)
        if rate <= 0:
            return []
        kind = "w" if write else "r"
        buckets = [Bucket(f"{kind}:cred:{principal.credential}", rate, max(burst, 1))]
        if s.tenant_factor > 0:
            buckets.append(Bucket(f"{kind}:tenant:{principal.tenant_id}",
                                  rate * s.tenant_factor, max(burst, 1) * s.tenant_factor))
        return buckets

    async def check(self, principal: Principal, write: bool, cost: int = 1) -> int:
        """0 when allowed; otherwise the milliseconds to wait before retrying."""
        buckets = self._buckets(principal, write)
        if not buckets:
            return 0
        # A request costing more than a whole burst could never pass; cap it.
        cost = min(cost, min(b.burst for b in buckets))
        wait = await self.store.take(buckets, cost)
        return math.ceil(wait * 1000) if wait > 0 else 0

    async def close(self) -> None:
        if isinstance(self.store, RedisBuckets):
            await self.store.close()

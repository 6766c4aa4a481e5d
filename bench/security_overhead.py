"""Per-request cost of the security layer, measured in process (no network, no
database): executing a small query through the schema with and without the
AccessGuard and NUL-check extensions, plus a cached authentication and a
rate-limit check. Prints CPU microseconds per call (process time, less disturbed by other load than wall time); the machine is shared, so the
figures are noisy (run it twice).

    .venv/bin/python bench/security_overhead.py [iterations]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

from inventory.auth import principal as p
from inventory.auth.authenticator import Authenticator
from inventory.auth.ratelimit import RateLimiter
from inventory.auth.settings import SecuritySettings
from inventory.resolvers.context import make_context
from inventory.graphql_runtime.quiet import QuietSchema
from inventory.service.context import Ctx

QUERY = "query($b: Boolean!) { __typename @include(if: $b) a: __typename b: __typename }"


async def timed(label: str, n: int, fn) -> float:
    for _ in range(min(n, 500)):
        await fn()
    start = time.process_time()
    for _ in range(n):
        await fn()
    per_call = (time.process_time() - start) / n * 1e6
    print(f"{label:55} {per_call:8.1f} CPU us/call")
    return per_call


async def main(n: int) -> None:
    import inventory.resolvers.root as root

    principal = p.Principal(uuid.uuid4(), frozenset(p.ALL_SCOPES), "key:x", "key:x")
    limiter = RateLimiter(SecuritySettings(read_rate=1e9, read_burst=1e9))
    ctx = Ctx(db=None)  # type: ignore[arg-type]  # no resolver touches the database here
    guarded = root.build_schema()
    security = {"AccessGuard"}
    bare = QuietSchema(query=root.Query, mutation=root.Mutation, extensions=[
        ext for ext in guarded.extensions if getattr(ext, "__name__", "") not in security])
    assert len(bare.extensions) == len(guarded.extensions) - 1

    async def run(schema):
        context = make_context(ctx, principal=principal, limiter=limiter)
        result = await schema.execute(QUERY, variable_values={"b": True},
                                      context_value=context)
        assert not result.errors, result.errors

    print(f"{n} iterations per line; Python {sys.version.split()[0]}; shared 2-core machine")
    # Alternate the two schemas over several rounds so drift in machine load
    # hits both alike; report the best round of each.
    bases, fulls = [], []
    for round_ in range(5):
        bases.append(await timed(f"round {round_}: execute, no security extensions (baseline)",
                                 n // 5, lambda: run(bare)))
        fulls.append(await timed(f"round {round_}: execute with AccessGuard (scopes, NUL, rate limit)",
                                 n // 5, lambda: run(guarded)))
    base, full = min(bases), min(fulls)
    print(f"best round: baseline {base:.1f} us, with security {full:.1f} us")
    auth = Authenticator(SecuritySettings(auth_cache_s=3600), db=None)  # type: ignore[arg-type]
    header = "Bearer inv_" + "0" * 64 + "_secret"
    import hashlib
    auth._cache[hashlib.sha256(header[7:].encode()).hexdigest()] = (time.monotonic() + 3600,
                                                                     principal)
    await timed("authenticate (cache hit)", n, lambda: auth.authenticate(header))
    await timed("rate limit check (in-process buckets)", n,
                lambda: limiter.check(principal, False))
    print(f"security extensions add {full - base:.1f} us per operation "
          f"({(full - base) / base * 100:.0f}% of the in-process execute)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("iterations", type=int, nargs="?", default=5000)
    asyncio.run(main(parser.parse_args().iterations))

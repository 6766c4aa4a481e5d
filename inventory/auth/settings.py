"""Security settings, read from the environment (listed in inventory/config.py ENV_HELP)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import _flag, _number

PRODUCTION_VALUES = {"production", "prod"}


@dataclass(frozen=True)
class SecuritySettings:
    production: bool = False
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_hs256_secret: str | None = None
    jwks_url: str | None = None
    jwt_tenant_claim: str = "tenant_id"
    auth_cache_s: float = 5.0
    # Token buckets: cost points (reads, inventory/auth/cost.py) or root mutation
    # fields (writes) per second and burst, per credential; the tenant's budget is
    # `tenant_factor` times that.
    read_rate: float = 1000.0
    read_burst: float = 10_000.0
    write_rate: float = 50.0
    write_burst: float = 100.0
    tenant_factor: float = 4.0
    # Documents refused before running (too costly, too complex, unreadable,
    # invalid) per second per credential, burst 4x; past it RATE_LIMITED before
    # the next document is even parsed.
    refusal_rate: float = 5.0
    redis_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 256 * 1024
    introspection: bool = True
    query_max_cost: int = 10_000
    ws_per_credential: int = 20  # open WebSockets per credential and process, 0: no cap
    metrics_auth: bool = False  # /metrics needs the inventory:metrics scope

    @classmethod
    def from_env(cls) -> "SecuritySettings":
        production = os.environ.get("INVENTORY_ENV", "").strip().lower() in PRODUCTION_VALUES
        read_rate = _number("INVENTORY_RATE_READ", 1000.0)
        write_rate = _number("INVENTORY_RATE_WRITE", 50.0)
        origins = os.environ.get("INVENTORY_CORS_ORIGINS", "")
        settings = cls(
            production=production,
            jwt_issuer=os.environ.get("INVENTORY_JWT_ISSUER") or None,
            jwt_audience=os.environ.get("INVENTORY_JWT_AUDIENCE") or None,
            jwt_hs256_secret=os.environ.get("INVENTORY_JWT_HS256_SECRET") or None,
            jwks_url=os.environ.get("INVENTORY_JWKS_URL") or None,
            jwt_tenant_claim=os.environ.get("INVENTORY_JWT_TENANT_CLAIM") or "tenant_id",
            auth_cache_s=_number("INVENTORY_AUTH_CACHE_SECONDS", 5.0),
            read_rate=read_rate,
            read_burst=_number("INVENTORY_RATE_READ_BURST", read_rate * 10),
            write_rate=write_rate,
            write_burst=_number("INVENTORY_RATE_WRITE_BURST", write_rate * 2),
            tenant_factor=_number("INVENTORY_RATE_TENANT_FACTOR", 4.0),
            refusal_rate=_number("INVENTORY_RATE_REFUSED", 5.0),
            redis_url=os.environ.get("INVENTORY_REDIS_URL") or None,
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            max_body_bytes=_number("INVENTORY_MAX_BODY_BYTES", 256 * 1024, int),
            introspection=_flag("INVENTORY_INTROSPECTION", not production),
            query_max_cost=_number("INVENTORY_QUERY_MAX_COST", 10_000, int),
            ws_per_credential=_number("INVENTORY_WS_PER_CREDENTIAL", 20, int),
            metrics_auth=_flag("INVENTORY_METRICS_AUTH", production),
        )
        settings.check()
        return settings

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_hs256_secret or self.jwks_url)

    def check(self) -> None:
        if self.jwt_enabled and not (self.jwt_issuer and self.jwt_audience):
            raise SystemExit(
                "JWT verification needs INVENTORY_JWT_ISSUER and INVENTORY_JWT_AUDIENCE "
                "as well as INVENTORY_JWT_HS256_SECRET or INVENTORY_JWKS_URL; set both"
            )
        if self.jwt_hs256_secret and len(self.jwt_hs256_secret) < 32:
            raise SystemExit(
                "INVENTORY_JWT_HS256_SECRET must be at least 32 characters (use a random "
                "secret, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if "*" in self.cors_origins:
            raise SystemExit(
                "INVENTORY_CORS_ORIGINS must list origins (https://app.example.com), not '*'"
            )

"""Security settings (read from the environment by inventory/config.py, which
lists the variables in ENV_HELP)."""
from __future__ import annotations

from dataclasses import dataclass

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

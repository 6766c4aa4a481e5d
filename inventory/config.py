"""Settings, read from the environment once, at startup, into one `Settings`
object that is passed down (the CLI sets the same variables from its options;
worker processes read them at their own start). No other module reads the
environment. Every variable is listed in `inventory --help` and the README."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .auth.settings import PRODUCTION_VALUES, SecuritySettings
from .domain.webhooks import WebhookSettings, parse_networks

ENV_HELP = {
    "INVENTORY_DATABASE_URL": "postgresql+psycopg://... or cockroachdb+psycopg://...; "
                              "unset: start an embedded PostgreSQL under the data folder",
    "INVENTORY_READ_DATABASE_URL": "replicas for queries marked @boundedStaleness(maxMs:), "
                                   "e.g. the standbys of `inventory cluster up` "
                                   "(target_session_attrs=prefer-standby); unset: every read "
                                   "goes to INVENTORY_DATABASE_URL",
    "INVENTORY_DATA_DIR": "data folder of the embedded database (default ./.inventory-data)",
    "INVENTORY_POOL_SIZE": "database connections per pool and process: one pool reads, one "
                           "writes (default 15 each)",
    "INVENTORY_POOL_MAX_OVERFLOW": "extra connections per pool allowed at peaks, each closed "
                                   "when returned to a full pool (default 0)",
    "INVENTORY_POOL_TIMEOUT": "seconds to wait for a free connection before answering "
                              "UNAVAILABLE (default 5)",
    "INVENTORY_POOL_PING_IDLE": "check a pooled connection before use only when it was idle "
                                "this many seconds; 0 checks every time (default 1)",
    "INVENTORY_TX_MAX_ATTEMPTS": "attempts per write transaction before TRANSACTION_CONFLICT "
                                 "(default 10)",
    "INVENTORY_HOT_KEY_QUEUE": "reservations of the same stock level take turns within a "
                               "process, and single-line ones of a busy level are applied "
                               "in batches by one transaction (default 1)",
    "INVENTORY_SWEEP_INTERVAL": "seconds between sweeps of expired reservations; 0 disables "
                                "(default 5)",
    "INVENTORY_GRAPHIQL": "serve the GraphiQL IDE at /graphql (default 1; 0 in production)",
    "INVENTORY_SEED_DEMO": "seed demo data on start when the database has none (default: 1 "
                           "with the embedded database, 0 otherwise)",
    "INVENTORY_LOG_LEVEL": "log level (default INFO)",
    "INVENTORY_CHANGE_FEED": "live stock changes: ledger (read committed ledger rows, the "
                             "default) or off (no change feed: subscriptions get only "
                             "replay; for benchmarks)",
    "INVENTORY_CHANGE_POLL_INTERVAL": "seconds between ledger reads of the change feed on "
                                      "PostgreSQL (default 0.05)",
    "INVENTORY_SUBSCRIBER_BUFFER": "events buffered per subscription before it is closed "
                                   "with SUBSCRIPTION_OVERFLOW (default 1000)",
    "INVENTORY_WS_MAX_SUBSCRIPTIONS": "operations per WebSocket connection (default 20)",
    "INVENTORY_LOG_FORMAT": "log format: text or json (JSON lines with trace and span ids); "
                            "default text",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "OTLP collector base URL, e.g. http://localhost:4318 "
                                   "(Jaeger); setting it turns tracing on. The other "
                                   "standard OTEL_* variables apply (OTEL_SERVICE_NAME, "
                                   "OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER, "
                                   "OTEL_TRACES_EXPORTER=none|otlp|console, OTEL_SDK_DISABLED)",
    "PROMETHEUS_MULTIPROC_DIR": "folder shared by the worker processes for /metrics; set "
                                "automatically with --workers > 1",
    "INVENTORY_MAX_CONCURRENT": "GraphQL requests one process works on at once; 0 disables "
                                "load shedding (default 16)",
    "INVENTORY_MAX_QUEUE": "requests that may wait for a slot; more are shed with HTTP 503 "
                           "OVERLOADED (default 256)",
    "INVENTORY_QUEUE_TIMEOUT": "seconds a request waits for a slot before it is shed "
                               "(default 2)",
    "INVENTORY_OVERLOAD_RETRY_AFTER_MS": "retry hint given with OVERLOADED (default 200)",
    # Webhooks (docs/webhooks.md)
    "INVENTORY_WEBHOOK_WORKER": "this process may run the webhook worker (one process at a "
                                "time does, by lease); 0: never here (default 1)",
    "INVENTORY_WEBHOOK_ALLOWED_NETWORKS": "comma-separated CIDRs webhooks may call although "
                                          "not public, e.g. 127.0.0.0/8 (default: none; "
                                          "private, loopback and link-local are refused)",
    "INVENTORY_WEBHOOK_RETRY_SECONDS": "how long a delivery is retried before it is marked "
                                       "FAILED (default 86400)",
    "INVENTORY_WEBHOOK_BACKOFF_SECONDS": "first retry delay, doubling up to an hour "
                                         "(default 5)",
    "INVENTORY_WEBHOOK_DISABLE_AFTER": "deliveries FAILED in a row that disable an endpoint "
                                       "(default 5)",
    "INVENTORY_WEBHOOK_TIMEOUT": "seconds per delivery attempt (default 10)",
    "INVENTORY_WEBHOOK_LEASE_SECONDS": "the worker's lease; a dead worker is replaced after "
                                       "this long (default 10)",
    # Security (inventory/auth, docs/security.md)
    "INVENTORY_ENV": "'production' turns GraphiQL and introspection off unless enabled "
                     "(default: development)",
    "INVENTORY_INTROSPECTION": "answer introspection queries (default 1; 0 in production)",
    "INVENTORY_JWT_ISSUER": "required `iss` of bearer JWTs (needed with a JWT key source)",
    "INVENTORY_JWT_AUDIENCE": "required `aud` of bearer JWTs (needed with a JWT key source)",
    "INVENTORY_JWT_HS256_SECRET": "shared secret (>= 32 chars) for HS256 JWTs; unset: no HS256",
    "INVENTORY_JWKS_URL": "JWKS URL for RS256/ES256 JWTs (keys cached); unset: no RS256/ES256",
    "INVENTORY_JWT_TENANT_CLAIM": "JWT claim holding the tenant UUID (default tenant_id)",
    "INVENTORY_AUTH_CACHE_SECONDS": "seconds a verified credential is cached; a revoked key "
                                    "stops working within this time (default 5)",
    "INVENTORY_RATE_READ": "query cost points per second per credential; 0 disables (default 1000)",
    "INVENTORY_RATE_READ_BURST": "query cost burst per credential (default 10x the rate)",
    "INVENTORY_RATE_REFUSED": "refused documents (too costly, too complex, invalid) per second "
                              "per credential, burst 4x; 0 disables (default 5)",
    "INVENTORY_QUERY_MAX_COST": "largest calculated cost of one query (default 10000)",
    "INVENTORY_WS_PER_CREDENTIAL": "open WebSockets per credential and process; 0: no cap (default 20)",
    "INVENTORY_WS_MAX_MESSAGE_BYTES": "largest WebSocket message accepted; a larger one closes the "
                                      "socket with 1009 (default 1048576)",
    "INVENTORY_METRICS_AUTH": "/metrics needs a credential with the inventory:metrics scope "
                              "(default 1 in production, else 0)",
    "INVENTORY_RATE_WRITE": "mutation fields per second per credential; 0 disables "
                            "(default 50)",
    "INVENTORY_RATE_WRITE_BURST": "mutation burst per credential (default 2x the rate)",
    "INVENTORY_RATE_TENANT_FACTOR": "a tenant's budget as a multiple of one credential's; "
                                    "0: no tenant limit (default 4)",
    "INVENTORY_REDIS_URL": "redis://host:port/db to share rate limits between processes "
                           "(default: per process)",
    "INVENTORY_CORS_ORIGINS": "comma-separated browser origins allowed to call the API "
                              "(default: none)",
    "INVENTORY_MAX_BODY_BYTES": "largest request body accepted (default 262144)",
    "INVENTORY_TRUSTED_DOCUMENTS": "JSON manifest of trusted documents (sha256 -> document, "
                                   "from GraphQL Code Generator or Apollo's persisted query "
                                   "manifest); set, only those run, others are refused with "
                                   "PERSISTED_QUERY_NOT_ALLOWED (default: unset, any document)",
}


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _number(name: str, default: float, cast=float):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number; fix or unset it") from None


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    read_database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".inventory-data"))
    # 15 kept, none beyond: an overflow connection is closed when it comes back
    # to a full pool, so with requests in flight above the pool's size every
    # few requests started a new database session (docs/performance.md, "The
    # page's database CPU: connection churn").
    pool_size: int = 15
    pool_max_overflow: int = 0
    pool_timeout_s: float = 5.0
    pool_ping_idle_s: float = 1.0
    tx_max_attempts: int = 10
    hot_key_queue: bool = True
    sweep_interval_s: float = 5.0
    graphiql: bool = True
    seed_demo: bool | None = None
    log_level: str = "INFO"
    max_concurrent: int = 16
    max_queue: int = 256
    queue_timeout_s: float = 2.0
    overload_retry_after_ms: int = 200
    trusted_documents: Path | None = None  # allow-list manifest (inventory/web/trusted.py)
    ws_max_message_bytes: int = 1024 * 1024
    # Live stock (inventory/events): `ledger` reads committed ledger rows, `off`
    # runs no change feed (benchmarks).
    change_feed: str = "ledger"
    change_poll_interval_s: float = 0.05
    subscriber_buffer: int = 1000
    ws_max_subscriptions: int = 20
    log_format: str = "text"  # or json
    # prometheus_client's folder shared by worker processes (set by the CLI for
    # --workers > 1); None: this process's metrics only.
    metrics_multiproc_dir: str | None = None
    # The OTEL_* variables, as read at startup (observability/tracing.py decides
    # from them whether to trace; the exporters read theirs as standard).
    otel: Mapping[str, str] = field(default_factory=dict)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    @classmethod
    def from_env(cls) -> "Settings":
        change_feed = (os.environ.get("INVENTORY_CHANGE_FEED") or "ledger").strip().lower()
        if change_feed not in CHANGE_FEEDS:
            raise SystemExit(f"INVENTORY_CHANGE_FEED={change_feed!r}: use one of "
                             f"{', '.join(CHANGE_FEEDS)}")
        log_format = (os.environ.get("INVENTORY_LOG_FORMAT") or "text").strip().lower()
        if log_format not in ("text", "json"):
            raise SystemExit(f"INVENTORY_LOG_FORMAT={log_format!r}: use text or json")
        return cls(
            database_url=os.environ.get("INVENTORY_DATABASE_URL") or None,
            read_database_url=os.environ.get("INVENTORY_READ_DATABASE_URL") or None,
            data_dir=Path(os.environ.get("INVENTORY_DATA_DIR") or ".inventory-data"),
            pool_size=_number("INVENTORY_POOL_SIZE", cls.pool_size, int),
            pool_max_overflow=_number("INVENTORY_POOL_MAX_OVERFLOW", cls.pool_max_overflow, int),
            pool_timeout_s=_number("INVENTORY_POOL_TIMEOUT", 5.0),
            pool_ping_idle_s=_number("INVENTORY_POOL_PING_IDLE", 1.0),
            tx_max_attempts=_number("INVENTORY_TX_MAX_ATTEMPTS", 10, int),
            hot_key_queue=(os.environ.get("INVENTORY_HOT_KEY_QUEUE") or "1").strip().lower()
            not in {"0", "false", "no", "off"},
            sweep_interval_s=_number("INVENTORY_SWEEP_INTERVAL", 5.0),
            graphiql=_flag("INVENTORY_GRAPHIQL", os.environ.get("INVENTORY_ENV", "").strip()
                           .lower() not in {"production", "prod"}),
            seed_demo=_flag("INVENTORY_SEED_DEMO", False)
            if os.environ.get("INVENTORY_SEED_DEMO") else None,
            log_level=os.environ.get("INVENTORY_LOG_LEVEL", "INFO").upper(),
            max_concurrent=_number("INVENTORY_MAX_CONCURRENT", 16, int),
            max_queue=_number("INVENTORY_MAX_QUEUE", 256, int),
            queue_timeout_s=_number("INVENTORY_QUEUE_TIMEOUT", 2.0),
            overload_retry_after_ms=_number("INVENTORY_OVERLOAD_RETRY_AFTER_MS", 200, int),
            trusted_documents=Path(os.environ["INVENTORY_TRUSTED_DOCUMENTS"])
            if os.environ.get("INVENTORY_TRUSTED_DOCUMENTS") else None,
            ws_max_message_bytes=_number("INVENTORY_WS_MAX_MESSAGE_BYTES", 1024 * 1024, int),
            change_feed=change_feed,
            change_poll_interval_s=_number("INVENTORY_CHANGE_POLL_INTERVAL", 0.05),
            subscriber_buffer=_number("INVENTORY_SUBSCRIBER_BUFFER", 1000, int),
            ws_max_subscriptions=_number("INVENTORY_WS_MAX_SUBSCRIPTIONS", 20, int),
            log_format=log_format,
            metrics_multiproc_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
            otel={name: value for name, value in os.environ.items()
                  if name.startswith("OTEL_")},
            security=_security_from_env(),
            webhooks=_webhooks_from_env(),
        )


CHANGE_FEEDS = ("ledger", "off")


def _webhooks_from_env() -> WebhookSettings:
    networks = os.environ.get("INVENTORY_WEBHOOK_ALLOWED_NETWORKS", "")
    try:
        allowed = parse_networks(networks)
    except ValueError as error:
        raise SystemExit(f"INVENTORY_WEBHOOK_ALLOWED_NETWORKS={networks!r}: {error}") from None
    return WebhookSettings(
        worker=_flag("INVENTORY_WEBHOOK_WORKER", True),
        allowed_networks=allowed,
        retry_window_s=_number("INVENTORY_WEBHOOK_RETRY_SECONDS", 24 * 3600.0),
        backoff_s=_number("INVENTORY_WEBHOOK_BACKOFF_SECONDS", 5.0),
        disable_after=_number("INVENTORY_WEBHOOK_DISABLE_AFTER", 5, int),
        timeout_s=_number("INVENTORY_WEBHOOK_TIMEOUT", 10.0),
        lease_s=_number("INVENTORY_WEBHOOK_LEASE_SECONDS", 10.0),
    )


def _security_from_env() -> SecuritySettings:
    production = os.environ.get("INVENTORY_ENV", "").strip().lower() in PRODUCTION_VALUES
    read_rate = _number("INVENTORY_RATE_READ", 1000.0)
    write_rate = _number("INVENTORY_RATE_WRITE", 50.0)
    origins = os.environ.get("INVENTORY_CORS_ORIGINS", "")
    return SecuritySettings(  # checked by the app that uses them (SecuritySettings.check)
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

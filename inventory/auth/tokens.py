"""Bearer JWT verification (PyJWT) against the configured issuer, audience and keys.

Algorithms are pinned by key source: HS256 only with the shared secret, RS256 or
ES256 only with keys from the JWKS URL. `alg: none`, any other algorithm, and an
HS256 token signed with a public key (algorithm confusion) are rejected before
any signature check. exp, iss, aud and sub are required.
"""
from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import jwt

from .principal import Principal, parse_scopes
from .settings import SecuritySettings

log = logging.getLogger(__name__)

HMAC_ALGORITHMS = ("HS256",)
JWKS_ALGORITHMS = ("RS256", "ES256")
LEEWAY_S = 30  # clock skew between the issuer and this server


class JwtVerifier:
    def __init__(self, settings: SecuritySettings):
        self.settings = settings
        # PyJWKClient caches the key set and fetches again for an unknown `kid`.
        self.jwks = (
            jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=5)
            if settings.jwks_url else None
        )

    async def verify(self, token: str) -> Principal | None:
        """The token's principal, or None for any invalid token (the reason is logged
        at debug level only: clients learn nothing about why)."""
        try:
            return await self._verify(token)
        except Exception as error:  # any malformed or unverifiable token is simply invalid
            log.debug("rejected JWT: %s", error)
            return None

    async def _verify(self, token: str) -> Principal | None:
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm in HMAC_ALGORITHMS and self.settings.jwt_hs256_secret:
            key = self.settings.jwt_hs256_secret
        elif algorithm in JWKS_ALGORITHMS and self.jwks is not None:
            # The fetch is blocking (urllib); keep it off the event loop.
            signing_key = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
            key = signing_key.key
        else:
            return None
        claims = jwt.decode(
            token, key, algorithms=[algorithm],
            audience=self.settings.jwt_audience, issuer=self.settings.jwt_issuer,
            leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud", "sub"]},
        )
        tenant_id = UUID(str(claims[self.settings.jwt_tenant_claim]))
        scopes = parse_scopes(claims.get("scope") or claims.get("scp"))
        subject = str(claims["sub"])[:200]
        return Principal(tenant_id=tenant_id, scopes=scopes, actor=f"jwt:{subject}",
                         credential=f"jwt:{self.settings.jwt_issuer}:{subject}")

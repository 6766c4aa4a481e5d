"""JWT verification against a JWKS served over real HTTP (RS256, ES256), with
algorithms pinned per key source; API key format and hashing."""
from __future__ import annotations

import asyncio
import http.server
import json
import secrets
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from inventory.auth import keys
from inventory.auth.settings import SecuritySettings
from inventory.config import Settings
from inventory.auth.tokens import JwtVerifier

from .support import AUDIENCE, ISSUER, SECRET

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url():
    jwk_rsa = json.loads(RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    jwk_ec = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    body = json.dumps({"keys": [{**jwk_rsa, "kid": "rsa-1", "alg": "RS256", "use": "sig"},
                                {**jwk_ec, "kid": "ec-1", "alg": "ES256", "use": "sig"}]})
    fetches = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", fetches
    server.shutdown()


def _claims(tenant, **extra):
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "tenant_id": str(tenant),
            "scope": "inventory:read inventory:write", "exp": int(time.time()) + 60, **extra}


def _verifier(url: str | None, secret: str | None = SECRET) -> JwtVerifier:
    return JwtVerifier(SecuritySettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
                                        jwt_hs256_secret=secret, jwks_url=url))


def _verify(verifier, token):
    return asyncio.run(verifier.verify(token))


def test_rs256_and_es256_from_jwks_are_accepted_and_cached(jwks_url):
    url, fetches = jwks_url
    verifier = _verifier(url)
    tenant = uuid.uuid4()
    for _ in range(3):
        rs = jwt.encode(_claims(tenant), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
        es = jwt.encode(_claims(tenant), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
        for token in (rs, es):
            principal = _verify(verifier, token)
            assert principal is not None and principal.tenant_id == tenant
            assert principal.scopes == {"inventory:read", "inventory:write"}
            assert principal.actor == "jwt:svc"
    assert len(fetches) == 1  # the key set is cached


def test_algorithm_confusion_and_foreign_keys_are_rejected(jwks_url):
    url, _ = jwks_url
    verifier = _verifier(url)
    tenant = uuid.uuid4()
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # HS256 "signed" with the RSA public key: the classic confusion attack. PyJWT
    # refuses to use a PEM as an HMAC secret, so forge the signature by hand.
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
                     + "." + b64(json.dumps(_claims(tenant)).encode()))
    forged = signing_input + "." + b64(
        hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    rejected = {
        "hs256 with the public key": forged,
        "alg none": jwt.encode(_claims(tenant), None, algorithm="none"),
        "rs256 by another key": jwt.encode(_claims(tenant), OTHER_RSA_KEY, algorithm="RS256",
                                           headers={"kid": "rsa-1"}),
        "unknown kid": jwt.encode(_claims(tenant), RSA_KEY, algorithm="RS256",
                                  headers={"kid": "nope"}),
        "rs512 not allowed": jwt.encode(_claims(tenant), RSA_KEY, algorithm="RS512",
                                        headers={"kid": "rsa-1"}),
        "ec key claimed as rsa": jwt.encode(_claims(tenant), EC_KEY, algorithm="ES256",
                                            headers={"kid": "rsa-1"}),
        "expired": jwt.encode(_claims(tenant, exp=int(time.time()) - 120), RSA_KEY,
                              algorithm="RS256", headers={"kid": "rsa-1"}),
        "no exp": jwt.encode({k: v for k, v in _claims(tenant).items() if k != "exp"},
                             RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
        "tenant not a uuid": jwt.encode(_claims(tenant, tenant_id="acme"), RSA_KEY,
                                        algorithm="RS256", headers={"kid": "rsa-1"}),
        "not a jwt": "a.b.c",
    }
    for case, token in rejected.items():
        assert _verify(verifier, token) is None, case


def test_hs256_is_refused_without_a_secret_and_jwks_algs_without_a_url():
    tenant = uuid.uuid4()
    hs = jwt.encode(_claims(tenant), SECRET, algorithm="HS256")
    rs = jwt.encode(_claims(tenant), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    assert _verify(_verifier(None, SECRET), hs) is not None
    assert _verify(_verifier(None, SECRET), rs) is None
    assert _verify(_verifier("http://127.0.0.1:9/none", None), hs) is None


def test_settings_refuse_incomplete_or_weak_jwt_configuration(monkeypatch):
    for name in ("INVENTORY_JWT_ISSUER", "INVENTORY_JWT_AUDIENCE", "INVENTORY_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INVENTORY_JWT_HS256_SECRET", SECRET)
    with pytest.raises(SystemExit, match="INVENTORY_JWT_ISSUER"):
        Settings.from_env().security.check()
    monkeypatch.setenv("INVENTORY_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("INVENTORY_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("INVENTORY_JWT_HS256_SECRET", "short")
    with pytest.raises(SystemExit, match="at least 32"):
        Settings.from_env().security.check()
    monkeypatch.setenv("INVENTORY_JWT_HS256_SECRET", SECRET)
    monkeypatch.setenv("INVENTORY_CORS_ORIGINS", "*")
    with pytest.raises(SystemExit, match="not '\\*'"):
        Settings.from_env().security.check()


def test_api_keys_parse_and_are_stored_as_hashes():
    tenant, key_id = uuid.uuid4(), uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    text = keys.format_key(tenant, key_id, secret)
    parsed = keys.parse_key(text)
    assert (parsed.tenant_id, parsed.key_id, parsed.secret) == (tenant, key_id, secret)
    # Only that one form: lowercase hex, a 43-character secret.
    for bad in ("inv_", "inv_zz_secret", "inv_" + "0" * 64, "inv_" + "g" * 64 + "_x",
                "key_" + "0" * 64 + "_x", "inv_" + "0" * 64 + "_" + "x" * 300,
                keys.format_key(tenant, key_id, "s3cret"), text.upper(),
                "inv_" + tenant.hex.upper() + key_id.hex + "_" + secret, text + " ",
                "inv_" + "0" * 64 + "_" + "x" * 42 + "!"):
        assert keys.parse_key(bad) is None, bad
    assert keys.hash_secret("s3cret") != "s3cret" and len(keys.hash_secret("s3cret")) == 64
    with pytest.raises(ValueError):
        keys.create_key(None, tenant, ["inventory:everything"], "x")


def test_concurrent_first_requests_share_one_verification():
    """A burst with a new credential costs one key lookup, not one per request;
    a failure reaches every waiter; a cancelled first request does not fail the rest.
    The stand-in lookup waits on a gate the test opens, so no timing is assumed."""
    from inventory.auth import principal as p
    from inventory.auth.authenticator import Authenticator

    calls = []
    gate = asyncio.Event()

    class Counting(Authenticator):
        async def _verify(self, credential):  # stands in for the database lookup
            calls.append(credential)
            await gate.wait()
            if credential == "boom":
                raise RuntimeError("database down")
            return p.Principal(uuid.uuid4(), frozenset(), "key:x", "key:x")

    async def until(condition, what: str) -> None:
        for _ in range(1000):  # event-loop turns, not time
            if condition():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"never happened: {what}")

    async def scenario():
        auth = Counting(SecuritySettings(), db=None)
        burst = [asyncio.create_task(auth.authenticate("Bearer k")) for _ in range(100)]
        await until(lambda: calls == ["k"], "the first lookup")
        await asyncio.sleep(0)  # every request of the burst is waiting now
        gate.set()
        results = await asyncio.gather(*burst)
        assert len({id(r) for r in results}) == 1 and calls == ["k"]

        gate.clear()
        failing = [asyncio.create_task(auth.authenticate("Bearer boom")) for _ in range(5)]
        await until(lambda: "boom" in calls, "the failing lookup")
        await asyncio.sleep(0)
        gate.set()
        failures = await asyncio.gather(*failing, return_exceptions=True)
        assert all(isinstance(f, RuntimeError) for f in failures) and calls.count("boom") == 1

        gate.clear()
        first = asyncio.create_task(auth.authenticate("Bearer c"))
        await until(lambda: "c" in calls, "the first request's lookup")
        second = asyncio.create_task(auth.authenticate("Bearer c"))
        await asyncio.sleep(0)  # the second waits on the first's lookup
        first.cancel()
        await until(lambda: calls.count("c") == 2, "the second request's own lookup")
        gate.set()
        assert await second is not None
        assert first.cancelled()

    asyncio.run(scenario())

"""OpenID Connect bearer tokens verified against a JWKS file: an RSA key made here plays
the issuer. A good token's claim gives the role; an expired token, another issuer or
audience, another key, an unknown kid or an HMAC token signed with the public key are 401;
a valid token without a role is 403."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app

from .conftest import JSON, assert_problem, make_settings, tiny

jwt = pytest.importorskip("jwt")
rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")

ISSUER = "https://id.example.test/realms/fleet"
AUDIENCE = "allocator"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def issuer_key():
    return rsa_key()


@pytest.fixture
def client(tmp_path: Path, issuer_key):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk | {"kid": "k1", "alg": "RS256", "use": "sig"}]}))
    settings = make_settings(
        tmp_path,
        load_examples=False,
        oidc_issuer=ISSUER,
        oidc_jwks_file=jwks,
        oidc_audience=AUDIENCE,
        oidc_roles={"fleet-admins": "admin"},
    )
    with TestClient(create_app(settings)) as c:
        yield c


def token(key, kid: str = "k1", **claims) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-123",
        "preferred_username": "alice",
        "iat": now,
        "exp": now + 300,
        "allocator_role": "planner",
    } | claims
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


def test_a_valid_token_names_the_caller_and_its_role(client, issuer_key):
    me = client.get("/v1/me", headers=bearer(token(issuer_key)))
    assert me.json() == {"name": "oidc:alice", "role": "planner", "auth": "oidc"}
    r = client.put("/v1/scenarios/t", json=tiny(), headers=bearer(token(issuer_key)) | JSON)
    assert r.status_code == 201
    revs = client.get("/v1/scenarios/t/revisions", headers=bearer(token(issuer_key))).json()
    assert revs["items"][0]["saved_by"] == "oidc:alice"
    # a planner token is refused where admin is needed
    assert_problem(client.delete("/v1/scenarios/t", headers=bearer(token(issuer_key))), 403)
    # a list claim: the highest role any value maps to (fleet-admins -> admin)
    admin = token(issuer_key, allocator_role=["viewer", "fleet-admins"], preferred_username=None)
    assert client.get("/v1/me", headers=bearer(admin)).json() == {
        "name": "oidc:u-123",
        "role": "admin",
        "auth": "oidc",
    }
    assert client.delete("/v1/scenarios/t", headers=bearer(admin)).status_code == 204


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 120},
        {"iss": "https://evil.example.test"},
        {"aud": "someone-else"},
        {"sub": None},
    ],
    ids=["expired", "other-issuer", "other-audience", "no-subject"],
)
def test_a_token_failing_a_check_is_401(client, issuer_key, claims):
    body = assert_problem(client.get("/v1/me", headers=bearer(token(issuer_key, **claims))), 401)
    assert "bearer token refused" in body["detail"]
    assert "Bearer" in client.get("/v1/me").headers["www-authenticate"]


def test_a_token_signed_by_another_key_or_unknown_kid_is_401(client):
    other = rsa_key()
    assert_problem(client.get("/v1/me", headers=bearer(token(other))), 401)
    assert_problem(client.get("/v1/me", headers=bearer(token(other, kid="k9"))), 401)
    assert_problem(client.get("/v1/me", headers=bearer("not.a.token")), 401)


def test_an_hmac_token_keyed_with_the_public_key_is_401(client, issuer_key):
    """Algorithm confusion: HS256 'signed' with the issuer's public key as the secret."""
    pem = issuer_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "x",
        "exp": now + 60,
        "allocator_role": "admin",
    }
    payload = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(pem, f"{head}.{payload}".encode(), hashlib.sha256).digest())
    assert_problem(client.get("/v1/me", headers=bearer(f"{head}.{payload}.{sig}")), 401)


def test_a_valid_token_without_a_role_is_403(client, issuer_key):
    for role in (None, "superuser"):
        body = assert_problem(
            client.get("/v1/me", headers=bearer(token(issuer_key, allocator_role=role))), 403
        )
        assert "no role" in body["detail"]

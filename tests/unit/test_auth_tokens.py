"""Access tokens from the auth service's issuer, checked the way every service
checks them (services.shared.tokens.TokenVerifier): round trip, expiry, forged
signatures, signing-key rotation (a new kid makes verifiers refetch the JWKS),
the token lifetime cap and revocations that come with the key set, and what a
verifier does while the auth service is unreachable."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth_svc.api_keys import ApiKey
from services.auth_svc.signing_keys import SigningKeyring, jwk_thumbprint, load_signing_keys, rotate_signing_key
from services.auth_svc.token_issuer import TokenIssuer
from services.shared.errors import Unauthenticated, Unavailable
from services.shared.tokens import TokenVerifier

TTL_SECONDS = 900
KEY = ApiKey(key_id="key_0123456789abcdef0123", tenant_id="ten_a", name="uploads",
             scopes=("videos:read", "videos:write"), prefix="vtc_key_0123456789abcdef0123_abcd",
             created_at=datetime(2030, 1, 1, tzinfo=UTC))


class CountingJwks:
    """The keyring's JWKS, counting how often a verifier fetched it."""

    def __init__(self, keyring: SigningKeyring) -> None:
        self.keyring = keyring
        self.fetches = 0

    async def __call__(self) -> dict:
        self.fetches += 1
        await self.keyring.refresh()
        return self.keyring.jwks()


@pytest.fixture
async def keyring(tmp_path: Path) -> SigningKeyring:
    ring = SigningKeyring(tmp_path / "signing")
    await ring.open()
    return ring


@pytest.fixture
def jwks(keyring: SigningKeyring) -> CountingJwks:
    return CountingJwks(keyring)


@pytest.fixture
def verifier(jwks: CountingJwks) -> TokenVerifier:
    return TokenVerifier(jwks, min_refresh_seconds=0)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_issued_token_verifies_as_the_key_it_was_issued_for(keyring: SigningKeyring,
                                                                  verifier: TokenVerifier) -> None:
    token = TokenIssuer(keyring, TTL_SECONDS).issue(KEY)

    principal = await verifier.verify(token.token)

    assert principal.subject == KEY.key_id
    assert principal.tenant_id == "ten_a"
    assert principal.scopes == frozenset({"videos:read", "videos:write"})
    assert token.lifetime_seconds == TTL_SECONDS
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["iss"] == "vtc-auth" and claims["aud"] == "vtc"
    assert claims["exp"] - claims["iat"] == TTL_SECONDS
    assert claims["exp"] == int(token.expires_at.timestamp())
    header = jwt.get_unverified_header(token.token)
    assert header["alg"] == "EdDSA" and header["kid"] == keyring.current().kid


async def test_expired_token_is_rejected(keyring: SigningKeyring, verifier: TokenVerifier) -> None:
    issued_long_ago = datetime.now(UTC) - timedelta(seconds=TTL_SECONDS + 60)
    token = TokenIssuer(keyring, TTL_SECONDS).issue(KEY, now=issued_long_ago)

    with pytest.raises(Unauthenticated, match="token expired"):
        await verifier.verify(token.token)


async def test_token_signed_by_another_key_is_rejected(keyring: SigningKeyring, verifier: TokenVerifier) -> None:
    genuine = TokenIssuer(keyring, TTL_SECONDS).issue(KEY).token
    claims = jwt.decode(genuine, options={"verify_signature": False})
    # Same claims, same kid, but signed by someone who does not hold the auth service's key.
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                        headers={"kid": keyring.current().kid})

    with pytest.raises(Unauthenticated, match="Signature verification failed"):
        await verifier.verify(forged)


async def test_token_with_elevated_scope_is_rejected(keyring: SigningKeyring, verifier: TokenVerifier) -> None:
    header, payload, signature = TokenIssuer(keyring, TTL_SECONDS).issue(KEY).token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "admin"
    tampered = ".".join([header, _b64url(json.dumps(claims).encode()), signature])

    with pytest.raises(Unauthenticated, match="invalid token"):
        await verifier.verify(tampered)


async def test_rotation_new_tokens_verify_after_a_jwks_refresh_and_old_ones_still_verify(
        keyring: SigningKeyring, jwks: CountingJwks, verifier: TokenVerifier) -> None:
    issuer = TokenIssuer(keyring, TTL_SECONDS)
    before = issuer.issue(KEY)
    await verifier.verify(before.token)
    assert jwks.fetches == 1

    new_key = rotate_signing_key(keyring.directory)
    await keyring.refresh()
    after = issuer.issue(KEY)

    assert after.kid == new_key.kid != before.kid
    assert (await verifier.verify(after.token)).subject == KEY.key_id
    assert jwks.fetches == 2, "an unknown kid must make the verifier fetch the JWKS again"
    assert (await verifier.verify(before.token)).subject == KEY.key_id
    assert jwks.fetches == 2, "a known kid must not cost a fetch"
    assert [key["kid"] for key in keyring.jwks()["keys"]] == [after.kid, before.kid]


async def test_deleting_a_retired_key_retires_its_tokens(keyring: SigningKeyring, tmp_path: Path) -> None:
    issuer = TokenIssuer(keyring, TTL_SECONDS)
    old = issuer.issue(KEY)
    retired_file = keyring.current().path
    rotate_signing_key(keyring.directory)
    os.unlink(retired_file)
    await keyring.refresh()

    fresh_verifier = TokenVerifier(CountingJwks(keyring), min_refresh_seconds=0)
    with pytest.raises(Unauthenticated, match="unknown key"):
        await fresh_verifier.verify(old.token)
    assert (await fresh_verifier.verify(issuer.issue(KEY).token)).tenant_id == "ten_a"


async def test_signing_keys_are_private_files_and_survive_reopening(keyring: SigningKeyring) -> None:
    [key] = load_signing_keys(keyring.directory)
    assert key.path.stat().st_mode & 0o777 == 0o600
    assert keyring.directory.stat().st_mode & 0o777 == 0o700

    reopened = SigningKeyring(keyring.directory)
    await reopened.open()

    assert reopened.current().kid == keyring.current().kid
    assert len(list(keyring.directory.iterdir())) == 1, "reopening must not add a key"


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037, appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


class FlakyJwks(CountingJwks):
    """The keyring's JWKS until `down` is set: then the auth service is unreachable."""

    down = False

    async def __call__(self) -> dict:
        if self.down:
            self.fetches += 1
            raise ConnectionError("auth service unreachable")
        return await super().__call__()


async def test_an_unreachable_auth_service_leaves_the_last_key_set_serving_only_for_a_while(
        keyring: SigningKeyring) -> None:
    source = FlakyJwks(keyring)
    verifier = TokenVerifier(source, refresh_seconds=0.05, min_refresh_seconds=0.05, max_stale_seconds=0.5)
    token = TokenIssuer(keyring, TTL_SECONDS).issue(KEY).token
    await verifier.verify(token)

    source.down = True
    await asyncio.sleep(0.1)
    assert (await verifier.verify(token)).subject == KEY.key_id, "a short outage does not stop the services"
    assert source.fetches == 2, "the stale set was due for a refresh, which was tried"
    await asyncio.sleep(0.5)

    with pytest.raises(Unavailable, match="auth service is unreachable"):
        await verifier.verify(token)


async def test_a_token_living_longer_than_the_published_maximum_is_refused(keyring: SigningKeyring) -> None:
    async def source() -> dict:
        return {**keyring.jwks(), "max_token_lifetime_seconds": TTL_SECONDS}

    verifier = TokenVerifier(source)
    normal = TokenIssuer(keyring, TTL_SECONDS).issue(KEY).token
    long_lived = TokenIssuer(keyring, TTL_SECONDS + 1).issue(KEY).token

    assert (await verifier.verify(normal)).subject == KEY.key_id
    with pytest.raises(Unauthenticated, match=f"longer than the {TTL_SECONDS} s the issuer grants"):
        await verifier.verify(long_lived)


async def test_a_revocation_in_the_fetched_key_set_refuses_tokens_issued_before_it(keyring: SigningKeyring) -> None:
    issuer = TokenIssuer(keyring, TTL_SECONDS)
    before = issuer.issue(KEY, now=datetime.now(UTC) - timedelta(seconds=10)).token
    revoked_at = datetime.now(UTC) - timedelta(seconds=5)

    async def source() -> dict:
        return {**keyring.jwks(), "revoked": [{"key_id": KEY.key_id, "revoked_at": revoked_at.timestamp()}]}

    with pytest.raises(Unauthenticated, match="API key was revoked"):
        await TokenVerifier(source).verify(before)


async def test_a_call_under_way_may_outlive_its_token_but_not_its_key(keyring: SigningKeyring,
                                                                       verifier: TokenVerifier) -> None:
    expired = TokenIssuer(keyring, TTL_SECONDS).issue(KEY, now=datetime.now(UTC) - timedelta(seconds=TTL_SECONDS + 60))

    assert (await verifier.verify(expired.token, allow_expired=True)).subject == KEY.key_id
    verifier.revoke(KEY.key_id, datetime.now(UTC).timestamp())
    with pytest.raises(Unauthenticated, match="API key was revoked"):
        await verifier.verify(expired.token, allow_expired=True)


async def test_an_open_stream_checks_its_token_again_when_trust_moves_or_a_second_passes(
        keyring: SigningKeyring, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the auth interceptor does between a stream's messages: a cheap test, and the full
    # check only when the verifier learned something (a revocation, a key set fetched) or once a second.
    from services.shared import interceptors

    token = TokenIssuer(keyring, TTL_SECONDS).issue(KEY, now=datetime.now(UTC) - timedelta(seconds=10)).token
    await verifier.verify(token)
    now = [1000.0]
    monkeypatch.setattr(interceptors.time, "monotonic", lambda: now[0])
    trust = interceptors._Trust(verifier, token)
    assert not trust.due()

    verifier.revoke(KEY.key_id, datetime.now(UTC).timestamp())  # heard on the bus
    assert trust.due()
    with pytest.raises(Unauthenticated, match="API key was revoked"):
        await trust.check()

    quiet = TokenVerifier(verifier._source, min_refresh_seconds=0)  # a revocation it will learn only by fetching
    await quiet.verify(token)
    trust = interceptors._Trust(quiet, token)
    now[0] += interceptors.RECHECK_SECONDS / 2
    assert not trust.due()
    now[0] += interceptors.RECHECK_SECONDS
    assert trust.due()
    await trust.check()
    assert not trust.due()
    generation = quiet.generation
    await quiet._fetch()  # the periodic refresh of the key set
    assert quiet.generation != generation and trust.due()

"""The Ed25519 keys tokens are signed with, one PEM file each in a directory.

Every key in the directory is published in the JWKS at once; the newest key
(names carry their creation time) signs new tokens once it has been published
for `activation_seconds`, long enough for every verifier to have fetched it,
so no service refuses a token for naming a key it has not seen yet. Until
then its predecessor signs; a first key signs at once. Rotating
is adding a key (`rotate_signing_key`); a retired key stays published until it
is deleted, which is safe once the tokens it signed have expired (the token
TTL after its successor took over). A key's id (`kid`) is its RFC 7638
JWK thumbprint, so the same key always has the same id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.shared.errors import Unavailable
from services.shared.private_files import ensure_private_dir, is_private, write_private_file

log = logging.getLogger("vtc.auth.keys")

ALGORITHM = "EdDSA"
KEY_FILE_SUFFIX = ".pem"
_NAME_TIME = "%Y%m%dT%H%M%S%fZ"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint of an OKP public key (RFC 8037 section 2): SHA-256 over
    the required members in lexicographic order, without whitespace."""
    required = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    path: Path
    created_at: datetime

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey, path: Path) -> SigningKey:
        return cls(kid=jwk_thumbprint(_public_jwk(private_key)), private_key=private_key, path=path,
                   created_at=_created_at(path))

    def public_jwk(self) -> dict[str, str]:
        return {**_public_jwk(self.private_key), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def _public_jwk(private_key: Ed25519PrivateKey) -> dict[str, str]:
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def _created_at(path: Path) -> datetime:
    """When the key was made: from its name (rotate_signing_key's), else the file's mtime."""
    try:
        return datetime.strptime(path.name.split("-")[1], _NAME_TIME).replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def load_signing_keys(directory: Path) -> list[SigningKey]:
    """Every key in the directory, oldest first (by file name)."""
    keys = []
    for path in sorted(directory.glob(f"*{KEY_FILE_SUFFIX}")):
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key; the auth service signs with Ed25519 only")
        if not is_private(path):
            log.warning("signing key %s is readable by other users; chmod 600 it", path)
        keys.append(SigningKey.of(private_key, path))
    return keys


def _has_keys(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob(f"*{KEY_FILE_SUFFIX}"))


def rotate_signing_key(directory: Path, now: datetime | None = None) -> SigningKey:
    """Adds a new signing key, which signs from now on. Older keys stay
    published so the tokens they signed verify until they expire."""
    ensure_private_dir(directory)
    now = now or datetime.now(UTC)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    kid = jwk_thumbprint(_public_jwk(private_key))
    # Names sort by creation time; the thumbprint's head keeps two keys of one microsecond apart.
    path = directory / f"ed25519-{now.strftime(_NAME_TIME)}-{kid[:8]}{KEY_FILE_SUFFIX}"
    if not write_private_file(path, pem):
        raise FileExistsError(f"{path} already exists")
    log.info("new signing key %s in %s", kid, path)
    return SigningKey(kid=kid, private_key=private_key, path=path, created_at=now)


class SigningKeyring:
    """The keys of one directory, reloaded when the directory changes, so a key
    added by `rotate_signing_key` in another process signs without a restart
    (once it is `activation_seconds` old)."""

    def __init__(self, directory: Path, activation_seconds: float = 0.0) -> None:
        self._directory = directory
        self._activation = timedelta(seconds=activation_seconds)
        self._keys: list[SigningKey] = []
        self._seen_change: frozenset[tuple[str, int, int]] | None = None
        self._lock = asyncio.Lock()

    @property
    def directory(self) -> Path:
        return self._directory

    async def open(self) -> None:
        """Loads the keys, creating the first one when the directory has none."""
        async with self._lock:
            if not await asyncio.to_thread(_has_keys, self._directory):
                await asyncio.to_thread(rotate_signing_key, self._directory)
            await self._load()
        log.info("signing keys in %s: %d (current %s)", self._directory, len(self._keys), self.current().kid)

    async def refresh(self) -> None:
        """Reloads the keys if files were added or removed since the last look."""
        async with self._lock:
            if self._directory_change() != self._seen_change:
                await self._load()

    async def _load(self) -> None:
        change = self._directory_change()
        keys = await asyncio.to_thread(load_signing_keys, self._directory)
        if not keys:
            raise Unavailable(f"no signing keys in {self._directory}: restart the auth service to create one")
        self._keys, self._seen_change = keys, change

    def _directory_change(self) -> frozenset[tuple[str, int, int]] | None:
        """What the key files look like now. Names and sizes, not just the
        directory's mtime, which is too coarse to see two changes in one tick."""
        try:
            with os.scandir(self._directory) as entries:
                return frozenset((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size) for entry in entries
                                 if entry.name.endswith(KEY_FILE_SUFFIX))
        except FileNotFoundError:
            return None

    def current(self, now: datetime | None = None) -> SigningKey:
        """The key that signs now: the newest one published for activation_seconds,
        or the oldest when none has been yet (a first key signs at once)."""
        if not self._keys:
            raise Unavailable("the auth service has not loaded its signing keys yet")
        published_before = (now or datetime.now(UTC)) - self._activation
        active = [key for key in self._keys if key.created_at <= published_before]
        return active[-1] if active else self._keys[0]

    def kids(self) -> list[str]:
        """The ids of the published keys, newest first."""
        return [key.kid for key in reversed(self._keys)]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public half of every key, as an RFC 7517 key set."""
        if not self._keys:
            raise Unavailable("the auth service has not loaded its signing keys yet")
        return {"keys": [key.public_jwk() for key in reversed(self._keys)]}

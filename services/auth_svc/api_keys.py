"""API keys: what one is, how its text is made and checked.

The text a client holds is `vtc_<key_id>_<secret>`: the key id finds the
record, the secret proves possession. The secret is 256 random bits, so a
plain SHA-256 of the text is a safe thing to store (no password-style slow
hash needed: there is nothing to brute-force), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from services.auth_svc.timestamps import to_timestamp
from services.shared.errors import Unauthenticated
from services.shared.ids import new_id
from services.shared.validation import free_text
from vtc.v1 import auth_pb2

API_KEY_TEXT_PREFIX = "vtc_"
SECRET_BYTES = 32
PREFIX_SECRET_CHARS = 4  # how much of the secret the listing shows, to tell keys apart
_API_KEY_TEXT = re.compile(r"^vtc_(key_[0-9a-f]{20})_([0-9a-f]{64})$")
MAX_KEY_NAME_CHARS = 200


class InvalidApiKey(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("invalid API key")


class RevokedApiKey(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("this API key was revoked")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant_id: str
    name: str
    scopes: tuple[str, ...]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    def to_proto(self) -> auth_pb2.ApiKey:
        message = auth_pb2.ApiKey(key_id=self.key_id, tenant_id=self.tenant_id, name=self.name,
                                  scopes=list(self.scopes), prefix=self.prefix,
                                  created_at=to_timestamp(self.created_at))
        if self.revoked_at is not None:
            message.revoked_at.CopyFrom(to_timestamp(self.revoked_at))
        return message


@dataclass(frozen=True)
class MintedApiKey:
    """A new key's text (shown once) and what is stored of it."""

    key_id: str
    text: str
    secret_hash: str
    prefix: str


def mint_api_key() -> MintedApiKey:
    key_id = new_id("key")
    text = f"{API_KEY_TEXT_PREFIX}{key_id}_{secrets.token_hex(SECRET_BYTES)}"
    prefix = text[: len(API_KEY_TEXT_PREFIX) + len(key_id) + 1 + PREFIX_SECRET_CHARS]
    return MintedApiKey(key_id=key_id, text=text, secret_hash=hash_api_key(text), prefix=prefix)


def key_id_of(text: str) -> str:
    """The key id in an API key's text; InvalidApiKey when the text is not shaped like a key."""
    match = _API_KEY_TEXT.match(text.strip())
    if match is None:
        raise InvalidApiKey()
    return match.group(1)


def hash_api_key(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()


def api_key_matches(text: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(text), secret_hash)


def key_name(name: str) -> str:
    return free_text(name, "the key name", max_chars=MAX_KEY_NAME_CHARS)


"""How often IssueToken answers one caller: a token bucket per peer address
(every attempt counts, good key or not) and one per API key (every token it
gets counts). Over either, RateLimited (RESOURCE_EXHAUSTED) says when to retry.

Only tokens actually issued count against a key: counting failed attempts
would let anyone who knows a key id (it is in every token's `sub`) lock its
owner out; wrong guesses are held back by their sender's address instead.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.shared.errors import RateLimited

MAX_TRACKED = 50_000  # buckets kept per limit; the least recently used go first (they are full again anyway)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """Per name: `burst` requests at once, refilled at `per_minute`. per_minute 0: no limit."""

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(max(burst, 1))
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_seconds(self, name: str) -> float:
        """0 when a request under this name may pass now; else how long until one may."""
        if self._rate <= 0:
            return 0.0
        bucket = self._refilled(name)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self._rate

    def take(self, name: str) -> None:
        if self._rate > 0:
            self._refilled(name).tokens -= 1

    def _refilled(self, name: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.pop(name, None) or _Bucket(tokens=self._burst, updated=now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        self._buckets[name] = bucket
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return bucket


def peer_address(peer: str) -> str:
    """gRPC's peer ("ipv4:10.0.0.7:53122", "ipv6:[::1]:53122", "unix:...") without its port."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rsplit(":", 1)[0]
    return peer


class IssueTokenLimits:
    def __init__(self, per_key: TokenBucket, per_peer: TokenBucket) -> None:
        self._per_key = per_key
        self._per_peer = per_peer

    def admit_peer(self, peer: str) -> None:
        """Counts one attempt from this peer, or refuses it."""
        address = peer_address(peer)
        wait = self._per_peer.wait_seconds(address)
        if wait > 0:
            raise RateLimited(f"too many token requests from this address; retry in {math.ceil(wait)} s", wait)
        self._per_peer.take(address)

    def admit_key(self, key_id: str) -> None:
        """Counts one token for this API key, or refuses it."""
        wait = self._per_key.wait_seconds(key_id)
        if wait > 0:
            raise RateLimited(f"too many tokens requested for this API key; retry in {math.ceil(wait)} s "
                              "(a token lasts its expires_in: reuse it until then)", wait)
        self._per_key.take(key_id)

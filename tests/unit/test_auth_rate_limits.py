"""The token buckets behind IssueToken's limits, on a clock the test moves."""

from __future__ import annotations

import pytest

from services.auth_svc.rate_limits import IssueTokenLimits, TokenBucket, peer_address
from services.shared.errors import RateLimited


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_one_request_per_refill_interval() -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=6, burst=2, clock=clock)  # one every 10 s
    limits = IssueTokenLimits(per_key=bucket, per_peer=TokenBucket(0, 1))

    limits.admit_key("key_a")
    limits.admit_key("key_a")
    with pytest.raises(RateLimited, match="retry in 10 s") as refused:
        limits.admit_key("key_a")
    assert refused.value.retry_after_seconds == pytest.approx(10)
    limits.admit_key("key_b")  # its own bucket

    clock.now += 4
    with pytest.raises(RateLimited, match="retry in 6 s"):
        limits.admit_key("key_a")
    clock.now += 6
    limits.admit_key("key_a")
    clock.now += 3600  # refills up to the burst, not beyond
    for _ in range(2):
        limits.admit_key("key_a")
    with pytest.raises(RateLimited):
        limits.admit_key("key_a")


def test_a_rate_of_zero_means_no_limit() -> None:
    limits = IssueTokenLimits(per_key=TokenBucket(0, 1), per_peer=TokenBucket(0, 1))
    for _ in range(1000):
        limits.admit_peer("ipv4:127.0.0.1:5000")
        limits.admit_key("key_a")


@pytest.mark.parametrize(("peer", "address"), [
    ("ipv4:10.0.0.7:53122", "ipv4:10.0.0.7"),
    ("ipv6:[::1]:53122", "ipv6:[::1]"),
    ("ipv6:%5B::1%5D:53122", "ipv6:%5B::1%5D"),
    ("unix:/run/vtc.sock", "unix:/run/vtc.sock"),
])
def test_the_peer_address_leaves_out_the_port(peer: str, address: str) -> None:
    assert peer_address(peer) == address

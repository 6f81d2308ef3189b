"""Which job request goes out next (dispatch.choose_fairly): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.metadata_svc.dispatch import choose_fairly, room_to_release

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_quiet_tenant_goes_before_a_burst_queued_earlier() -> None:
    pending = {"busy": list(range(1, 101)), "quiet": [500]}
    assert choose_fairly(pending, {"busy": 1}, {"busy": T0}, room=1) == [500]


def test_when_nobody_runs_anything_the_tenant_served_least_recently_goes_first() -> None:
    # The busy tenant's last job just finished; the quiet one never had a job dispatched.
    pending = {"busy": [1, 2, 3], "quiet": [7]}
    assert choose_fairly(pending, {}, {"busy": T0}, room=1) == [7]
    # Both served before: the one served longer ago goes first.
    assert choose_fairly(pending, {}, {"busy": T0, "quiet": T0 + timedelta(seconds=1)}, room=1) == [1]


def test_busy_tenants_take_turns_and_each_keeps_its_own_order() -> None:
    pending = {"a": [1, 2, 3, 4], "b": [10, 11], "c": [20]}
    assert choose_fairly(pending, {}, {}, room=7) == [1, 10, 20, 2, 11, 3, 4]


def test_fewest_jobs_in_flight_first() -> None:
    pending = {"a": [1, 2], "b": [3, 4]}
    assert choose_fairly(pending, {"a": 3, "b": 1}, {}, room=3) == [3, 4, 1]


def test_no_room_no_release() -> None:
    assert choose_fairly({"a": [1]}, {}, {}, room=0) == []


def test_one_request_per_free_worker_slot() -> None:
    assert room_to_release(slots=4, in_flight=1, in_broker=0) == 3
    assert room_to_release(slots=4, in_flight=4, in_broker=1) == 0


def test_one_request_always_waits_in_the_broker_so_a_stuck_job_holds_nothing_back() -> None:
    # Every slot looks taken (a worker died mid-job; its job still reads RUNNING).
    assert room_to_release(slots=1, in_flight=1, in_broker=0) == 1
    assert room_to_release(slots=0, in_flight=0, in_broker=0) == 1  # no worker yet: the first one finds it

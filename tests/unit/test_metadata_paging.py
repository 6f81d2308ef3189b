"""ListVideos page sizes and page tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.metadata_svc.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageCursor, page_size
from services.shared.errors import InvalidArgument


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE == 50
    assert page_size(7) == 7
    assert page_size(10_000) == MAX_PAGE_SIZE == 500
    with pytest.raises(InvalidArgument):
        page_size(-1)


def test_token_round_trips_to_the_same_position() -> None:
    cursor = PageCursor(datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), "vid_0123456789abcdef0123")
    token = cursor.token()
    assert PageCursor.from_token(token) == cursor
    assert token.isascii() and "=" not in token  # safe in a URL query


def test_no_token_means_the_first_page() -> None:
    assert PageCursor.from_token("") is None


@pytest.mark.parametrize("token", ["not base64 !!", "aGVsbG8", "eyJjIjoxfQ", "eyJjIjoiMjAzMC0wMS0wMSIsInYiOiJ4In0"])
def test_a_token_we_did_not_issue_is_an_invalid_argument(token: str) -> None:
    # Garbage, "hello", {"c":1}, and a naive timestamp.
    with pytest.raises(InvalidArgument, match="page_token"):
        PageCursor.from_token(token)


def test_a_page_ends_at_its_byte_budget_but_always_holds_one_video() -> None:
    from services.metadata_svc.paging import fitting_count
    from vtc.v1 import common_pb2, metadata_pb2

    videos = [common_pb2.Video(video_id=f"vid_{i:020x}", title="t" * 1000) for i in range(10)]
    budget = 3 * videos[0].ByteSize() + 10
    count = fitting_count((v.ByteSize() for v in videos), budget)
    assert count == 3
    assert metadata_pb2.ListVideosResponse(videos=videos[:count]).ByteSize() <= budget
    assert metadata_pb2.ListVideosResponse(videos=videos[:count + 1]).ByteSize() > budget
    assert fitting_count([5_000_000], 1024) == 1  # one oversized video still moves paging on
    assert fitting_count([], 1024) == 0


def test_a_token_naming_a_malformed_video_id_is_refused() -> None:
    token = PageCursor(datetime(2030, 1, 1, tzinfo=UTC), "../../x").token()
    with pytest.raises(InvalidArgument, match="page_token"):
        PageCursor.from_token(token)

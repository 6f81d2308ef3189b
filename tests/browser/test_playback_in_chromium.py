"""The proof that GetVideo's playback URLs play in a browser with stock players
and no custom code: headless Chromium opens a page on another origin, hands
hls.js the hls_url (and dash.js the dash_url) as they are, and the video plays
past 3 s; the player finds at least two levels; forcing the other level
changes the picture's size and playback goes on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.playback import PresentedVideo, upload_and_wait
from tests.stack import Stack
from vtc.v1 import common_pb2

PLAY_SECONDS = 3.0
TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="module", params=["default", "webm"])
def presented(request: pytest.FixtureRequest, stack: Stack, clip_two_rungs: Path) -> PresentedVideo:
    """A real job's presentation (the profile's adaptive output): two rungs, 480p and 360p; H.264 + AAC
    with the default profile, VP9 + Opus with webm."""
    token = stack.admin_token()
    video_id, job = upload_and_wait(stack, token, clip_two_rungs, "browser clip", request.param)
    assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
    video = PresentedVideo(stack, token, job.tenant_id, video_id)
    made = sorted(p.relative_to(video.folder).as_posix() for p in video.folder.rglob("*.m3u8"))
    assert "master.m3u8" in made and (video.folder / "manifest.mpd").is_file(), f"the transcoder made {made}"
    codecs = {"default": ("avc1.", "mp4a.40.2"), "webm": ("vp09.", "opus")}[request.param]
    master = (video.folder / "master.m3u8").read_text()
    assert all(codec in master for codec in codecs), master
    return video


def wait_for(driver: Any, what: str, check: Any, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Polls the page's snapshot until check(snapshot) holds; fails with the last one and the console."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = driver.execute_script("return window.snapshot()")
        assert not snapshot["errors"] and not snapshot["mediaError"], (what, snapshot, _console(driver))
        if check(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s; last state {snapshot}; "
                                 f"console {_console(driver)}")
        time.sleep(0.2)


def _console(driver: Any) -> list[str]:
    try:
        return [entry["message"] for entry in driver.get_log("browser")][-20:]
    except Exception:  # noqa: BLE001 - only for the failure message
        return []


@pytest.mark.parametrize("kind", ["hls", "dash"])
def test_a_stock_player_plays_switches_level_and_plays_on(kind: str, presented: PresentedVideo, browser: Any,
                                                          player_page: str) -> None:
    video = presented.get_video()
    url = video.hls_url if kind == "hls" else video.dash_url
    opened = time.monotonic()
    browser.get(f"{player_page}?kind={kind}&src={quote(url, safe='')}")

    started = wait_for(browser, "two levels and playback started",
                       lambda s: len(s["levels"]) >= 2 and s["currentTime"] > 0.5 and s["videoWidth"] > 0)
    widths = [level["width"] for level in started["levels"]]
    assert len(set(widths)) >= 2, f"the levels differ in size: {started['levels']}"

    # Force the level the player is not showing, as a quality menu does.
    target = next(i for i, width in enumerate(widths) if width != started["videoWidth"])
    playing = time.monotonic()
    browser.execute_script(f"window.forceLevel({target})")
    switched = wait_for(browser, f"the picture at level {target} ({widths[target]} wide)",
                        lambda s: s["videoWidth"] == widths[target] and s["rendered"] == target)
    print(f"{kind}: playing {playing - opened:.1f} s after the page opened; level {target} "
          f"({widths[target]} wide) shown {time.monotonic() - playing:.1f} s after the switch")
    after = wait_for(browser, f"playback past {PLAY_SECONDS} s after the switch",
                     lambda s: s["currentTime"] > max(PLAY_SECONDS, switched["currentTime"] + 1.0))

    assert after["videoWidth"] == widths[target] and not after["paused"], after


def test_the_hls_url_plays_when_pasted_into_the_address_bar(presented: PresentedVideo, browser: Any) -> None:
    """What a new user does with the hls_url `vtc status` prints: Chromium plays HLS natively."""
    browser.get(presented.get_video().hls_url)

    deadline = time.monotonic() + TIMEOUT_SECONDS
    state: list[Any] = []
    while time.monotonic() < deadline:
        state = browser.execute_script(
            "const v = document.querySelector('video');"
            "return v ? [v.currentTime, v.videoWidth, v.error && v.error.message] : [0, 0, 'no video element'];")
        if state[0] > PLAY_SECONDS or (state[2] and state[2] != "no video element"):
            break
        time.sleep(0.2)
    assert state[0] > PLAY_SECONDS and state[1] > 0 and not state[2], (state, _console(browser))

"""Stills made in the transcode's own pass, on a clip with a black start, a
fade in, a cut to a shot whose first frames are blurred, a fade out and a
black end: each file decoded and checked as a player or a page would use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.process_svc.execute import execute, probe_source
from services.process_svc.execute.stills import ProducedStills, StillsWriter
from services.process_svc.plan import plan_encode
from services.process_svc.plan.stills import (
    PosterSpec,
    StoryboardSpec,
    ThumbnailsSpec,
    plan_poster,
    plan_storyboard,
    plan_thumbnails,
)
from services.process_svc.profiles import ProfileCatalog
from tests.media import parse_vtt
from tests.source_media import STORYLINE, make_storyline_clip, storyline_frame

FPS = 25


@pytest.fixture(scope="module")
def storyline_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_storyline_clip(tmp_path_factory.mktemp("stills") / "storyline.mp4", fps=FPS)


@pytest.fixture(scope="module")
def stills(storyline_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProducedStills]:
    """The default ladder's pass over the clip, making a poster, 5 thumbnails and a storyboard."""
    source = probe_source(storyline_clip)
    encode = plan_encode(ProfileCatalog.load().get("default"), source)
    out = tmp_path_factory.mktemp("out")
    writers = [StillsWriter(plan, out) for plan in (
        plan_poster(PosterSpec(), encode.renditions, source),
        plan_poster(PosterSpec(name="fixed", at_seconds=4.0, width=320), encode.renditions, source),
        plan_thumbnails(ThumbnailsSpec(count=5, width=320), encode.renditions, source),
        plan_storyboard(StoryboardSpec(interval_seconds=1.0, tile_width=160, columns=4), encode.renditions, source),
    )]
    execute(encode, storyline_clip, out, stills=writers)
    results = {writer.plan.name: writer.result for writer in writers}
    assert all(isinstance(r, ProducedStills) for r in results.values())
    return results  # type: ignore[return-value]


def stretch(t: float) -> str:
    return next(what for start, end, what in STORYLINE if start <= t < end)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def test_the_poster_is_a_sharp_steady_frame_not_black_a_fade_or_the_blur_after_the_cut(
        stills: dict[str, ProducedStills]) -> None:
    result = stills["poster"]
    jpeg, webp = result.poster
    assert (jpeg.name, jpeg.content_type, webp.name, webp.content_type) == (
        "poster.jpg", "image/jpeg", "poster.webp", "image/webp")
    assert jpeg.time_seconds is not None
    assert stretch(jpeg.time_seconds) in ("scene A", "scene B"), f"poster at {jpeg.time_seconds} s"
    for still in (jpeg, webp):
        with Image.open(still.path) as image:
            assert image.format == ("JPEG" if still is jpeg else "WEBP")
            assert image.size == (640, 360) == (still.width, still.height)
            pixels = np.asarray(image.convert("RGB"))
        y = luma(pixels)
        assert y.mean() > 60 and y.std() > 25, "a bright, contrasty picture, as the shots are"
    assert {"near black", "in a fade", "blurred at a scene cut"} <= set(result.poster_rejections)


def test_the_poster_is_the_frame_it_says(stills: dict[str, ProducedStills]) -> None:
    """Colours right (limited-range BT.709 to full-range RGB): the poster matches the source picture."""
    result = stills["poster"]
    at = result.poster[0].time_seconds
    assert at is not None
    expected = storyline_frame(at, round(at * FPS), 640, 360).astype(np.float32)
    with Image.open(result.poster[0].path) as image:
        got = np.asarray(image.convert("RGB")).astype(np.float32)
    assert np.abs(got - expected).mean() < 12, "mean error per channel, after H.264 and JPEG"


def test_a_poster_at_a_time_the_profile_gives(stills: dict[str, ProducedStills]) -> None:
    jpeg, webp = stills["fixed"].poster
    assert jpeg.time_seconds == pytest.approx(4.0, abs=0.5 / FPS) and (jpeg.width, jpeg.height) == (320, 180)
    with Image.open(webp.path) as image:
        assert image.size == (320, 180)
    assert stills["fixed"].poster_rejections == {}, "no frame was judged"


def test_thumbnails_at_even_intervals(stills: dict[str, ProducedStills]) -> None:
    result = stills["thumbnails"]
    names = [t.name for t in result.thumbnails]
    assert names == [f"thumb-{i:04d}.jpg" for i in range(1, 6)]
    times = [t.time_seconds for t in result.thumbnails]
    assert times == pytest.approx([1.0, 3.0, 5.0, 7.0, 9.0], abs=1 / FPS)
    for thumb in result.thumbnails:
        with Image.open(thumb.path) as image:
            assert image.format == "JPEG" and image.size == (320, 180)
            y = luma(np.asarray(image.convert("RGB")))
        assert thumb.time_seconds is not None
        black = stretch(thumb.time_seconds) == "black"
        assert (y.mean() < 10) == black, f"thumbnail at {thumb.time_seconds} s shows its moment"


def test_storyboard_vtt_points_inside_its_sprite(stills: dict[str, ProducedStills]) -> None:
    result = stills["storyboard"]
    sprite, index = result.storyboard
    assert (sprite.name, index.name, index.content_type) == ("storyboard.jpg", "storyboard.vtt", "text/vtt")
    with Image.open(sprite.path) as image:
        assert image.format == "JPEG"
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (3 * 90, 4 * 160, 3), "10 tiles of 160x90, 4 to a row"
    cues = parse_vtt(index.path.read_text(encoding="utf-8"))
    assert len(cues) == 10
    assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(10.0, abs=0.05)
    for i, (start, end, url, (x, y, w, h)) in enumerate(cues):
        assert url == "storyboard.jpg", "relative to the VTT, in the same images/ folder"
        assert start == pytest.approx(i * 1.0) and end > start
        assert (w, h) == (160, 90) and x + w <= pixels.shape[1] and y + h <= pixels.shape[0]
        tile = luma(pixels[y:y + h, x:x + w])
        black = stretch(start) == "black"
        assert (tile.mean() < 10) == black, f"tile {i} ({start} s) shows its moment"

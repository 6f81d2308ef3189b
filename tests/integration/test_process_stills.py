"""Stills made in the transcode's own pass, on a clip with a black start, a
fade in, a cut to a shot whose first frames are blurred, a fade out and a
black end: each file decoded and checked as a player or a page would use it."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.process_svc.execute import execute, probe_source
from services.process_svc.execute.outputs import ProducedOutput
from services.process_svc.plan import plan_encode
from services.process_svc.plan.specs import PosterOutput, StoryboardOutput, ThumbnailsOutput
from services.process_svc.profiles import ProfileCatalog
from tests.media import parse_vtt
from tests.source_media import STORYLINE, make_storyline_clip, storyline_frame

FPS, SECONDS, WIDTH, HEIGHT = 25, 10.0, 640, 360


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProducedOutput]:
    """The default profile's pass over the clip (one 360p rung), with a chosen poster, a poster at 4 s,
    5 thumbnails and a storyboard of 1 s tiles, 4 to a row."""
    clip = make_storyline_clip(tmp_path_factory.mktemp("stills") / "storyline.mp4", fps=FPS, seconds=SECONDS,
                               width=WIDTH, height=HEIGHT)
    default = ProfileCatalog.load().get("default")
    profile = default.model_copy(update={"outputs": (
        *default.renditions, PosterOutput(), PosterOutput(name="fixed", at_seconds=4.0, width=320),
        ThumbnailsOutput(count=5, width=320), StoryboardOutput(interval_seconds=1.0, columns=4))})
    out = tmp_path_factory.mktemp("out")
    produced = execute(plan_encode(profile, probe_source(clip)), clip, out)
    assert not [o.error for o in produced if o.failed]
    return {output.name: output for output in produced}


def stretch(t: float) -> str:
    return next(what for start, end, what in STORYLINE if start <= t < end)


def rgb(path: Path, fmt: str) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == fmt
        return np.asarray(image.convert("RGB")).astype(np.float32)


@functools.cache
def source_picture(i: int, width: int) -> np.ndarray:
    """Frame i of the clip as the source has it, scaled to `width` by averaging blocks."""
    return shrink(storyline_frame(i / FPS, i, WIDTH, HEIGHT).astype(np.float32), width)


def shrink(picture: np.ndarray, width: int) -> np.ndarray:
    k = picture.shape[1] // width
    height, wide = picture.shape[0] // k, picture.shape[1] // k
    return picture[:height * k, :wide * k].reshape(height, k, wide, k, 3).mean(axis=(1, 3))


def when(picture: np.ndarray, around: float | None = None) -> tuple[float, float]:
    """The time of the source frame the picture shows (the closest one, within half a second of `around`
    if given, compared at the picture's size; else anywhere, compared 80 pixels wide) and the mean error."""
    if around is None:
        frames, width = range(round(SECONDS * FPS)), 80
    else:
        frames, width = range(max(0, round((around - 0.5) * FPS)), round((around + 0.5) * FPS)), picture.shape[1]
    small = shrink(picture, width)
    errors = {i: float(np.abs(source_picture(i, width) - small).mean()) for i in frames}
    best = min(errors, key=errors.__getitem__)
    return best / FPS, errors[best]


def test_files_land_in_images_as_the_storage_layout_says(outputs: dict[str, ProducedOutput]) -> None:
    assert [(f.key, f.content_type) for f in outputs["poster"].files] == [
        ("images/poster.jpg", "image/jpeg"), ("images/poster.webp", "image/webp")]
    assert [f.key for f in outputs["thumbnails"].files] == [f"images/thumb-{i:04d}.jpg" for i in range(1, 6)]
    assert [(f.key, f.content_type) for f in outputs["storyboard"].files] == [
        ("images/storyboard.jpg", "image/jpeg"), ("images/storyboard.vtt", "text/vtt")]
    for output in outputs.values():
        for file in output.files:
            assert file.size_bytes == file.path.stat().st_size > 0


def test_the_poster_is_a_sharp_steady_frame_not_black_a_fade_or_the_blur_after_the_cut(
        outputs: dict[str, ProducedOutput]) -> None:
    jpeg, webp = (rgb(f.path, fmt) for f, fmt in zip(outputs["poster"].files, ("JPEG", "WEBP"), strict=True))
    assert jpeg.shape == webp.shape == (HEIGHT, WIDTH, 3)
    at, error = when(jpeg)
    assert stretch(at) in ("scene A", "scene B"), f"the poster shows {stretch(at)} ({at} s)"
    # Colours right (limited-range BT.709 -> full-range RGB): the very picture of the source, within
    # what H.264 and JPEG lose.
    assert error < 12
    assert np.abs(webp - jpeg).mean() < 8, "the WebP shows the same frame"


def test_a_poster_at_a_time_the_profile_gives(outputs: dict[str, ProducedOutput]) -> None:
    jpeg = rgb(outputs["fixed"].files[0].path, "JPEG")
    assert jpeg.shape == (180, 320, 3)
    at, _ = when(jpeg, around=4.0)
    assert at == pytest.approx(4.0, abs=1 / FPS)


def shows(picture: np.ndarray, t: float) -> bool:
    """Whether the picture is the source's frame at t (black: any black frame; else the closest frame)."""
    if stretch(t) == "black":
        return bool(picture.mean() < 10)
    at, _ = when(picture, around=t)
    return abs(at - t) <= 1 / FPS + 1e-9


def test_thumbnails_at_even_intervals(outputs: dict[str, ProducedOutput]) -> None:
    for number, (file, expected) in enumerate(zip(outputs["thumbnails"].files, (1, 3, 5, 7, 9), strict=True)):
        picture = rgb(file.path, "JPEG")
        assert picture.shape == (180, 320, 3)
        assert shows(picture, expected), f"thumbnail {number + 1} shows the frame at {expected} s"


def test_storyboard_vtt_points_inside_its_sprite(outputs: dict[str, ProducedOutput]) -> None:
    sprite, index = outputs["storyboard"].files
    pixels = rgb(sprite.path, "JPEG")
    assert pixels.shape == (3 * 90, 4 * 160, 3), "10 tiles of 160x90, 4 to a row"
    cues = parse_vtt(index.path.read_text(encoding="utf-8"))
    assert len(cues) == 10
    assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(SECONDS, abs=0.05)
    for i, (start, end, url, (x, y, w, h)) in enumerate(cues):
        assert url == "storyboard.jpg", "relative to the VTT, in the same images/ folder"
        assert start == pytest.approx(i * 1.0) and end > start
        assert (w, h) == (160, 90) and x + w <= pixels.shape[1] and y + h <= pixels.shape[0]
        assert shows(pixels[y:y + h, x:x + w], start), f"tile {i} shows the frame at {start} s"

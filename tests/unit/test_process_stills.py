"""Stills without a video file: how poster frames are judged and picked, the
planned times and sizes, the storyboard's sprite and WebVTT geometry, and the
colour conversion of a rung's frame into RGB."""

from __future__ import annotations

import subprocess
import sys
import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from services.process_svc.execute.stills import StillsWriter
from services.process_svc.execute.stills.images import private_copy, rgb_picture, small_luma
from services.process_svc.execute.stills.poster import PosterPicker
from services.process_svc.execute.stills.scoring import LumaStats, luma_stats, poster_score, rejection, score
from services.process_svc.execute.stills.storyboard import SpriteSheet, storyboard_vtt, vtt_timestamp
from services.process_svc.plan import SourceInfo, plan_encode
from services.process_svc.plan.specs import PosterOutput, StoryboardOutput, ThumbnailsOutput
from services.process_svc.plan.stills import (
    ImageSize,
    PosterPlan,
    StillPlan,
    StoryboardPlan,
    ThumbnailsPlan,
    fit_width,
    picture_rung,
    poster_region,
    storyboard_tiles,
    thumbnail_times,
)
from services.process_svc.profiles import ProfileCatalog, ProfileError, parse_profile
from tests.media import parse_vtt

W, H = 160, 90


def stills_of(source: SourceInfo, *outputs: PosterOutput | ThumbnailsOutput | StoryboardOutput) -> list[StillPlan]:
    """The plans of these still outputs, planned with the default ladder for this source."""
    default = ProfileCatalog.load().get("default")
    plan = plan_encode(default.model_copy(update={"outputs": (*default.renditions, *outputs)}), source)
    return [p for p in plan.outputs if p.kind in ("poster", "thumbnails", "storyboard")]  # type: ignore[misc]


def limited(levels: np.ndarray) -> np.ndarray:
    """0..1 picture levels as 8-bit limited-range luma."""
    return (16 + np.clip(levels, 0, 1) * 219).round().astype(np.uint8)


def good_picture(shift: int = 0) -> np.ndarray:
    """A sharp, contrasty, mid-grey scene: a checkerboard over a ramp."""
    x = np.arange(W)[None, :] + shift
    y = np.arange(H)[:, None]
    return limited(0.2 + 0.35 * ((x // 6 + y // 6) % 2) + 0.3 * (x % W) / W)


def other_shot() -> np.ndarray:
    """Another shot: bright rings, a different histogram from good_picture."""
    x = np.arange(W)[None, :] - W / 2
    y = np.arange(H)[:, None] - H / 2
    return limited(0.75 + 0.2 * np.sin(np.hypot(x, y) / 2))


def blurred(picture: np.ndarray, radius: int = 4) -> np.ndarray:
    out = picture.astype(np.float32)
    kernel = np.ones(2 * radius + 1) / (2 * radius + 1)
    out = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, out)
    out = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, out)
    return out.round().astype(np.uint8)


def faded(picture: np.ndarray, gain: float) -> np.ndarray:
    """The picture mixed with black (a fade), as an editor's fade does on levels above black."""
    return limited((picture.astype(np.float32) - 16) / 219 * gain)


GOOD = luma_stats(good_picture())


# --- Judging one frame -----------------------------------------------------------

def test_black_white_and_flat_frames_are_refused() -> None:
    assert rejection(None, luma_stats(limited(np.zeros((H, W)))), None) == "near black"
    assert rejection(None, luma_stats(limited(np.ones((H, W)))), None) == "near white"
    assert rejection(None, luma_stats(limited(np.full((H, W), 0.5))), None) == "flat"
    # A dark frame with a small bright logo is still black to a viewer.
    logo = np.zeros((H, W))
    logo[40:50, 70:90] = 1.0
    assert rejection(None, luma_stats(limited(logo)), None) == "near black"


def test_a_good_frame_among_its_own_shot_is_accepted() -> None:
    neighbours = luma_stats(good_picture(shift=2)), luma_stats(good_picture(shift=4))
    assert rejection(neighbours[0], GOOD, neighbours[1]) is None
    assert rejection(None, GOOD, None) is None


@pytest.mark.parametrize("gains", [(0.5, 0.65, 0.8), (0.9, 0.7, 0.5)], ids=["fade in", "fade out"])
def test_a_frame_in_a_fade_is_refused(gains: tuple[float, float, float]) -> None:
    before, current, after = (luma_stats(faded(good_picture(), g)) for g in gains)
    assert rejection(before, current, after) == "in a fade"


def test_the_first_full_frame_after_a_fade_is_not_in_it() -> None:
    before = luma_stats(faded(good_picture(), 0.8))
    assert rejection(before, GOOD, luma_stats(good_picture(shift=1))) is None


def test_a_blurred_frame_right_after_a_cut_is_refused_a_sharp_one_is_not() -> None:
    shot_a, shot_b = GOOD, luma_stats(other_shot())
    assert rejection(shot_a, luma_stats(blurred(other_shot())), shot_b) == "blurred at a scene cut"
    assert rejection(shot_a, shot_b, shot_b) is None, "a cut alone does not disqualify the new shot"
    # Blurred right before a cut: compared with the frame before it, of the same shot.
    assert rejection(GOOD, luma_stats(blurred(good_picture())), shot_b) == "blurred at a scene cut"


def test_sharper_and_steadier_frames_score_higher() -> None:
    assert score(GOOD) > score(luma_stats(blurred(good_picture())))
    assert score(GOOD) > score(luma_stats(faded(good_picture(), 0.5)))
    steady = poster_score(GOOD, GOOD, GOOD)
    at_fade_end = poster_score(luma_stats(faded(good_picture(), 0.6)), GOOD, GOOD)
    assert steady > at_fade_end


def test_luma_stats_scale() -> None:
    stats = luma_stats(limited(np.tile(np.array([0.0, 1.0]), (H, W // 2))))
    assert stats.mean == pytest.approx(0.5)
    assert stats.contrast == pytest.approx(0.5)
    assert sum(stats.histogram) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        luma_stats(np.zeros((2, 50), np.uint8))


# --- Picking the poster through the video ----------------------------------------

class Picture:
    """Stands for a held video frame, so the test sees which ones the picker keeps alive."""

    def __init__(self, time: float) -> None:
        self.time = time


def storyline(step: float = 0.25, seconds: float = 10.0) -> list[tuple[float, LumaStats]]:
    """Black, fade in, shot A, cut to a blurred then sharp shot B, fade out, black."""
    samples = []
    for i in range(round(seconds / step)):
        t = i * step
        if t < 1.5 or t >= 9.0:
            picture = limited(np.zeros((H, W)))
        elif t < 3.0:
            picture = faded(good_picture(i), (t - 1.5) / 1.5)
        elif t < 5.0:
            picture = good_picture(i)
        elif t < 5.2:
            picture = blurred(other_shot())
        elif t < 7.5:
            picture = other_shot()
        else:
            picture = faded(other_shot(), (9.0 - t) / 1.5)
        samples.append((t, luma_stats(picture)))
    return samples


def test_the_poster_comes_from_the_steady_part_of_a_shot() -> None:
    picker: PosterPicker[Picture] = PosterPicker(poster_region(10.0))
    for t, stats in storyline():
        picker.add(t, stats, Picture(t))
    choice = picker.finish()
    assert choice is not None and choice.rejected_because is None
    assert 3.0 < choice.time < 5.0 or 5.2 < choice.time < 7.5, f"poster at {choice.time}"
    assert choice.picture.time == choice.time
    assert {"near black", "in a fade", "blurred at a scene cut"} <= set(picker.rejections)


def test_outside_the_region_only_when_nothing_inside_will_do() -> None:
    picker: PosterPicker[Picture] = PosterPicker((4.0, 6.0))
    black = luma_stats(limited(np.zeros((H, W))))
    for i in range(40):
        t = i * 0.25
        picker.add(t, GOOD if t < 2.0 else black, Picture(t))
    choice = picker.finish()
    assert choice is not None and choice.time < 2.0 and choice.rejected_because is None


def test_an_all_black_video_still_gets_a_poster_saying_why_it_is_poor() -> None:
    picker: PosterPicker[Picture] = PosterPicker((1.0, 9.0))
    for i in range(5):
        picker.add(float(i), luma_stats(limited(np.zeros((H, W)))), Picture(i))
    choice = picker.finish()
    assert choice is not None and choice.rejected_because == "near black"


def test_the_picker_holds_at_most_three_pictures_whatever_the_length() -> None:
    picker: PosterPicker[Picture] = PosterPicker((0.0, 1e9))
    shots = [luma_stats(good_picture(shift=i)) for i in range(7)]
    alive: list[weakref.ref[Picture]] = []
    for i in range(300):
        picture = Picture(i)
        alive.append(weakref.ref(picture))
        picker.add(float(i), shots[i % 7], picture)
        del picture  # no cycles: freed at once when the picker lets go
        assert sum(ref() is not None for ref in alive) <= 3
    assert picker.finish() is not None


# --- Plans: times and sizes --------------------------------------------------------

def test_thumbnails_sit_in_the_middle_of_equal_parts() -> None:
    assert thumbnail_times(10.0, 5) == (1.0, 3.0, 5.0, 7.0, 9.0)
    assert thumbnail_times(7.0, 1) == (3.5,)


def test_storyboard_tiles_cover_the_video_row_by_row() -> None:
    tile = ImageSize(160, 90)
    interval, tiles = storyboard_tiles(25.0, 2.0, 200, 10, tile)
    assert interval == 2.0 and len(tiles) == 13
    assert tiles[0].start == 0.0 and tiles[-1].end == 25.0
    assert all(a.end == b.start for a, b in zip(tiles, tiles[1:], strict=False))
    assert (tiles[9].x, tiles[9].y) == (1440, 0) and (tiles[10].x, tiles[10].y) == (0, 90)


def test_a_long_video_gets_a_larger_interval_not_more_tiles() -> None:
    interval, tiles = storyboard_tiles(3600.0, 2.0, 200, 10, ImageSize(160, 90))
    assert len(tiles) == 200 and interval == pytest.approx(18.0)
    assert tiles[-1].end == 3600.0 and (tiles[-1].x, tiles[-1].y) == (1440, 19 * 90)


def test_stills_of_the_default_profile_on_1080p() -> None:
    source = SourceInfo(width=1920, height=1080, fps=Fraction(30), duration_seconds=10.0)
    plan = plan_encode(ProfileCatalog.load().get("default"), source)
    [poster] = plan.outputs_of("poster")
    [thumbnails] = plan.outputs_of("thumbnails")
    [storyboard] = plan.outputs_of("storyboard")
    assert isinstance(poster, PosterPlan) and isinstance(thumbnails, ThumbnailsPlan)
    assert isinstance(storyboard, StoryboardPlan)
    assert poster.rung == "720p", "the smallest rung as wide as the poster"
    assert poster.size == ImageSize(1280, 720) and poster.region == (1.0, 9.0) and poster.sample_seconds == 0.25
    assert (thumbnails.rung, thumbnails.size, len(thumbnails.times)) == ("360p", ImageSize(320, 180), 10)
    assert (storyboard.rung, storyboard.tile) == ("360p", ImageSize(160, 90))
    assert storyboard.sheet == ImageSize(800, 90)
    [widest] = stills_of(source, PosterOutput(width=None))
    assert isinstance(widest, PosterPlan) and widest.size == ImageSize(1920, 1080)


def test_the_poster_samples_fewer_candidates_on_long_videos_and_keeps_a_fixed_time_inside() -> None:
    source = SourceInfo(width=1280, height=720, fps=Fraction(25), duration_seconds=7200.0,
                        timeline_gaps=((100.0, 400.0),))
    chosen, fixed = stills_of(source, PosterOutput(), PosterOutput(name="fixed", at_seconds=9000.0))
    assert isinstance(chosen, PosterPlan) and isinstance(fixed, PosterPlan)
    assert chosen.content_seconds == 6900.0 and chosen.sample_seconds == pytest.approx(6900 / 240)
    assert fixed.at_seconds == 6900.0 and fixed.file_names == ("fixed.jpg", "fixed.webp")


def test_stills_without_a_video_output_are_refused_with_the_profile() -> None:
    with pytest.raises(ProfileError, match="poster output 'cover' needs a video output"):
        parse_profile({"name": "sound", "outputs": [{"type": "audio"}, {"type": "poster", "name": "cover"}]})


def test_portrait_and_small_sources_are_never_upscaled() -> None:
    assert fit_width(ImageSize(720, 1280), 1280) == ImageSize(720, 1280)
    assert fit_width(ImageSize(1080, 1920), 160) == ImageSize(160, 284)
    assert fit_width(ImageSize(640, 360), 320) == ImageSize(320, 180)
    sizes = [(1920, 1080), (1280, 720), (854, 480), (640, 360)]
    assert picture_rung(sizes, 1280) == 1
    assert picture_rung(sizes, 160) == 3
    assert picture_rung(sizes[2:], 1280) == 0, "none wide enough: the widest"


# --- The storyboard's files ------------------------------------------------------------

def test_vtt_timestamps() -> None:
    assert vtt_timestamp(0) == "00:00:00.000"
    assert vtt_timestamp(3661.5) == "01:01:01.500"
    assert vtt_timestamp(59.9996) == "00:01:00.000"


def test_sprite_and_vtt_agree_on_every_tile() -> None:
    source = SourceInfo(width=1280, height=720, fps=Fraction(25), duration_seconds=25.0)
    [plan] = stills_of(source, StoryboardOutput(interval_seconds=2.0, columns=4))
    assert isinstance(plan, StoryboardPlan)
    sheet = SpriteSheet(plan)
    for i in range(11):  # the video ended early, at 21.4 s: 11 of the 13 planned tiles
        sheet.add(np.full((plan.tile.height, plan.tile.width, 3), i * 20, np.uint8))
    tiles = sheet.close(21.4)
    image = sheet.image()
    assert image.shape == (3 * 90, 4 * 160, 3)
    cues = parse_vtt(storyboard_vtt(tiles, plan.tile.width, plan.tile.height, "storyboard.jpg"))
    assert len(cues) == 11
    assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(21.4)
    for i, (start, end, url, (x, y, w, h)) in enumerate(cues):
        assert url == "storyboard.jpg" and start < end
        assert x + w <= image.shape[1] and y + h <= image.shape[0]
        assert (image[y:y + h, x:x + w] == i * 20).all(), f"cue {i} points at tile {i}'s picture"
    with pytest.raises(ValueError):
        sheet.add(np.zeros((10, 10, 3), np.uint8))


# --- From a rung's frame -------------------------------------------------------------------

def yuv_frame(y: int, cb: int, cr: int, width: int = 64, height: int = 36) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, (y, cb, cr), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


@pytest.mark.parametrize(("yuv", "rgb"), [
    ((16, 128, 128), (0, 0, 0)),
    ((235, 128, 128), (255, 255, 255)),
    ((126, 128, 128), (128, 128, 128)),
    ((63, 102, 240), (255, 0, 0)),  # BT.709 red; read as BT.601 it would come out (233, 0, ...)
    ((173, 42, 26), (0, 255, 0)),  # BT.709 green
], ids=["black", "white", "grey", "red", "green"])
def test_limited_range_bt709_becomes_full_range_rgb(yuv: tuple[int, int, int], rgb: tuple[int, int, int]) -> None:
    pixels = rgb_picture(yuv_frame(*yuv), ImageSize(32, 18))
    assert pixels.shape == (18, 32, 3)
    assert np.abs(pixels[9, 16].astype(int) - np.array(rgb)).max() <= 3


def test_small_luma_skips_samples_of_the_frame_itself() -> None:
    frame = av.VideoFrame.from_ndarray(np.tile(np.arange(640, dtype=np.uint8)[None, :] % 200, (360, 1)), "gray")
    frame = frame.reformat(format="yuv420p")
    luma = small_luma(frame, 160)
    assert luma.shape == (90, 160)
    assert luma.flags.c_contiguous


def test_small_luma_of_a_ten_bit_rung_reads_its_levels() -> None:
    frame = yuv_frame(126, 128, 128).reformat(format="yuv420p10le")
    luma = small_luma(frame, 16)
    assert luma.dtype == np.uint8 and abs(int(luma.mean()) - 126) <= 1


# --- The writer, fed frames by hand ---------------------------------------------------------

def rung_frames(seconds: float, fps: int = 10, width: int = 64, height: int = 36) -> list[av.VideoFrame]:
    frames = []
    for i in range(round(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 40 + i % 200, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base, frame.duration = i, Fraction(1, fps), 1
        frames.append(frame)
    return frames


def small_source(seconds: float) -> SourceInfo:
    return SourceInfo(width=64, height=36, fps=Fraction(10), duration_seconds=seconds)


def test_a_video_shorter_than_stated_still_gets_every_thumbnail_and_a_storyboard_to_its_end(tmp_path: Path) -> None:
    plans = stills_of(small_source(10.0),  # says 10 s; its pictures stop at 4 s
                      ThumbnailsOutput(count=5, width=32), StoryboardOutput(interval_seconds=1.0, tile_width=32))
    thumbs, board = (StillsWriter(plan, tmp_path) for plan in plans)
    for writer in (thumbs, board):
        writer.start()
    for frame in rung_frames(4.0):
        thumbs.offer(frame)
        board.offer(frame)
    made = thumbs.finish()
    assert [t.time_seconds for t in made.thumbnails] == [1.0, 3.0, 3.9, 3.9, 3.9]
    assert all(t.path.exists() for t in made.thumbnails)
    cues = parse_vtt(board.finish().storyboard[1].path.read_text())
    assert len(cues) == 4 and cues[-1][1] == pytest.approx(4.0)


def test_a_failure_on_the_stills_thread_is_raised_to_the_pass_not_hung_on(tmp_path: Path) -> None:
    [plan] = stills_of(small_source(2.0), ThumbnailsOutput(count=2, width=32))
    writer = StillsWriter(plan, tmp_path)
    writer.start()
    writer.dir.rmdir()  # the scratch disk lost the folder: JPEGs cannot be written
    with pytest.raises(FileNotFoundError):
        for frame in rung_frames(2.0):
            writer.offer(frame)
        writer.finish()
    writer.close()


SHARED_FRAME_STRESS = """
import sys, threading
import av, numpy as np
from services.process_svc.execute.stills.images import private_copy, rgb_picture, small_luma
from services.process_svc.plan.stills import ImageSize
frames = [av.VideoFrame.from_ndarray(np.random.default_rng(i).integers(0, 255, (720, 1280, 3), np.uint8),
                                     format="rgb24").reformat(format="yuv420p") for i in range(4)]
def work(n):
    for i in range(120):
        rgb_picture(frames[i % 4], ImageSize(160 + 2 * n, 90))
        small_luma(frames[(i + 1) % 4])
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_stills_threads_share_a_rung_frame_safely() -> None:
    """A rung's frame goes to its encoder and to every still on that rung at once. PyAV's reformat() writes
    the source frame's colour fields while it scales: four threads scaling the same frames that way crash
    swscale (SIGSEGV/SIGABRT, every time we ran it); the stills scale a private copy instead. Run in a
    process of its own, so a crash fails this test rather than the whole run."""
    done = subprocess.run([sys.executable, "-c", SHARED_FRAME_STRESS], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_private_copy_has_the_same_pixels() -> None:
    frame = yuv_frame(63, 102, 240, width=640, height=360)
    copy = private_copy(frame)
    assert copy is not frame and (copy.width, copy.height, copy.format.name) == (640, 360, "yuv420p")
    assert all(bytes(a) == bytes(b) for a, b in zip(copy.planes, frame.planes, strict=True))

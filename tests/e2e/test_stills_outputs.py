"""Stills end to end: a video uploaded with a profile of one rung, a poster, thumbnails and a
storyboard; GetVideo lists each as an output with its files under images/, stored where it says,
each opening as a browser or a player would open it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.media import parse_vtt
from tests.source_media import make_storyline_clip
from tests.stack import Stack

PROFILE = """
name: stills
video_defaults: {crf: 30, maxrate: 1M, bufsize: 2M, preset: ultrafast}
outputs:
  - {type: video, name: 360p, height: 360}
  - {type: poster, width: 640}
  - {type: thumbnails, count: 3, width: 320}
  - {type: storyboard, interval_seconds: 2, tile_width: 160, columns: 3}
"""


@pytest.fixture(scope="module")
def storyline_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_storyline_clip(tmp_path_factory.mktemp("stills") / "storyline.mp4", fps=25)


def test_stills_are_listed_by_get_video_and_stored_under_images(stack: Stack, storyline_clip: Path) -> None:
    data = storyline_clip.read_bytes()
    with httpx.Client(base_url=stack.rest_url, timeout=120) as rest:
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).raise_for_status().json()["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        reply = rest.post("/v1/uploads", headers={**auth, "content-type": "video/mp4"}, content=data, params={
            "header.filename": "storyline.mp4", "header.size_bytes": len(data),
            "header.sha256": hashlib.sha256(data).hexdigest(),
            "header.profile_document": PROFILE}).raise_for_status().json()
        with rest.stream("GET", f"/v1/jobs/{reply['jobId']}:watch", headers=auth) as watch:
            final = [json.loads(line) for line in watch.iter_lines() if line.strip()][-1]["job"]
        assert final["status"] == "JOB_STATUS_COMPLETED", final
        outputs = rest.get(f"/v1/videos/{reply['videoId']}", headers=auth).raise_for_status().json()["job"]["outputs"]

    assert [(o["name"], o["type"], o["status"]) for o in outputs] == [
        ("360p", "video", "OUTPUT_STATUS_COMPLETED"), ("poster", "poster", "OUTPUT_STATUS_COMPLETED"),
        ("thumbnails", "thumbnails", "OUTPUT_STATUS_COMPLETED"),
        ("storyboard", "storyboard", "OUTPUT_STATUS_COMPLETED")]
    files = {o["name"]: {f["path"]: f for f in o["files"]} for o in outputs}
    assert list(files["poster"]) == ["images/poster.jpg", "images/poster.webp"]
    assert list(files["thumbnails"]) == ["images/thumb-0001.jpg", "images/thumb-0002.jpg", "images/thumb-0003.jpg"]
    assert list(files["storyboard"]) == ["images/storyboard.jpg", "images/storyboard.vtt"]
    def stored(name: str, path: str) -> Path:
        file = files[name][path]
        assert file["storageKey"].endswith(f"/{reply['videoId']}/{path}")
        local = stack.data_dir / "objects" / file["storageKey"]
        assert local.stat().st_size == int(file["sizeBytes"])
        return local

    for path, (fmt, content_type) in {"images/poster.jpg": ("JPEG", "image/jpeg"),
                                      "images/poster.webp": ("WEBP", "image/webp")}.items():
        assert files["poster"][path]["contentType"] == content_type
        with Image.open(stored("poster", path)) as image:
            assert (image.format, image.size) == (fmt, (640, 360))
            grey = np.asarray(image.convert("L"))
            assert grey.mean() > 60, "not the black start or end"
    for path in files["thumbnails"]:
        with Image.open(stored("thumbnails", path)) as image:
            assert (image.format, image.size) == ("JPEG", (320, 180))
    with Image.open(stored("storyboard", "images/storyboard.jpg")) as sprite:
        width, height = sprite.size
    assert files["storyboard"]["images/storyboard.vtt"]["contentType"] == "text/vtt"
    cues = parse_vtt(stored("storyboard", "images/storyboard.vtt").read_text(encoding="utf-8"))
    assert [t for start, end, _, _ in cues for t in (start, end)] == pytest.approx(
        [0, 2, 2, 4, 4, 6, 6, 8, 8, 10], abs=0.05)
    for _, _, url, (x, y, w, h) in cues:
        assert url == "storyboard.jpg" and (w, h) == (160, 90) and x + w <= width and y + h <= height

"""The `vtc` console script, run as a user runs it (a subprocess of the installed
script), against the whole stack on port 0: login, upload with live progress,
list, status, download and decode, delete; and the errors a user meets."""

from __future__ import annotations

import json
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli_runner import Cli, _one_error_line
from tests.media import decoded_summary
from tests.stack import Stack


def test_upload_watch_list_status_download_delete(cli: Cli, clip_640x360: Path, tmp_path: Path) -> None:
    uploaded = cli.json("upload", str(clip_640x360), "--title", "CLI clip", "--watch", timeout=240)
    video_id, job = uploaded["video_id"], uploaded["job"]
    assert video_id.startswith("vid_") and job["job_id"] == uploaded["job_id"]
    assert job["status"] == "JOB_STATUS_COMPLETED", job
    assert {r["name"] for r in job["renditions"]} == {"360p"}  # never above the 360p source

    listed = cli.json("ls")["videos"]
    mine = [v for v in listed if v["video_id"] == video_id]
    assert mine and mine[0]["title"] == "CLI clip" and mine[0]["job"]["status"] == "JOB_STATUS_COMPLETED"

    video = cli.json("status", video_id)
    assert (video["probe"]["width"], video["probe"]["height"]) == (640, 360)
    assert video["job"]["renditions"][0]["name"] == "360p"
    quality = video["job"]["renditions"][0]["quality"]
    assert 25 <= quality["psnr_db"] <= 60 and 0.8 <= quality["ssim"] <= 1.0 and quality["frames_compared"] == 12
    shown = cli.run("status", video_id)
    row = next(line for line in shown.stdout.splitlines() if "640x360" in line and "kb/s" in line)
    assert f"{quality['psnr_db']:.2f}" in row and f"{quality['ssim']:.4f}" in row

    # People's output: a late watcher gets the final state and the rendition table.
    watched = cli.run("watch", uploaded["job_id"], timeout=60)
    assert watched.returncode == 0, watched.stderr
    assert "completed" in watched.stdout and "360p" in watched.stdout and "640x360" in watched.stdout

    target = tmp_path / "out.mp4"
    saved = cli.json("download", video_id, "--rendition", "360p", "-o", str(target))
    assert saved["size_bytes"] == target.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # the temporary name is gone
    summary = decoded_summary(target)
    assert (summary["width"], summary["height"], summary["frames"]) == (640, 360, 60)
    assert summary["duration"] == pytest.approx(2.0, abs=0.1)
    assert summary["has_audio"]

    assert cli.json("rm", video_id) == {"video_id": video_id, "deleted": True, "cancelled_job_id": ""}
    gone = cli.run("status", video_id)
    line = _one_error_line(gone)
    assert line.startswith("vtc: error: NOT_FOUND: ") and video_id in line
    assert video_id not in [v["video_id"] for v in cli.json("ls")["videos"]]


def test_profiles_lists_the_names_upload_takes_and_what_each_makes(cli: Cli) -> None:
    profiles = {p["name"]: p for p in cli.json("profiles")["profiles"]}
    assert {"default", "per-title", "audio"} <= profiles.keys()
    assert profiles["per-title"]["per_title"] and not profiles["default"]["per_title"]
    assert [o["type"] for o in profiles["audio"]["outputs"]] == ["audio", "audio"]

    shown = cli.run("profiles")
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "presentation" in line and "adaptive" in line)
    assert "hls + dash of 1080p, 720p, 480p, 360p" in row


def test_download_of_a_missing_rendition_leaves_no_file(cli: Cli, tmp_path: Path) -> None:
    done = cli.run("download", "vid_00000000000000000000", "--rendition", "360p", "-o", str(tmp_path / "x.mp4"))
    assert _one_error_line(done).startswith("vtc: error: NOT_FOUND: ")
    assert list(tmp_path.iterdir()) == []


def test_upload_of_a_text_file_is_refused_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("these are my notes, not a video\n" * 100)
    done = cli.run("upload", str(text), "--watch", timeout=60)
    line = _one_error_line(done)
    assert line.startswith("vtc: error: INVALID_ARGUMENT: ")
    assert len(line) > len("vtc: error: INVALID_ARGUMENT: ") + 10  # a reason, not just the code
    assert done.stdout == ""


def test_commands_before_login_say_to_log_in(stack: Stack, tmp_path: Path) -> None:
    fresh = Cli(config_dir=tmp_path / "config", addr=stack.grpc_address)
    for args in (["ls"], ["status", "vid_00000000000000000000"], ["upload", "whatever.mp4"]):
        done = fresh.run(*args, "--addr", stack.grpc_address)
        assert _one_error_line(done) == "vtc: error: not logged in: run `vtc login`"


def test_login_with_a_wrong_key_is_unauthenticated(stack: Stack, tmp_path: Path) -> None:
    fresh = Cli(config_dir=tmp_path / "config", addr=stack.grpc_address)
    done = fresh.run("login", "--key", "vtc_not_a_real_key", "--addr", stack.grpc_address)
    assert _one_error_line(done).startswith("vtc: error: UNAUTHENTICATED")
    assert not fresh.credentials_file.exists()


def test_an_expired_token_is_renewed_with_the_saved_key(cli: Cli, tmp_path: Path) -> None:
    expired = Cli(config_dir=tmp_path / "config", addr=cli.addr)
    expired.config_dir.mkdir()
    saved = json.loads(cli.credentials_file.read_text())
    past = datetime.now(UTC) - timedelta(minutes=1)
    stale = {**saved, "access_token": "expired", "expires_at": past.isoformat()}
    expired.credentials_file.write_text(json.dumps(stale))

    assert "videos" in expired.json("ls")
    renewed = json.loads(expired.credentials_file.read_text())
    assert renewed["access_token"] not in ("expired", "")
    assert datetime.fromisoformat(renewed["expires_at"]) > datetime.now(UTC)
    assert stat.S_IMODE(expired.credentials_file.stat().st_mode) == 0o600


def _upload_until_running(cli: Cli, clip: Path) -> dict:
    uploaded = cli.json("upload", str(clip), timeout=120)
    deadline = time.monotonic() + 120
    while cli.json("status", uploaded["video_id"])["job"]["status"] != "JOB_STATUS_RUNNING":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    return uploaded


def test_cancel_stops_a_running_job(cli: Cli, clip_1080p: Path) -> None:
    uploaded = _upload_until_running(cli, clip_1080p)

    done = cli.run("cancel", uploaded["job_id"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"job {uploaded['job_id']} cancelled"
    video = cli.json("status", uploaded["video_id"])
    assert video["job"]["status"] == "JOB_STATUS_CANCELLED" and video["job"]["renditions"] == []
    watched = cli.run("watch", uploaded["job_id"])
    assert watched.returncode == 1 and f"job {uploaded['job_id']} cancelled" in watched.stderr


def test_rm_of_a_video_whose_job_runs_cancels_the_job_first(cli: Cli, clip_1080p: Path) -> None:
    uploaded = _upload_until_running(cli, clip_1080p)

    done = cli.run("rm", uploaded["video_id"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"cancelled job {uploaded['job_id']}", f"deleted {uploaded['video_id']}"]
    missing = cli.run("status", uploaded["video_id"])
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_upload_with_a_profile_file_then_retranscode_and_retry(cli: Cli, clip_640x360: Path, tmp_path: Path) -> None:
    own = tmp_path / "small.yaml"
    own.write_text("name: small\noutputs:\n"
                   "  - {type: video, name: 240p, height: 240, crf: 28, maxrate: 500k, bufsize: 1M}\n")
    uploaded = cli.json("upload", str(clip_640x360), "--profile-file", str(own), "--watch", timeout=240)
    assert uploaded["job"]["profile"] == "small" and uploaded["job"]["custom_profile"]
    assert [r["name"] for r in uploaded["job"]["renditions"]] == ["240p"]

    again = cli.json("retranscode", uploaded["video_id"], "--profile", "default", "--watch", timeout=240)
    assert again["status"] == "JOB_STATUS_COMPLETED" and again["profile"] == "default"
    assert again["job_id"] != uploaded["job_id"] and [r["name"] for r in again["renditions"]] == ["360p"]
    shown = cli.run("retranscode", uploaded["video_id"], "--profile-file", str(own))
    assert shown.returncode == 0 and "new job job_" in shown.stdout and "(profile small)" in shown.stdout

    status = cli.run("status", uploaded["video_id"])
    assert "profile small (your own)" in status.stdout, "the newest job: the profile file's"
    nothing = cli.run("retry", again["job_id"])
    assert "FAILED_PRECONDITION" in _one_error_line(nothing) and "nothing to retry" in nothing.stderr

    own.write_text("name: broken\noutputs:\n  - {type: video, name: 240p, height: 241}\n")
    refused = cli.run("retranscode", uploaded["video_id"], "--profile-file", str(own))
    line = _one_error_line(refused)
    assert "INVALID_ARGUMENT" in line and "profile_document: outputs[0].height: must be even" in line
    missing = cli.run("retranscode", uploaded["video_id"], "--profile-file", str(tmp_path / "nope.yaml"))
    assert "no such profile file" in _one_error_line(missing)

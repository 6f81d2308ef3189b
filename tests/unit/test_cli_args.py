"""`vtc` argument parsing: what each command accepts, and usage errors as one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtc.cli.commands.download import run_download
from vtc.cli.commands.upload import run_upload
from vtc.cli.commands.videos import run_ls
from vtc.cli.main import EXIT_USAGE, main, parse_args


def test_upload_takes_file_title_profile_and_watch() -> None:
    args = parse_args(["upload", "clip.mov", "--title", "My clip", "--profile", "default", "--watch"])
    assert args.run is run_upload
    assert (args.file, args.title, args.profile, args.watch) == ("clip.mov", "My clip", "default", True)
    assert args.json is False and args.addr is None


@pytest.mark.parametrize("argv", [["--json", "ls"], ["ls", "--json"]])
def test_json_flag_works_before_or_after_the_command(argv: list[str]) -> None:
    args = parse_args(argv)
    assert args.run is run_ls and args.json is True


@pytest.mark.parametrize("argv", [["--addr", "h:1", "ls"], ["ls", "--addr", "h:1"]])
def test_addr_works_before_or_after_the_command(argv: list[str]) -> None:
    assert parse_args(argv).addr == "h:1"


def test_ls_limit_defaults_to_50() -> None:
    assert parse_args(["ls"]).limit == 50
    assert parse_args(["ls", "--limit", "3"]).limit == 3


def test_download_names_rendition_and_output() -> None:
    args = parse_args(["download", "vid_1", "--rendition", "720p", "-o", "out.mp4"])
    assert args.run is run_download
    assert (args.video_id, args.rendition, args.output) == ("vid_1", "720p", "out.mp4")


def test_login_key_file_is_a_path() -> None:
    assert parse_args(["login", "--key-file", "k.key"]).key_file == Path("k.key")


@pytest.mark.parametrize("argv, complaint", [
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["download", "vid_1"], "the following arguments are required: --rendition"),
    (["ls", "--limit", "0"], "must be at least 1"),
    (["login", "--key", "a", "--key-file", "b"], "not allowed with argument"),
    (["upload"], "the following arguments are required: FILE"),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], complaint: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("vtc: error: ") and complaint in err

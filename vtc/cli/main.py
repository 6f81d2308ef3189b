"""`vtc`: argument parsing and dispatch. Every failure ends as one line on
stderr (`vtc: error: ...`) and a non-zero exit: 2 for usage, 1 otherwise.
Set VTC_DEBUG=1 to see the traceback of an unexpected error."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from vtc.cli.client import addr_in_use
from vtc.cli.commands.download import run_download
from vtc.cli.commands.jobs import run_cancel, run_watch
from vtc.cli.commands.login import run_login
from vtc.cli.commands.profiles import run_profiles
from vtc.cli.commands.rerun import run_retranscode, run_retry
from vtc.cli.commands.upload import run_upload
from vtc.cli.commands.videos import run_ls, run_rm, run_status
from vtc.cli.errors import error_line
from vtc.cli.output import Output

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Command = Callable[[argparse.Namespace, Output], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"vtc: error: {message} (see `{self.prog} --help`)\n")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _common_options(*, defaults: bool) -> argparse.ArgumentParser:
    # The same options on the top parser and on each command, so `vtc --json ls` and
    # `vtc ls --json` both work; SUPPRESS keeps a command's copy from overwriting the other.
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=False if defaults else argparse.SUPPRESS,
                        help="print machine-readable JSON on stdout, no progress bars")
    common.add_argument("--addr", metavar="HOST:PORT", default=None if defaults else argparse.SUPPRESS,
                        help="server address (default: $VTC_ADDR, the address saved at login, 127.0.0.1:50051)")
    return common


def _profile_options(command: argparse.ArgumentParser) -> None:
    profile = command.add_mutually_exclusive_group()
    profile.add_argument("--profile", help="transcoding profile by name (default: the server's default ladder; "
                                           "names: `vtc profiles`)")
    profile.add_argument("--profile-file", type=Path, metavar="FILE",
                         help="a profile of your own, YAML or JSON (the schema of the shipped profiles)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vtc", description="Upload videos to vtc, watch them transcode, download the renditions.",
                     parents=[_common_options(defaults=True)])
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = [_common_options(defaults=False)]

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=common, help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    login = command("login", run_login, "exchange an API key for a token and save both")
    key = login.add_mutually_exclusive_group()
    key.add_argument("--key", help="the API key itself")
    key.add_argument("--key-file", type=Path, metavar="FILE",
                     help="a file holding the API key (default: $VTC_API_KEY, else ./var/keys/admin.key)")

    upload = command("upload", run_upload, "upload a video and start its transcode")
    upload.add_argument("file", metavar="FILE")
    upload.add_argument("--title", help="title to show (default: the file name)")
    _profile_options(upload)
    upload.add_argument("--watch", action="store_true", help="follow the transcode until it ends")

    retranscode = command("retranscode", run_retranscode,
                          "transcode a stored video again, as a new job (its earlier outputs stay until it completes)")
    retranscode.add_argument("video_id", metavar="VIDEO_ID")
    _profile_options(retranscode)
    retranscode.add_argument("--watch", action="store_true", help="follow the new job until it ends")

    retry = command("retry", run_retry, "make again, as a new job, what a failed or cancelled job did not make")
    retry.add_argument("job_id", metavar="JOB_ID")
    retry.add_argument("--watch", action="store_true", help="follow the new job until it ends")

    watch = command("watch", run_watch, "follow a transcoding job until it ends")
    watch.add_argument("job_id", metavar="JOB_ID")

    cancel = command("cancel", run_cancel, "stop a queued or running job; what it wrote is removed")
    cancel.add_argument("job_id", metavar="JOB_ID")

    ls = command("ls", run_ls, "list videos, newest first")
    ls.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N videos (default 50)")

    status = command("status", run_status, "show a video: source, job, renditions and its playback URLs")
    status.add_argument("video_id", metavar="VIDEO_ID")
    status.add_argument("--ttl", type=_positive, metavar="SECONDS",
                        help="how long the playback URLs (hls_url, dash_url) work (default: the server's, an hour; "
                             "at most 7 days)")

    download = command("download", run_download, "save one rendition of a video to a file")
    download.add_argument("video_id", metavar="VIDEO_ID")
    download.add_argument("--rendition", required=True, metavar="NAME", help="e.g. 720p")
    target = download.add_mutually_exclusive_group()
    target.add_argument("-o", "--output", metavar="FILE",
                        help="target file (default: VIDEO_ID_NAME.mp4, or the rendition's own suffix: .m4a, .webm)")
    target.add_argument("--url", action="store_true",
                        help="print a time-limited URL to fetch it from instead (curl, players); nothing is saved")
    download.add_argument("--ttl", type=_positive, metavar="SECONDS",
                          help="with --url: how long the URL works (default: the server's, an hour; at most 7 days)")

    command("profiles", run_profiles, "list the transcoding profiles (names for --profile) and what each makes")

    rm = command("rm", run_rm, "delete a video, its jobs and its files (a running job is cancelled first)")
    rm.add_argument("video_id", metavar="VIDEO_ID")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Output(json_mode=args.json)
    try:
        return args.run(args, out)
    except KeyboardInterrupt:
        print("vtc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if os.environ.get("VTC_DEBUG") == "1":
            raise
        print(error_line(error, addr=addr_in_use(args.addr)), file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

"""`vtc profiles`: the transcoding profiles the server runs, and what a job on each makes."""

from __future__ import annotations

import argparse

from vtc.cli.client import UNARY_TIMEOUT_SECONDS, Session
from vtc.cli.output import Output, profiles_table, to_dict
from vtc.v1 import process_pb2


def run_profiles(args: argparse.Namespace, out: Output) -> int:
    with Session.open(args.addr) as session:
        reply = session.profiles.ListProfiles(process_pb2.ListProfilesRequest(), metadata=session.metadata(),
                                              timeout=UNARY_TIMEOUT_SECONDS)
    if out.json_mode:
        out.json(to_dict(reply))
    else:
        out.show(profiles_table(reply.profiles))
    return 0

"""A real transcode worker (`python -m services.process_svc`) that dies the
way a decoder crash kills a process (os._exit, no cleanup, nothing acked)
whenever it starts a job whose source was uploaded as `*.poison`. It lives in
the tests only: the stand-in for a file that crashes every worker."""

from __future__ import annotations

import asyncio
import os

from services.process_svc import worker
from services.process_svc.server import create_server
from services.process_svc.settings import Settings
from services.shared.server import run_standalone

CRASH_EXIT_CODE = 70
_transcode = worker.TranscodeWorker._transcode


async def _crash_on_poison(self, request, events, running):  # type: ignore[no-untyped-def]
    if request.source_key.endswith(".poison"):
        os._exit(CRASH_EXIT_CODE)  # after `started`: the job is RUNNING when its worker dies
    return await _transcode(self, request, events, running)


worker.TranscodeWorker._transcode = _crash_on_poison  # type: ignore[method-assign]

if __name__ == "__main__":
    asyncio.run(run_standalone("process", Settings(), create_server))

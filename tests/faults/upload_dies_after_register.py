"""A real upload service (`python -m services.upload_svc`) that is SIGKILLed
the moment metadata has answered RegisterVideo, before it can reply to the
client: the stand-in for an upload service killed at the worst time. It lives
in the tests only."""

from __future__ import annotations

import asyncio
import os
import signal

from services.shared.server import run_standalone
from services.upload_svc import intake
from services.upload_svc.server import create_server
from services.upload_svc.settings import Settings

_register = intake.UploadIntake._register


async def _register_then_die(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    await _register(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


intake.UploadIntake._register = _register_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    asyncio.run(run_standalone("upload", Settings(), create_server))

"""`python -m services.upload_svc`: the upload service on its own."""

from __future__ import annotations

import asyncio
import logging

from services.shared.logs import configure_logging
from services.shared.server import wait_for_signal
from services.upload_svc.server import create_server
from services.upload_svc.settings import Settings

log = logging.getLogger("vtc.upload")


async def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    running = await create_server(settings)
    log.info("upload service listening", extra={"fields": {"address": f"{settings.grpc_host}:{running.port}"}})
    try:
        await wait_for_signal()
    finally:
        log.info("upload service shutting down")
        await running.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    asyncio.run(main())

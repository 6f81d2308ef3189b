"""`python -m services.process_svc`: the process service on its own."""

from __future__ import annotations

import asyncio
import logging

from services.process_svc.server import create_server
from services.process_svc.settings import Settings
from services.shared.logs import configure_logging
from services.shared.server import wait_for_signal

log = logging.getLogger("vtc.process")


async def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    running = await create_server(settings)
    log.info("process service listening on %s:%d", settings.grpc_host, running.port)
    try:
        await wait_for_signal()
    finally:
        log.info("process service shutting down")
        await running.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    asyncio.run(main())

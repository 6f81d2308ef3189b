"""`python -m services.process_svc`: the process service on its own."""

import asyncio

from services.process_svc.server import create_server
from services.process_svc.settings import Settings
from services.shared.server import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone("process", Settings(), create_server))

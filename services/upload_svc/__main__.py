"""`python -m services.upload_svc`: the upload service on its own."""

import asyncio

from services.shared.server import run_standalone
from services.upload_svc.server import create_server
from services.upload_svc.settings import Settings

if __name__ == "__main__":
    asyncio.run(run_standalone("upload", Settings(), create_server))

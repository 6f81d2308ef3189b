"""`python -m services.metadata_svc`: the metadata service on its own."""

import asyncio

from services.metadata_svc.server import create_server
from services.metadata_svc.settings import Settings
from services.shared.server import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone("metadata", Settings(), create_server))

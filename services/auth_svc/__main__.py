"""`python -m services.auth_svc`: the auth service on its own."""

import asyncio

from services.auth_svc.server import create_server
from services.auth_svc.settings import Settings
from services.shared.server import run_standalone

if __name__ == "__main__":
    asyncio.run(run_standalone("auth", Settings(), create_server))

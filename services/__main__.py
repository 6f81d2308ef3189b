"""`python -m services` (what `make run` starts): the all-in-one process."""

from __future__ import annotations

import asyncio
import sys

from services.all_in_one import AllInOneSettings, start_all_in_one
from services.shared.logs import configure_logging
from services.shared.server import wait_for_signal
from services.shared.tracing import configure_tracing, shutdown_tracing


async def main() -> None:
    settings = AllInOneSettings()
    configure_logging(settings.log_level)
    configure_tracing("vtc")
    vtc = await start_all_in_one(settings)
    lines = [
        "vtc is running (Ctrl-C to stop)",
        f"  gRPC      {vtc.grpc_address}",
        f"  REST      http://{settings.rest_host}:{vtc.rest_port}   (Envoy log: {vtc.gateway.log_path})"
        if vtc.gateway else "  REST      off",
        f"  admin key {vtc.admin_key_file.resolve()}   (then: vtc login)",
        f"  operator  {vtc.operator_key_file.resolve()}   (tenants and their keys: docs/auth.md)",
        f"  metrics   {vtc.metrics.url}   (Prometheus; traces: docs/observability.md)"
        if vtc.metrics else "  metrics   off",
        f"  data      {settings.data_dir.resolve()}",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    try:
        await wait_for_signal()
    finally:
        print("vtc: shutting down", file=sys.stderr, flush=True)
        await vtc.stop()
        shutdown_tracing()


if __name__ == "__main__":
    asyncio.run(main())

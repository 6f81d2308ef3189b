"""`python -m services.mesh` (what `make run-mesh` starts): the mesh until Ctrl-C."""

from __future__ import annotations

import asyncio
import sys

from services.mesh.launcher import MeshError, start_mesh
from services.mesh.settings import MeshSettings
from services.shared.logs import configure_logging
from services.shared.server import wait_for_signal


async def main() -> int:
    settings = MeshSettings()
    configure_logging(settings.log_level)
    print("vtc mesh: starting auth, metadata, process workers, upload, Envoy and Traefik ...", file=sys.stderr,
          flush=True)
    try:
        mesh = await start_mesh(settings)
    except MeshError as error:
        print(f"vtc mesh: {error}", file=sys.stderr)
        return 1
    plan = mesh.plan
    lines = [
        "vtc mesh is running (Ctrl-C to stop)",
        f"  gRPC      {mesh.grpc_address}   (Traefik)",
        f"  REST      {mesh.rest_url}   (Traefik -> Envoy)",
        f"  admin key {mesh.admin_key_file.resolve()}   (then: vtc login)",
        f"  services  auth {plan.auth.address}; metadata {', '.join(p.address for p in plan.metadata)}; "
        f"process {', '.join(p.address for p in plan.process)}; upload {plan.upload.address}",
        f"  bus       {settings.mesh_bus_url.split('@')[-1]}   database {plan.auth.env['VTC_AUTH_DATABASE_URL']}",
        *(f"  {'metrics' if i == 0 else '':9} {p.name:10} {p.metrics_url}" for i, p in enumerate(plan.services)),
        f"  logs      {mesh.log_dir}",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    try:
        await wait_for_signal()
    finally:
        print("vtc mesh: shutting down", file=sys.stderr, flush=True)
        await mesh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

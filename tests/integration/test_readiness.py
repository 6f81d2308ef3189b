"""Readiness follows the database: the metadata service alone reports
NOT_SERVING once its PostgreSQL database cannot be reached, and says why."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from services.metadata_svc.server import create_server
from services.metadata_svc.settings import Settings
from tests.databases import POSTGRES_URL, private_postgres_database
from tests.integration.test_metadata_standalone import auth_addr  # noqa: F401  the JWKS-only auth fixture
from tests.tokens import TestKeys

pytestmark = pytest.mark.postgres


async def health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="vtc.v1.MetadataService"), timeout=5)
    return reply.status


async def test_metadata_is_not_serving_while_its_database_is_gone(
        tmp_path: Path, auth_addr: tuple[str, TestKeys]) -> None:  # noqa: F811
    address, _ = auth_addr
    async with private_postgres_database("vtc_readiness") as database_url:
        settings = Settings(data_dir=tmp_path, grpc_port=0, auth_addr=address, bus_url="memory://",
                            metadata_database_url=database_url, readiness_interval_seconds=0.2)
        running = await create_server(settings)
        try:
            assert await health(running.port) == health_pb2.HealthCheckResponse.SERVING
            base = make_url(POSTGRES_URL)
            admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                          password=base.password, database=base.database)
            try:
                await admin.execute(f'DROP DATABASE "{make_url(database_url).database}" WITH (FORCE)')
            finally:
                await admin.close()
            deadline = time.monotonic() + 10
            while await health(running.port) != health_pb2.HealthCheckResponse.NOT_SERVING:
                assert time.monotonic() < deadline, "still SERVING with its database gone"
                await asyncio.sleep(0.1)
            assert "database" in running.readiness.problems
        finally:
            await running.stop(0)

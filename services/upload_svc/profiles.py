"""The transcode profiles the process service offers, asked for over gRPC and
reused for a short while, so an upload naming an unknown profile is turned
away before its bytes are sent rather than failing later in a worker."""

from __future__ import annotations

import asyncio
import time

import grpc

from services.shared.errors import InvalidArgument
from services.shared.tokens import ServiceToken
from services.upload_svc.peers import peer_failure, service_credentials
from vtc.v1 import process_pb2, process_pb2_grpc


class ProfileCatalogue:
    def __init__(self, process: process_pb2_grpc.ProcessServiceStub, service_token: ServiceToken,
                 cache_seconds: float) -> None:
        self._process = process
        self._service_token = service_token
        self._cache_seconds = cache_seconds
        self._names: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def names(self) -> frozenset[str]:
        async with self._lock:
            if time.monotonic() - self._fetched_at >= self._cache_seconds:
                self._names = await self._fetch()
                self._fetched_at = time.monotonic()
            return self._names

    async def require(self, name: str) -> None:
        available = await self.names()
        if name not in available:
            listed = ", ".join(sorted(available)) or "none"
            raise InvalidArgument(f"unknown profile {name!r}; available profiles: {listed}")

    async def _fetch(self) -> frozenset[str]:
        credentials = await service_credentials(self._service_token)
        try:
            reply = await self._process.ListProfiles(process_pb2.ListProfilesRequest(), metadata=credentials,
                                                     timeout=10)
        except grpc.aio.AioRpcError as error:
            raise peer_failure("process", "check the profile", error) from error
        return frozenset(p.name for p in reply.profiles)

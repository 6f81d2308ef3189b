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
        self._output_types: dict[str, frozenset[str]] = {}  # profile name -> the types of its outputs
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def names(self) -> frozenset[str]:
        return frozenset(await self._profiles())

    async def output_types(self, name: str) -> frozenset[str]:
        """What a job on the profile makes ("video", "audio", "adaptive", ...); empty for an unknown name."""
        return (await self._profiles()).get(name, frozenset())

    async def _profiles(self) -> dict[str, frozenset[str]]:
        async with self._lock:
            if time.monotonic() - self._fetched_at >= self._cache_seconds:
                self._output_types = await self._fetch()
                self._fetched_at = time.monotonic()
            return self._output_types

    async def require(self, name: str) -> None:
        available = await self.names()
        if name not in available:
            listed = ", ".join(sorted(available)) or "none"
            raise InvalidArgument(f"unknown profile {name!r}; available profiles: {listed}")

    async def _fetch(self) -> dict[str, frozenset[str]]:
        credentials = await service_credentials(self._service_token)
        try:
            reply = await self._process.ListProfiles(process_pb2.ListProfilesRequest(), metadata=credentials,
                                                     timeout=10)
        except grpc.aio.AioRpcError as error:
            raise peer_failure("process", "check the profile", error) from error
        return {p.name: frozenset(o.type for o in p.outputs) for p in reply.profiles}

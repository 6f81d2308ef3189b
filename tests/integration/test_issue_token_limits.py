"""IssueToken is rate-limited per API key and per peer address, on a real auth
service on port 0: over a limit the answer is RESOURCE_EXHAUSTED with when to
retry (in the message and as a RetryInfo detail), and another key or another
address is not held back. The second address is real: a relay whose
connections to the service leave from 127.0.0.2."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.test_auth_service import Auth, rpc_error, start_auth
from vtc.v1 import auth_pb2, auth_pb2_grpc

KEY_BURST, PEER_BURST = 3, 8
PER_MINUTE = 6.0  # one more every 10 s


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Auth]:
    service = await start_auth(tmp_path / "data", "", auth_issue_token_per_key_per_minute=PER_MINUTE,
                               auth_issue_token_key_burst=KEY_BURST,
                               auth_issue_token_per_peer_per_minute=PER_MINUTE,
                               auth_issue_token_peer_burst=PEER_BURST)
    try:
        yield service
    finally:
        await service.stop()


@contextlib.asynccontextmanager
async def relay_from(source_host: str, target_port: int) -> AsyncIterator[int]:
    """A TCP relay on 127.0.0.1 whose connections to the target leave from `source_host`."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", target_port, local_addr=(source_host, 0))
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def retry_delay_seconds(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)
    assert status is not None, "no status details"
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    raise AssertionError("no RetryInfo detail")


async def test_one_key_gets_its_burst_then_waits_while_another_key_is_unaffected(auth: Auth) -> None:
    _, busy = await auth.tenant_with_key("Busy Co")  # the admin key got a token here (1 of the address's 8)
    _, quiet = await auth.tenant_with_key("Quiet Co")  # and here (2 of 8)

    for _ in range(KEY_BURST):
        await auth.token(busy.secret)
    refused = await rpc_error(auth.token(busy.secret))

    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert re.match(r"too many tokens requested for this API key; retry in (9|10) s", refused.details())
    assert 8.0 < retry_delay_seconds(refused) <= 10.0
    assert (await auth.token(quiet.secret)).access_token, "another key of the same caller still gets tokens"


async def test_one_address_gets_its_burst_then_waits_while_another_address_is_unaffected(auth: Auth) -> None:
    _, key = await auth.tenant_with_key("Shared Key Co")  # 1 attempt from 127.0.0.1 so far (the admin's)
    for _ in range(PEER_BURST - 1):  # wrong keys count against the address too
        error = await rpc_error(auth.token(f"vtc_key_{'0' * 20}_{'0' * 64}"))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    refused = await rpc_error(auth.token(key.secret))
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert re.fullmatch(r"too many token requests from this address; retry in (9|10) s", refused.details())
    assert 8.0 < retry_delay_seconds(refused) <= 10.0

    async with relay_from("127.0.0.2", auth.running.port) as port, \
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
            auth_pb2.IssueTokenRequest(api_key=key.secret), timeout=10)
    assert reply.access_token, "a caller at another address is not held back"


async def test_failed_guesses_at_a_key_id_do_not_lock_its_owner_out(auth: Auth) -> None:
    _, key = await auth.tenant_with_key("Targeted Co")
    wrong_secret = f"vtc_{key.key.key_id}_{'f' * 64}"
    async with relay_from("127.0.0.3", auth.running.port) as port, \
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        attacker = auth_pb2_grpc.AuthServiceStub(channel)
        for _ in range(PEER_BURST):
            with pytest.raises(grpc.aio.AioRpcError):
                await attacker.IssueToken(auth_pb2.IssueTokenRequest(api_key=wrong_secret), timeout=10)
        locked = await rpc_error(attacker.IssueToken(auth_pb2.IssueTokenRequest(api_key=wrong_secret), timeout=10))
        assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "the guesser is held back"

    assert (await auth.token(key.secret)).access_token, "the key's owner is not"

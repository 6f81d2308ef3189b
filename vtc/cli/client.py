"""The connection to a vtc server: the channel, the stubs, and the bearer token
each call carries, renewed from the saved API key shortly before it expires."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from types import TracebackType

import grpc

from vtc.cli.credentials import Credentials, CredentialStore
from vtc.v1 import auth_pb2, auth_pb2_grpc, metadata_pb2_grpc, process_pb2_grpc, upload_pb2_grpc

DEFAULT_ADDR = "127.0.0.1:50051"
UNARY_TIMEOUT_SECONDS = 30.0
# Renew a little early so a token does not expire between the check and the server's.
RENEW_MARGIN = timedelta(seconds=30)
_MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # same as the servers: 1 MiB chunks plus envelope


def resolve_addr(flag: str | None, saved: str | None = None) -> str:
    """--addr, else VTC_ADDR, else the address saved at login, else the default."""
    return flag or os.environ.get("VTC_ADDR") or saved or DEFAULT_ADDR


def addr_in_use(flag: str | None, store: CredentialStore | None = None) -> str:
    """The address a command talks to, for messages; never fails."""
    try:
        saved = (store or CredentialStore()).load().addr
    except Exception:
        saved = None
    return resolve_addr(flag, saved)


def open_channel(addr: str) -> grpc.Channel:
    return grpc.insecure_channel(addr, options=[
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ])


def issue_token(channel: grpc.Channel, api_key: str) -> auth_pb2.IssueTokenResponse:
    return auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
        auth_pb2.IssueTokenRequest(api_key=api_key), timeout=UNARY_TIMEOUT_SECONDS)


def token_expiry(reply: auth_pb2.IssueTokenResponse, now: datetime | None = None) -> datetime:
    if reply.HasField("expires_at"):
        return reply.expires_at.ToDatetime(tzinfo=UTC)
    return (now or datetime.now(UTC)) + timedelta(seconds=reply.expires_in)


class Session:
    """One command's connection. Use as a context manager; take `metadata()` per call."""

    def __init__(self, store: CredentialStore, credentials: Credentials, addr: str) -> None:
        self.store = store
        self.credentials = credentials
        self.addr = addr
        self.channel = open_channel(addr)
        self.videos = metadata_pb2_grpc.MetadataServiceStub(self.channel)
        self.uploads = upload_pb2_grpc.UploadServiceStub(self.channel)
        self.profiles = process_pb2_grpc.ProcessServiceStub(self.channel)

    @classmethod
    def open(cls, addr_flag: str | None, store: CredentialStore | None = None) -> Session:
        store = store or CredentialStore()
        credentials = store.load()
        return cls(store, credentials, resolve_addr(addr_flag, credentials.addr))

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.credentials.expires_within(RENEW_MARGIN):
            self.renew()
        return (("authorization", f"Bearer {self.credentials.access_token}"),)

    def renew(self) -> None:
        reply = issue_token(self.channel, self.credentials.api_key)
        self.credentials = self.credentials.with_token(reply.access_token, token_expiry(reply))
        self.store.save(self.credentials)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

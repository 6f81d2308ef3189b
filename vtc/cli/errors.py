"""Failures the user sees, each as one line on stderr (never a traceback)."""

from __future__ import annotations

import grpc

from vtc.cli.output import printable


class CliError(Exception):
    """A failure with a message meant for the user as it stands."""


class NotLoggedIn(CliError):
    def __init__(self) -> None:
        super().__init__("not logged in: run `vtc login`")


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))


def describe(error: BaseException, *, addr: str | None = None) -> str:
    """The message after `vtc: error: ` for any failure a command can meet."""
    if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        code = error.code()
        name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
        details = _one_line(error.details() or "")
        if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details.lower():
            # gRPC's own text names the address tried but does not say what to do.
            where = f" at {addr}" if addr else ""
            details = f"cannot reach the vtc server{where} (is `make run` running?): {details}"
        return f"{name}: {details}" if details else name
    if isinstance(error, CliError):
        return _one_line(str(error))
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return _one_line(f"{error.strerror}{where}")
    return _one_line(f"{type(error).__name__}: {error}")


def error_line(error: BaseException, *, addr: str | None = None) -> str:
    return f"vtc: error: {describe(error, addr=addr)}"

"""The JSON log formatter never prints a credential, whatever message or
traceback carries one: JWTs, API key secrets, bearer header values."""

from __future__ import annotations

import json
import logging
import sys

from services.shared.logs import JsonFormatter

TOKEN = ("eyJhbGciOiJFZERTQSIsImtpZCI6ImFiYyJ9.eyJzdWIiOiJrZXlfMDEyMyIsInRlbmFudCI6InRlbl9hIn0."
         "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl")
API_KEY = "vtc_key_0123456789abcdef0123_" + "ab" * 32


def formatted(message: str, *args: object, with_traceback_of: str = "") -> dict:
    exc_info = None
    if with_traceback_of:
        try:
            raise ValueError(with_traceback_of)
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("vtc.test", logging.ERROR, __file__, 1, message, args, exc_info)
    record.fields = {"header": f"Bearer {TOKEN}"}
    return json.loads(JsonFormatter().format(record))


def test_tokens_and_key_secrets_are_replaced_everywhere_in_a_line() -> None:
    line = formatted("call with %s failed for %s", TOKEN, API_KEY, with_traceback_of=f"bad key {API_KEY} / {TOKEN}")

    text = json.dumps(line)
    assert TOKEN not in text and TOKEN.split(".")[1] not in text
    assert "ab" * 32 not in text
    assert line["msg"] == "call with [token] failed for vtc_key_0123456789abcdef0123_[secret]"
    assert line["header"] == "Bearer [token]"
    assert "ValueError: bad key vtc_key_0123456789abcdef0123_[secret] / [token]" in line["exc"]


def test_ordinary_lines_are_left_alone() -> None:
    message = "missing bearer token: run `vtc login` or send 'authorization: Bearer <token>'; vid_0123 key_0123"

    assert formatted(message)["msg"] == message

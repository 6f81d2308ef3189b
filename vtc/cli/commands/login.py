"""`vtc login`: exchange an API key for a token and save both."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vtc.cli.client import addr_in_use, issue_token, open_channel, token_expiry
from vtc.cli.credentials import Credentials, CredentialStore
from vtc.cli.errors import CliError
from vtc.cli.output import Output


def default_key_file() -> Path:
    """Where `make run` writes the bootstrap admin key: <VTC_DATA_DIR or ./var>/keys/admin.key."""
    return Path(os.environ.get("VTC_DATA_DIR") or "var") / "keys" / "admin.key"


def resolve_api_key(key: str | None, key_file: Path | None) -> str:
    """--key, else --key-file, else VTC_API_KEY, else the bootstrap admin key file."""
    if key:
        return key.strip()
    if key_file is None:
        if os.environ.get("VTC_API_KEY"):
            return os.environ["VTC_API_KEY"].strip()
        key_file = default_key_file()
        if not key_file.is_file():
            raise CliError(f"no API key: pass --key or --key-file, set VTC_API_KEY, "
                           f"or run `make run` here (it writes {key_file})")
    try:
        secret = key_file.read_text().strip()
    except OSError as error:
        raise CliError(f"cannot read the key file {key_file}: {error.strerror}") from None
    if not secret:
        raise CliError(f"the key file {key_file} is empty")
    return secret


def run_login(args: argparse.Namespace, out: Output) -> int:
    api_key = resolve_api_key(args.key, args.key_file)
    store = CredentialStore()
    addr = addr_in_use(args.addr, store)  # logging in again keeps to the server saved last time
    with open_channel(addr) as channel:
        reply = issue_token(channel, api_key)
    credentials = Credentials(addr=addr, api_key=api_key, access_token=reply.access_token,
                              expires_at=token_expiry(reply), tenant_id=reply.tenant_id, scopes=tuple(reply.scopes))
    store.save(credentials)
    if out.json_mode:
        out.json({"addr": addr, "tenant_id": reply.tenant_id, "scopes": list(reply.scopes),
                  "expires_at": credentials.expires_at.isoformat(), "credentials_file": str(store.path)})
    else:
        out.say(f"logged in to {addr} as tenant {reply.tenant_id} (scopes: {' '.join(reply.scopes) or '-'}); "
                f"credentials in {store.path}")
    return 0

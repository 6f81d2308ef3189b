"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import json
import stat

import pytest

from tests.cli_runner import Cli
from tests.stack import Stack


@pytest.fixture(scope="module")
def cli(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Logged in the way the README says: `vtc login` finds the admin key the server wrote."""
    cli = Cli(config_dir=tmp_path_factory.mktemp("vtc-config"), addr=stack.grpc_address)
    done = cli.run("login", "--addr", stack.grpc_address, "--json", env={"VTC_DATA_DIR": str(stack.data_dir)})
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["addr"] == stack.grpc_address and reply["tenant_id"]
    assert stat.S_IMODE(cli.credentials_file.stat().st_mode) == 0o600
    return cli

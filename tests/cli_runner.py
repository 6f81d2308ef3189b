"""The `vtc` console script run as a user runs it: a subprocess of the installed
script, with its own config folder and none of the developer's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VTC = Path(sys.executable).with_name("vtc")
# Environment the CLI reads; cleared so the developer's own settings cannot leak in.
_CLI_ENV = ("VTC_ADDR", "VTC_API_KEY", "VTC_CONFIG_DIR", "VTC_DATA_DIR", "VTC_DEBUG", "XDG_CONFIG_HOME")


@dataclass
class Cli:
    config_dir: Path
    addr: str

    def run(self, *args: str, timeout: float = 60, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k not in _CLI_ENV}
        return subprocess.run([str(VTC), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**base, "VTC_CONFIG_DIR": str(self.config_dir), **(env or {})})

    def json(self, *args: str, timeout: float = 60) -> dict:
        done = self.run(*args, "--json", timeout=timeout)
        assert done.returncode == 0, f"vtc {' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout)

    @property
    def credentials_file(self) -> Path:
        return self.config_dir / "credentials.json"


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]

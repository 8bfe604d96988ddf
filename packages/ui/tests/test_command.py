"""`relctl ui` as a user starts it: its help ends with an example, and what keeps it from serving (a port
in use, no run database) is one line on stderr and exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

RELCTL = str(Path(sys.executable).with_name("relctl"))


def relctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RELCTL, *args], env={**os.environ, **env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)


def test_help_ends_with_an_example(tmp_path: Path) -> None:
    done = relctl("ui", "--help", env={"RELCTL_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().splitlines()[-2:] == ["  Example:", "    relctl ui --port 8765      # then open http://127.0.0.1:8765/"]
    assert "--host" in done.stdout and "[default: 127.0.0.1]" in done.stdout


def test_a_port_in_use_is_one_line_and_exit_status_2(seeded: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = relctl("ui", "--port", str(port), env={"RELCTL_HOME": str(seeded.settings.home)})
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: --port: port {port} on 127.0.0.1 is in use (another relctl ui?); pick another with --port"
    assert done.stdout == ""


def test_no_run_database_is_bad_input(tmp_path: Path) -> None:
    done = relctl("ui", env={"RELCTL_HOME": str(tmp_path / "empty")})
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: RELCTL_DATABASE_URL: no run database at {tmp_path / 'empty' / 'relctl.db'}: run an experiment first (relctl run ...)"
    assert not (tmp_path / "empty").exists()  # nothing was created

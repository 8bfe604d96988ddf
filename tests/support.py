"""Helpers for cross-package tests: run the real `relctl` command and real worker processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

RELCTL = str(Path(sys.executable).with_name("relctl"))


class Workers:
    """Real `relctl worker` processes, stopped (whole process group) at the end of the test."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, queues: str, *extra: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{queues.replace(',', '_')}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [RELCTL, "worker", "--queues", queues, "--loglevel", "INFO", *extra],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        self._wait_ready(proc, Path(log.name))
        return proc

    @staticmethod
    def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
        """Return once the worker consumes; fail at once if it exits instead."""
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with status {proc.returncode}:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("worker-*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def relctl(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `relctl` command as a user would."""
    return subprocess.run(
        [RELCTL, *args], env={**os.environ, **(env or {}), "COLUMNS": "200"}, cwd=cwd, capture_output=True, text=True, timeout=None
    )


def relctl_json(*args: str, env: dict[str, str] | None = None) -> object:
    done = relctl(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def experiment_rows(home: Path) -> int:
    database = home / "relctl.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        return sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in ("experiments", "runs", "stages") if t in tables)


def database_rows(database_url: str) -> int:
    """Rows of experiments, runs and stages in a PostgreSQL run database (0 where the tables are not there yet)."""
    import psycopg

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        tables = {row[0] for row in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
        return sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in ("experiments", "runs", "stages") if t in tables)

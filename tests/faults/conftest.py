"""Fixtures of the fault suite: a Redis and a PostgreSQL of the test's own, which it may kill and restart
without disturbing the machine's servers, real workers, and the checks every fault ends with."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Workers

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
# Short intervals, so that the test sees in seconds what takes minutes in production. The visibility
# timeout stays at its default (48 h): recovery must not depend on Redis redelivering anything.
FAST = {"RELCTL_HEARTBEAT_SECONDS": "1", "RELCTL_SWEEP_SECONDS": "1", "RELCTL_REQUEUE_SECONDS": "3"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition, what: str, *, timeout: float = 600.0, workers: Workers | None = None):
    """Poll until ``condition()`` is truthy. Bounded: a fault that is not healed fails the test instead
    of hanging it; a worker that died meanwhile fails it at once."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if workers is not None:
            dead = [p.args for p in workers.procs if p.poll() is not None]
            assert not dead, f"worker died while waiting for {what}: {dead}\n{workers.logs()}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}" + (f"\n{workers.logs()}" if workers else "")
        time.sleep(0.3)
    return value


class RedisServer:
    """A redis-server of the test's own; without persistence a restart loses every message, with it
    (append-only file, as infra/compose.yaml runs Redis) the queues come back."""

    def __init__(self, folder: Path, *, persistent: bool = False) -> None:
        self.folder = folder
        self.persistent = persistent
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes" if self.persistent else "no",
             "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
            except Exception:  # noqa: BLE001
                return False

        wait_until(up, "the test's Redis to start", timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # no chance to save anything beyond the append-only file, as in a crash
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class PostgresServer:
    """A PostgreSQL cluster of the test's own, in a temporary folder, run as the postgres user."""

    def __init__(self) -> None:
        assert PG_BIN is not None
        self.folder = Path(tempfile.mkdtemp(prefix="relctl-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _as_postgres(self, *command: str | Path) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *map(str, command)], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(PG_BIN / "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def own_redis(request: pytest.FixtureRequest, tmp_path: Path, skip_or_fail) -> Iterator[RedisServer]:
    """The test's own Redis; indirect parametrisation with True makes it persistent."""
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed")
    server = RedisServer(tmp_path, persistent=bool(getattr(request, "param", False)))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres(skip_or_fail) -> Iterator[PostgresServer]:
    if PG_BIN is None or shutil.which("runuser") is None:
        skip_or_fail("PostgreSQL's server binaries are not installed")
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def fault_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_redis: RedisServer, postgres_server: str) -> Iterator[dict[str, str]]:
    """The test's own Redis (which it may restart) and a fresh database on the machine's PostgreSQL."""
    from tests.conftest import fresh_database, relctl_env_for, reset_caches

    for key in ("RELCTL_VISIBILITY_TIMEOUT", "RELCTL_MAX_ATTEMPTS"):
        monkeypatch.delenv(key, raising=False)
    with fresh_database(postgres_server, "relctl_fault") as database:
        env = relctl_env_for(tmp_path, database, f"{own_redis.url}/0", **FAST)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_caches()
        yield env
        reset_caches()

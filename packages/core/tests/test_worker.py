"""The in-process workers of `relctl run`: real Celery workers on the filesystem broker, in threads."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import kombu.transport.filesystem as filesystem
import pytest
from kombu.transport.virtual import BrokerState

from relctl_core.worker import EmbeddedWorkerStopped, check_workers, embedded_workers

GROUPS = [(["cpu", "translate"], 1), (["train.cpu"], 1)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty embedded setup: the filesystem broker in tmp_path.

    kombu keeps the filesystem broker's bindings for the whole process, not per folder, and skips a
    bind it has seen: a new folder needs a new state, or its exchange tables stay unwritten."""
    monkeypatch.setattr(filesystem.Transport, "global_state", BrokerState())
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RELCTL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_workers_come_up_even_when_a_bind_reads_a_table_still_being_created(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kombu creates a missing exchange table by opening it for writing, and only then locks and fills
    # it. Hold the creator of the mailbox table (the one both workers bind to) in that gap until some
    # other bind has the table locked: that bind reads an empty file, and its worker used to die
    # while starting, with nothing said, leaving its queues to wait forever.
    other_bind_locked = threading.Event()
    real_lock = filesystem.lock

    def lock(file: Any, flags: int) -> None:
        if Path(file.name).name == "celery.pidbox.exchange":
            if file.mode == "wb":
                other_bind_locked.wait(timeout=30)
            elif file.mode == "rb+":
                real_lock(file, flags)
                other_bind_locked.set()
                return
        real_lock(file, flags)

    monkeypatch.setattr(filesystem, "lock", lock)
    with embedded_workers(GROUPS) as workers:
        assert [w.consuming.is_set() for w in workers] == [True, True]
        check_workers(workers)
        mailboxes = json.loads((home / "broker" / "control" / "celery.pidbox.exchange").read_text())
        assert len(mailboxes) == 2


def test_a_worker_that_cannot_start_is_an_error_naming_its_queues(home: Path) -> None:
    control = home / "broker" / "control"
    control.mkdir(parents=True)
    (control / "celery.pidbox.exchange").write_text("not a table")  # every worker's mailbox bind fails on it
    with pytest.raises(EmbeddedWorkerStopped, match=r"worker for queues cpu, translate stopped while starting \(JSONDecodeError"):
        with embedded_workers(GROUPS):
            pass


def test_a_worker_that_stops_is_noticed(home: Path) -> None:
    with embedded_workers(GROUPS) as workers:
        check_workers(workers)
        workers[1].stop(in_sighandler=False)
        workers[1].ended.wait()
        with pytest.raises(EmbeddedWorkerStopped, match="worker for queues train.cpu stopped"):
            check_workers(workers)

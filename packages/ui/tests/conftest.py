"""A run database seeded the way relctl fills it, and the web app over it (FastAPI's TestClient)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from relctl_core.migrate import upgrade
from relctl_core.settings import Settings, load_settings
from relctl_core.testing import write_scored_experiment

SPEC = """\
name: {name}
task: qc
data: {{qc: {{train: qc.jsonl}}, qi: {{train: qi.jsonl}}}}
split: {{folds: 3, train_folds: [0, 1]}}
sweep: {{task: [qc, qi], model.lora.r: [4, 8]}}
"""
HOSTILE = "<script>alert(1)</script>"


def reset_caches() -> None:
    from relctl_core import celery_app, db

    celery_app.reset_app()
    db.get_engine.cache_clear()
    db._sessionmaker.cache_clear()


@dataclass
class Seeded:
    settings: Settings
    url: str  # the writers' URL (the app opens its own, read-only)
    database: Path
    finished: int  # a finished experiment
    hostile: int  # a finished experiment whose name is markup
    running: int  # an experiment with a training running
    training_stage: int  # that training


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    """An embedded home with three scored experiments (4 models and their baselines each); the third
    still running a training that reported its progress, and logged a few lines."""
    from relctl_core.db import Event, Experiment, Stage, session_scope
    from sqlalchemy import select

    home = tmp_path / "home"
    monkeypatch.setenv("RELCTL_HOME", str(home))
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    reset_caches()
    url = f"sqlite:///{home / 'relctl.db'}"
    upgrade(url)
    finished = write_scored_experiment(url, tmp_path / "first", SPEC.format(name="first"), seed=0)
    hostile = write_scored_experiment(url, tmp_path / "second", SPEC.format(name="second"), seed=1)
    running = write_scored_experiment(url, tmp_path / "third", SPEC.format(name="third"), seed=2, unfinished=["r=8,task=qi"])
    now = dt.datetime.now(dt.UTC)
    with session_scope(url) as session:
        experiment = session.get(Experiment, hostile)
        assert experiment is not None
        experiment.name = HOSTILE  # names are checked by the spec; a database may hold anything
        stage = session.scalars(select(Stage).where(Stage.experiment_id == running, Stage.kind == "train").order_by(Stage.id)).first()
        assert stage is not None
        stage.status, stage.label = "running", f"train {HOSTILE}"
        stage.started_at, stage.heartbeat_at = now - dt.timedelta(seconds=60), now
        stage.progress = {"event": "step", "epoch": 1, "step": 30, "total_steps": 100, "loss": 0.4321}
        stage.worker_host = "gpu-1"
        training_stage = stage.id
        for message, level in (("started on cpu: 100 steps", "info"), ("epoch 1 step 30/100 loss 0.4321", "info"), (f"odd {HOSTILE}", "warning")):
            session.add(Event(experiment_id=running, stage_id=stage.id, level=level, message=message, ts=now))
    yield Seeded(load_settings(), url, home / "relctl.db", finished, hostile, running, training_stage)
    reset_caches()


@pytest.fixture
def client(seeded: Seeded) -> TestClient:
    from relctl_ui.app import create_app

    # A page waits for its part as long as the part's (stubbed, instant) build takes: the tests that
    # ask what a page shows get the part; test_a_part_not_built_in_time_is_said_to_be_building sets a
    # short wait instead.
    return TestClient(create_app(seeded.settings, resamples=200, answer_within=600), raise_server_exceptions=False)


# --- the tables of a page as data ------------------------------------------------------------------


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[str] = field(default_factory=list)
    cell_attrs: list[dict[str, str]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[Row]] = {}
        self.heads: dict[str, list[str]] = {}
        self._table: str | None = None
        self._row: Row | None = None
        self._in_head = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = found.get("id", f"table-{len(self.tables)}")
            self.tables[self._table], self.heads[self._table] = [], []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._table is not None and not self._in_head:
            self._row = Row(found)
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th"):
            self._cell = []
            if self._row is not None and tag == "td":
                self._row.cell_attrs.append(found)
        elif tag == "a" and self._row is not None and "href" in found:
            self._row.links.append(found["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            text = " ".join("".join(self._cell).split())
            if self._in_head:
                self.heads[self._table].append(text)
            elif self._row is not None:
                self._row.cells.append(text)
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables_of(html: str) -> dict[str, list[Row]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


@pytest.fixture
def tables_of() -> Callable[[str], dict[str, list[Row]]]:
    """A page's tables by id: each body row's attributes, cell texts, cell attributes and links."""
    return _tables_of

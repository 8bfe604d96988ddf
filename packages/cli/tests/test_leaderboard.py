"""`relctl leaderboard` and `relctl list` as a user sees them: the limit said out loud, bad --task and
--metric values as exit status 2 naming the valid ones, an outdated run database refused until upgraded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from relctl_core.migrate import upgrade
from relctl_core.testing import write_scored_experiment

from relctl_cli.main import cli

SPEC = """\
name: {name}
task: qc
data: {{qc: {{train: qc.jsonl}}, qi: {{train: qi.jsonl}}}}
split: {{folds: 3, train_folds: [0, 1]}}
sweep: {{task: [qc, qi], model.lora.r: [4, 8]}}
"""


def _reset_caches() -> None:
    from relctl_core import celery_app, db

    celery_app.reset_app()
    db.get_engine.cache_clear()
    db._sessionmaker.cache_clear()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An embedded relctl home whose run database holds two scored experiments (4 models, 4 baselines each)."""
    monkeypatch.setenv("RELCTL_HOME", str(tmp_path / "home"))
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    _reset_caches()
    url = f"sqlite:///{tmp_path / 'home' / 'relctl.db'}"
    upgrade(url)
    for seed, name in enumerate(("first", "second")):
        write_scored_experiment(url, tmp_path / name, SPEC.format(name=name), seed=seed)
    yield tmp_path / "home"
    _reset_caches()


def relctl(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


def test_a_cut_board_says_so_and_its_json_keeps_its_shape(home: Path) -> None:
    full = relctl("leaderboard", "--json")
    assert full.exit_code == 0, full.output
    board = json.loads(full.stdout)
    assert set(board) == {"metric", "rows", "f1avg"} and len(board["rows"]) == 16 and len(board["f1avg"]) == 8
    assert "showing" not in full.stderr  # nothing was cut
    assert all(0.0 < row["threshold"] < 1.0 for row in board["rows"])  # what `relctl predict` applies

    cut = relctl("leaderboard", "--limit", "3", "--json")
    assert cut.exit_code == 0, cut.output
    top = json.loads(cut.stdout)
    assert top["rows"] == [r for r in board["rows"] if r["task"] == "QC"][:3] + [r for r in board["rows"] if r["task"] == "QI"][:3]
    assert top["f1avg"] == board["f1avg"][:3]
    assert "showing 6 runs, the top 3 of each task; --limit to see more" in cut.stderr  # counted for people only
    assert "showing the top 3 F1avg pairs; --limit to see more" in cut.stderr  # not counted under --json

    shown = relctl("leaderboard", "--limit", "3")
    assert shown.exit_code == 0, shown.output
    assert "showing 6 of 16 runs, the top 3 of each task; --limit to see more" in shown.stdout
    assert "showing 3 of 8 F1avg pairs" in shown.stdout

    languages = relctl("leaderboard", "--by", "language", "--limit", "2")
    assert languages.exit_code == 0, languages.output
    # Not counted across every experiment (ten times the rows): the note says what was cut without a total.
    assert "showing 12 rows, the top 2 of each task and language; --limit to see more" in languages.stdout
    one = relctl("leaderboard", "--by", "language", "--limit", "2", "--experiment", "1")
    assert one.exit_code == 0, one.output
    assert "showing 12 of 24 rows, the top 2 of each task and language; --limit to see more" in one.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "both"], "--task: unknown task 'both'; valid: qc, qi"),
        (["--metric", "auc"], "--metric: unknown metric 'auc'; valid: f1@0.5, precision@0.5, recall@0.5, f1@oof, precision@oof"),
        (["--metric", "translation.chrf"], "--metric: unknown metric 'translation.chrf'"),
        (["--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_bad_task_metric_or_limit_is_bad_input(home: Path, args: list[str], message: str) -> None:
    result = relctl("leaderboard", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_list_shows_the_newest_experiments_with_their_run_counts(home: Path) -> None:
    listed = relctl("list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(e["id"], e["name"], e["runs"]) for e in json.loads(listed.stdout)] == [(2, "second", 8), (1, "first", 8)]
    newest = relctl("list", "--limit", "1")
    assert newest.exit_code == 0, newest.output
    assert "second" in newest.stdout and "first" not in newest.stdout
    assert "showing the newest 1 of 2 experiments; --limit to see more" in newest.stdout


def test_an_outdated_run_database_is_refused_until_upgraded(home: Path) -> None:
    from alembic import command
    from relctl_core.migrate import alembic_config

    url = f"sqlite:///{home / 'relctl.db'}"
    command.downgrade(alembic_config(url), "0001")
    refused = relctl("leaderboard")
    assert refused.exit_code == 1
    assert "at schema 0001" in refused.output and "run `relctl db upgrade`" in refused.output
    upgraded = relctl("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert relctl("leaderboard").exit_code == 0


def test_each_row_shows_the_interval_of_its_mean(home: Path) -> None:
    board = json.loads(relctl("leaderboard", "--json").stdout)
    for row in board["rows"]:
        assert row["low"] < row["mean"] < row["high"], row
    shown = relctl("leaderboard", "--limit", "1", "--task", "qc")
    assert shown.exit_code == 0, shown.output
    best = next(r for r in board["rows"] if r["task"] == "QC")
    assert "mean [95 % interval]" in shown.stdout
    assert f"{best['mean']:.4f} [{best['low']:.4f}, {best['high']:.4f}]" in shown.stdout
    # A metric the evaluator bounds no interval for shows its mean alone.
    plain = relctl("leaderboard", "--metric", "precision@0.5", "--limit", "1")
    assert plain.exit_code == 0, plain.output
    assert "[95 % interval]" not in plain.stdout and "mean" in plain.stdout


def test_one_experiments_sweep_is_a_table_of_the_metric_against_each_value(home: Path) -> None:
    one = json.loads(relctl("leaderboard", "--experiment", "1", "--json").stdout)
    models = {r["run_id"]: r for r in one["rows"] if r["kind"] == "model"}
    # The fixture sweeps the task and the LoRA rank: the table runs by task, then by rank as a number.
    assert [(r["task"], r["r"]) for r in one["sweep"]] == [("QC", "4"), ("QC", "8"), ("QI", "4"), ("QI", "8")]
    for entry in one["sweep"]:
        row = models[entry["run_id"]]
        assert (entry["mean"], entry["low"], entry["high"]) == (row["mean"], row["low"], row["high"])
        assert f"r={entry['r']}" in row["run"].split(",")
    shown = relctl("leaderboard", "--experiment", "1")
    assert "sweep: f1@oof against r" in shown.stdout
    assert "sweep" not in json.loads(relctl("leaderboard", "--json").stdout)  # the board of every experiment has none


def test_show_carries_each_runs_threshold(home: Path) -> None:
    from relctl_core.db import Metric, session_scope
    from sqlalchemy import select

    shown = relctl("show", "1", "--json")
    assert shown.exit_code == 0, shown.output
    runs = json.loads(shown.stdout)["runs"]
    with session_scope(f"sqlite:///{home / 'relctl.db'}") as session:
        pooled = {
            (m.run_id, m.task): m.value
            for m in session.scalars(select(Metric).where(Metric.experiment_id == 1, Metric.name == "threshold@oof.pooled"))
        }
    assert len(pooled) == len(runs) == 8
    assert {(r["id"], task): value for r in runs for task, value in r["threshold"].items()} == pooled
    table = relctl("show", "1")
    assert "threshold" in table.stdout and f"{pooled[(runs[0]['id'], runs[0]['task'])]:.4f}" in table.stdout

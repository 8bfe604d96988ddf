"""The leaderboard ranks, filters, pairs and cuts in SQL exactly as a plain reading of every row would, on
SQLite and on PostgreSQL; unknown tasks and metrics are bad input that names the valid ones."""

from __future__ import annotations

import math
import os
import secrets
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from relctl_core.db import DONE, Experiment, Metric, Run, get_engine, session_scope
from relctl_core.errors import InputError
from relctl_core.leaderboard import KNOWN_METRICS, SHOWN, leaderboard, scored_metrics
from relctl_core.migrate import upgrade
from relctl_core.testing import write_ensemble, write_scored_experiment

SERVER = os.environ.get("RELCTL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")

BASE = """\
name: {name}
task: {task}
data: {{qc: {{train: qc.jsonl}}, qi: {{train: qi.jsonl}}}}
split: {{folds: 5, train_folds: [0, 1]}}
"""
# Several experiments as people run them: sweeps over the task and the LoRA rank, one model for both
# tasks beside the single-task runs (reading translated queries, so chrF shows), one task only, a run
# still going, a run with NaN AUCs in one language, one scored before pr_auc existed, an ensemble.
EXPERIMENTS: list[dict[str, Any]] = [
    {"spec": BASE.format(name="sweep", task="qc") + "sweep: {task: [qc, qi], model.lora.r: [4, 8]}\n", "seed": 1},
    {
        "spec": BASE.format(name="both", task="qc") + "translation: {enabled: true, mode: orig+en, backend: identity}\nsweep: {task: [qc, qi, both]}\n",
        "seed": 2,
        "left_out": {"task=qi": ["pr_auc"]},
    },
    {"spec": BASE.format(name="lora", task="qi") + "sweep: {model.lora.r: [2, 4, 8]}\n", "seed": 3, "unfinished": ["r=8"], "nan_auc": {"r=2": "fr"}, "languages": ("es", "fr")},
    {"spec": BASE.format(name="plain", task="qc"), "seed": 4},
    {"spec": BASE.format(name="again", task="qi") + "translation: {enabled: true, mode: en, backend: identity}\nsweep: {task: [qi, qc]}\n", "seed": 5},
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, skip_or_fail) -> Iterator[str]:
    """One database per backend, at the newest schema, holding EXPERIMENTS and an ensemble."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url, drop = f"sqlite:///{folder / 'runs.db'}", None
    else:
        import psycopg

        admin = SERVER.replace("+psycopg", "") + "/postgres"
        try:
            psycopg.connect(admin, connect_timeout=3).close()
        except Exception as exc:  # noqa: BLE001
            skip_or_fail(f"PostgreSQL not reachable: {exc}")
        name = f"relctl_leaderboard_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{SERVER}/{name}"

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    try:
        upgrade(url)
        for index, experiment in enumerate(EXPERIMENTS):
            options = {k: v for k, v in experiment.items() if k not in ("spec", "seed")}
            write_scored_experiment(url, folder / f"e{index}", experiment["spec"], seed=experiment["seed"], **options)
        with session_scope(url) as session:
            members = session.scalars(select(Run.id).where(Run.experiment_id == 1, Run.task == "QC", Run.kind == "model").order_by(Run.id)).all()
        write_ensemble(url, list(members), seed=6)
        yield url
    finally:
        get_engine(url).dispose()
        if drop is not None:
            drop()


def reference(
    session: Any, *, experiment_id: int | None = None, task: str | None = None, metric: str = "f1@oof", by_language: bool = False, limit: int | None = None
) -> tuple[list[dict[str, Any]], dict[tuple[str, str | None], int], list[dict[str, Any]], int]:
    """The board read the plain way: every CV row into Python, grouped, sorted, paired by the runs' sweep
    overrides, cut. (rows, rows per group, F1avg pairs, pairs before the cut)."""
    rows: dict[tuple[int, str, str | None], dict[str, Any]] = {}
    query = select(Metric, Run, Experiment.name).join(Run, Metric.run_id == Run.id).join(Experiment, Run.experiment_id == Experiment.id)
    for m, run, experiment_name in session.execute(query.where(Metric.fold.is_(None), Run.status == DONE).order_by(Metric.id)):
        if (m.language is not None) != by_language or (experiment_id is not None and run.experiment_id != experiment_id):
            continue
        if task is not None and m.task != task.upper():
            continue
        row = rows.setdefault(
            (run.id, m.task, m.language),
            {"experiment_id": run.experiment_id, "experiment": experiment_name, "run_id": run.id, "run": run.name, "kind": run.kind, "task": m.task, "language": m.language, "metric": metric},
        )
        if m.name == metric:
            row.update(mean=m.value, std=m.std, folds=m.n, low=m.low, high=m.high)
        if m.name in SHOWN:
            row[m.name] = m.value
        if m.name == "threshold@oof.pooled" and not by_language:
            row["threshold"] = m.value
        row["_reads"] = run.kind == "model" and run.config.get("mode", "orig") != "orig"
    chrf = {}
    for m in session.scalars(select(Metric).where(Metric.name == "translation.chrf", Metric.run_id.is_(None)).order_by(Metric.id)):
        chrf[(m.experiment_id, m.task.upper(), m.language)] = m.value
    ranked = [r for r in rows.values() if "mean" in r]
    for row in ranked:
        reads = row.pop("_reads")
        if by_language and reads and chrf.get((row["experiment_id"], row["task"], row["language"])) is not None:
            row["chrf"] = chrf[(row["experiment_id"], row["task"], row["language"])]
    ranked.sort(key=lambda r: (r["task"], r["language"] or "", r["mean"] is None, -(r["mean"] or 0.0), r["run_id"]))
    groups: dict[tuple[str, str | None], int] = defaultdict(int)
    shown = []
    for row in ranked:
        groups[(row["task"], row["language"])] += 1
        if limit is None or groups[(row["task"], row["language"])] <= limit:
            shown.append(row)

    pairs: list[dict[str, Any]] = []
    if metric.startswith("f1") and task is None and not by_language:
        by_pair: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
        names: dict[tuple[int, str], str] = {}
        for row in ranked:  # best first: a pair's first row is its QC row, which orders ties
            if row["mean"] is None:
                continue
            run = session.get(Run, row["run_id"])
            overrides = {k: v for k, v in (run.config.get("overrides") or {}).items() if k != "task"}
            both = f"both:{run.id}" if run.task == "BOTH" else ""
            key = (row["experiment_id"], run.kind + repr(sorted(overrides.items())) + (run.name if run.kind == "baseline" else "") + both)
            by_pair[key][row["task"]] = row["mean"]
            without_task = ",".join(part for part in run.name.split(",") if not part.startswith("task="))
            names[key] = run.name if both else (without_task or row["experiment"])
        complete = [(key, tasks) for key, tasks in by_pair.items() if {"QC", "QI"} <= tasks.keys()]
        pairs = sorted(
            ({"experiment_id": key[0], "run": names[key], "metric": metric, "f1avg": 0.5 * tasks["QC"] + 0.5 * tasks["QI"]} for key, tasks in complete),
            key=lambda r: -r["f1avg"],
        )
    return shown, dict(groups), pairs if limit is None else pairs[:limit], len(pairs)


CASES = [
    {},
    {"limit": 1},
    {"limit": 3},
    {"task": "qc"},
    {"task": "QI", "limit": 2},
    {"experiment_id": 2},
    {"experiment_id": 3, "limit": 1},
    {"metric": "f1@0.5"},
    {"metric": "roc_auc"},
    {"metric": "pr_auc", "limit": 4},
    {"metric": "recall@oof", "task": "qi"},
    {"by_language": True},
    {"by_language": True, "limit": 2},
    {"by_language": True, "metric": "roc_auc"},
    {"by_language": True, "experiment_id": 2, "task": "qc"},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_the_board_from_sql_is_the_board_from_every_row(seeded: str, case: dict[str, Any]) -> None:
    limit = case.get("limit")
    with session_scope(seeded) as session:
        board = leaderboard(session, **{**case, "limit": limit})
        rows, groups, pairs, total_pairs = reference(session, **case)
    assert board.rows == rows
    # The per-language board of every experiment is not counted (ten times the rows); the others are.
    assert board.ranked == (None if case.get("by_language") and "experiment_id" not in case else sum(groups.values()))
    assert board.cut == any(limit is not None and count > limit for count in groups.values())
    assert board.f1avg == pairs
    assert board.pairs == (total_pairs if board.ranked is not None else None if board.pairs_cut else len(pairs))
    assert board.pairs_cut == (limit is not None and total_pairs > limit)
    with session_scope(seeded) as session:
        uncounted = leaderboard(session, **{**case, "limit": limit}, count=False)
    assert (uncounted.rows, uncounted.cut, uncounted.f1avg, uncounted.pairs_cut) == (board.rows, board.cut, board.f1avg, board.pairs_cut)
    # Uncounted, the number of pairs is known only where the limit left none out.
    assert uncounted.pairs == (board.pairs if "experiment_id" in case or not board.pairs_cut else None)
    assert uncounted.ranked == (board.ranked if "experiment_id" in case else None)


def test_the_read_commands_driver_path_gives_the_same_boards_from_the_compiled_text(seeded: str, tmp_path: Path, monkeypatch) -> None:
    """`relctl leaderboard` runs the statements on psycopg or sqlite3 from text compiled once per shape.
    Every board of CASES is the SQLAlchemy path's; a second pass, in which nothing may compile, serves
    each from the kept text with its own values (other experiments, metrics, tasks, limits)."""
    from relctl_core.reads import DirectReads, read_scope
    from relctl_core.settings import load_settings

    settings = load_settings({"RELCTL_HOME": str(tmp_path), "RELCTL_DATABASE_URL": seeded})
    expected = []
    with session_scope(seeded) as session:
        for case in CASES:
            expected.append(leaderboard(session, **{**case, "limit": case.get("limit")}))
    for attempt in ("compiling", "compiled"):
        if attempt == "compiled":
            kept = list((tmp_path / "cache").glob("reads-*.json"))
            assert len(kept) == 1 and kept[0].name.startswith(f"reads-{seeded.split(':')[0].split('+')[0]}-")
            monkeypatch.setattr(DirectReads, "_compile", lambda self, build: pytest.fail("compiled again"))
        for case, board in zip(CASES, expected, strict=True):
            with read_scope(settings) as reads:
                assert isinstance(reads, DirectReads)
                assert leaderboard(reads, **{**case, "limit": case.get("limit")}) == board, case


def test_the_seeded_board_holds_what_the_comparison_must_cover(seeded: str) -> None:
    """Guards the test above against a seed that stops exercising what matters."""
    with session_scope(seeded) as session:
        board = leaderboard(session, limit=None)
        by_language = leaderboard(session, by_language=True, metric="roc_auc", limit=None)
    kinds = {row["kind"] for row in board.rows}
    assert kinds == {"model", "baseline", "ensemble"}
    assert {row["task"] for row in board.rows} == {"QC", "QI"}
    assert {"task=both"} <= {row["run"] for row in board.rows if row["task"] == "QC"} & {row["run"] for row in board.rows if row["task"] == "QI"}
    assert "r=8" not in {row["run"] for row in board.rows if row["experiment"] == "lora"}  # still running
    means = [row["mean"] for row in board.rows if row["run"] == "baseline:all-relevant" and row["task"] == "QC"]
    assert len(means) >= 3 and len(set(means)) == 1  # ties across experiments, ordered by run id
    assert any("pr_auc" not in row for row in board.rows) and all("roc_auc" in row for row in board.rows)
    assert any("chrf" in row for row in by_language.rows) and any(row["mean"] is None for row in by_language.rows)
    assert not any("chrf" in row for row in by_language.rows if row["kind"] != "model")
    runs = {a["run"] for a in board.f1avg}
    assert {"task=both", "r=4", "r=8", "baseline:all-relevant", "baseline:lexical", "again"} <= runs


def test_the_limit_keeps_the_top_rows_of_each_task_and_counts_the_rest(seeded: str) -> None:
    with session_scope(seeded) as session:
        everything = leaderboard(session, limit=None)
        top = leaderboard(session, limit=2)
    for task in ("QC", "QI"):
        ranked = [row for row in everything.rows if row["task"] == task]
        assert len(ranked) > 2 and [row for row in top.rows if row["task"] == task] == ranked[:2]
    assert (top.ranked, top.cut, len(top.rows)) == (len(everything.rows), True, 4)
    assert not everything.cut and everything.ranked == len(everything.rows)
    assert top.f1avg == everything.f1avg[:2] and top.pairs == len(everything.f1avg) > 2


def test_unknown_task_or_metric_is_bad_input_naming_the_valid_ones(seeded: str) -> None:
    with session_scope(seeded) as session:
        with pytest.raises(InputError) as task_error:
            leaderboard(session, task="both")
        with pytest.raises(InputError) as metric_error:
            leaderboard(session, metric="f1")
        scored = scored_metrics(session)
    assert task_error.value.path == "--task" and "'both'" in str(task_error.value) and "qc, qi" in str(task_error.value)
    assert metric_error.value.path == "--metric" and "'f1'" in str(metric_error.value)
    # The metrics runs were scored on, as the evaluator orders them; chrF is a stage's, not a run's.
    assert scored == list(KNOWN_METRICS)
    assert ", ".join(scored) in str(metric_error.value)


def test_a_database_without_scores_accepts_the_metrics_relctl_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    with session_scope(url) as session:
        board = leaderboard(session, metric="roc_auc")
        assert (board.rows, board.f1avg, board.ranked, board.cut, board.pairs) == ([], [], 0, False, 0)
        with pytest.raises(InputError, match="unknown metric 'auc'; valid: f1@0.5, precision@0.5"):
            leaderboard(session, metric="auc")
        with pytest.raises(InputError, match="must be at least 1"):
            leaderboard(session, limit=0)


def test_nan_means_rank_last(seeded: str) -> None:
    with session_scope(seeded) as session:
        board = leaderboard(session, by_language=True, metric="roc_auc", task="qi", limit=None)
    french = [row["mean"] for row in board.rows if row["language"] == "fr"]
    assert french[-1] is None and all(not math.isnan(m) for m in french[:-1])


def test_the_migration_pairs_the_runs_scored_before_it(seeded: str) -> None:
    """Migration 0005 fills the pairs of what was scored at 0004: the same pairs as written with the
    metrics. (On the module's database: it ends as it began, which the assert checks.)"""
    from alembic import command

    from relctl_core.migrate import alembic_config
    from relctl_core.pairs import pair_rows

    with get_engine(seeded).connect() as connection:
        written = {e: pair_rows(connection, e) for e in range(1, len(EXPERIMENTS) + 1)}
    assert written[1] and any(p["both"] for p in written[2]) and not written[3]  # one task: nothing to pair
    command.downgrade(alembic_config(seeded), "0004")
    upgrade(seeded)
    with get_engine(seeded).connect() as connection:
        assert {e: pair_rows(connection, e) for e in written} == written


def test_a_per_language_board_whose_groups_hold_only_unfinished_runs_is_empty(tmp_path: Path) -> None:
    """The groups are found along the index before unfinished runs are left out; a group of nothing
    else then reads no row, and no experiment's chrF is looked up."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    upgrade(url)
    spec = BASE.format(name="running", task="qc") + "baselines: false\ntranslation: {enabled: true, mode: orig+en, backend: identity}\n"
    write_scored_experiment(url, tmp_path / "e", spec, seed=9, unfinished=["running"])  # its one run, named after it
    with session_scope(url) as session:
        everything = leaderboard(session, by_language=True, limit=None)
        assert everything.rows == [] and not everything.cut

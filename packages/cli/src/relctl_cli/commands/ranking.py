"""`relctl leaderboard` and `relctl list`: reads of the run database.

These are the commands people and scripts call most, so they import neither the ORM nor the models,
and once their statements are compiled not even SQLAlchemy: relctl_core.reads runs them on the
database's own driver. On a small host that is most of their start.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
from relctl_core.leaderboard import DEFAULT_LIMIT, DEFAULT_METRIC
from relctl_core.reads import read_scope, scalar, statements
from relctl_core.settings import Settings, load_settings

from relctl_cli.render import console, emit_json, table, with_interval


def _when(value: Any) -> Any:
    """A time as SQLAlchemy would return it: SQLite's driver gives the text it stored."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


@click.command(name="list")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(min=1), help="How many experiments, newest first.")
@click.option("--json", "as_json", is_flag=True)
def list_experiments(limit: int, as_json: bool) -> None:
    """List recent experiments.

    \b
    Example:
      relctl list --limit 5
    """
    with read_scope(load_settings()) as reads:
        # Only the experiments shown, and their run counts, leave the database.
        found = reads.rows("recent_experiments", lambda: statements().recent_experiments(), {"limit": limit})
        rows = [
            {"id": e_id, "name": name, "status": status, "runs": count, "created": _when(created), "finished": _when(finished)}
            for e_id, name, status, count, created, finished in found
        ]
        total = scalar(reads, "experiment_count", lambda: statements().experiment_count(), {}) if len(rows) == limit else len(rows)
    note = f"showing the newest {len(rows):,} of {total:,} experiments; --limit to see more" if len(rows) < total else None
    if as_json:
        emit_json(rows)
        if note:
            print(note, file=sys.stderr)
        return
    console.print(table(None, ["id", "name", "status", "runs", "created", "finished"], [list(r.values()) for r in rows], states="status"))
    if note:
        console.print(f"[dim]{note}[/]", highlight=False)


@click.command(name="leaderboard")
@click.option("--experiment", "experiment_id", type=int, default=None, help="Only this experiment.")
@click.option("--task", default=None, metavar="qc|qi", help="Only this task.")
@click.option("--metric", default=DEFAULT_METRIC, show_default=True, help="Rank by: f1@oof, f1@0.5, roc_auc, pr_auc, precision@0.5, ...")
@click.option("--by", "by", type=click.Choice(["language"]), default=None, help="One row per run and language.")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(min=1), help="Top runs shown per task (per task and language with --by language), and F1avg pairs.")
@click.option("--marks/--no-marks", default=True, show_default=True, help="With --experiment: mark the runs not told apart from the best, and each model against the better baseline (paired bootstrap over the runs' rows).")
@click.option("--json", "as_json", is_flag=True)
def leaderboard_command(experiment_id: int | None, task: str | None, metric: str, by: str | None, limit: int, marks: bool, as_json: bool) -> None:
    """Rank finished runs by the cross-validation mean of a metric, baselines beside the models.

    F1@oof is scored at a threshold cross-fitted within each fold (tuned on the other half of the
    fold's out-of-fold predictions), never on the rows it scores. With --by language, a chrF column
    shows the experiment's translator on the reference set in that language, where it was measured.

    \b
    Examples:
      relctl leaderboard --task qc --metric roc_auc
      relctl leaderboard --experiment 12 --by language --json
    """
    print_leaderboard(load_settings(), experiment_id=experiment_id, task=task, metric=metric, by_language=by == "language", as_json=as_json, limit=limit, marks=marks)


def print_leaderboard(
    settings: Settings,
    *,
    experiment_id: int | None,
    task: str | None,
    metric: str,
    by_language: bool,
    as_json: bool,
    limit: int = DEFAULT_LIMIT,
    marks: bool = True,
) -> None:
    from relctl_core.leaderboard import leaderboard, sweep_table

    with read_scope(settings) as reads:
        # The count of rows ranked is for the note people read; a script reading --json only wants the rows.
        board = leaderboard(reads, experiment_id=experiment_id, task=task, metric=metric, by_language=by_language, limit=limit, count=not as_json)
    rows, averages = board.rows, board.f1avg
    rows_note = pairs_note = None
    if board.cut:
        each = "each task and language" if by_language else "each task"
        what = "rows" if by_language else "runs"
        of = f" of {board.ranked:,}" if board.ranked is not None else ""
        rows_note = f"showing {len(rows):,}{of} {what}, the top {limit} of {each}; --limit to see more"
    if board.pairs_cut:
        shown = f"{len(averages):,} of {board.pairs:,}" if board.pairs is not None else f"the top {len(averages):,}"
        pairs_note = f"showing {shown} F1avg pairs; --limit to see more"
    # One experiment's sweep, as the ranking metric against each swept value.
    sweep = sweep_table(rows) if experiment_id is not None and not by_language else []
    judged = judged_marks(settings, experiment_id, task, metric) if marks and experiment_id is not None and not by_language else None
    if judged is not None:
        for row in rows:
            row["marks"] = judged.get((row["run_id"], row["task"]))
    if as_json:
        emit_json({"metric": metric, "rows": rows, "f1avg": averages, **({"sweep": sweep} if experiment_id is not None else {})})
        for note in (rows_note, pairs_note):
            if note:
                print(note, file=sys.stderr)  # not through rich: --json output imports none of it
        return
    intervals = any(r.get("low") is not None for r in rows)
    columns = ["experiment", "run", "task"] + (["language"] if by_language else []) + ["mean [95 % interval]" if intervals else "mean", "std", "folds"]
    extra = [m for m in ("f1@0.5", "f1@oof", "roc_auc", "pr_auc") if m != metric]
    extra += ["chrf"] if by_language and any("chrf" in r for r in rows) else []
    judged_columns = ["vs best", "vs the better baseline"] if judged else []
    body = []
    for r in rows:
        name = f"[dim]{r['run']}[/]" if r["kind"] == "baseline" else r["run"]
        body.append(
            [f"{r['experiment_id']} {r['experiment']}", name, r["task"]] + ([r["language"]] if by_language else [])
            + [with_interval(r.get("mean"), r.get("low"), r.get("high")), r.get("std"), r.get("folds")] + [r.get(m) for m in extra]
            + (mark_cells(r.get("marks")) if judged else [])
        )  # fmt: skip
    console.print(table(f"leaderboard: {metric} (CV mean over folds)", columns + extra + judged_columns, body))
    if judged:
        console.print("[dim]vs best, vs the better baseline: the paired 95 % interval of the difference, resampled by query; ≈ best: it holds 0[/]", highlight=False)
    if rows_note:
        console.print(f"[dim]{rows_note}[/]", highlight=False)
    if averages:
        console.print(table(f"F1avg = 0.5 {metric}(QC) + 0.5 {metric}(QI)", ["experiment", "run", "F1avg"], [[a["experiment_id"], a["run"], a["f1avg"]] for a in averages]))
    if pairs_note:
        console.print(f"[dim]{pairs_note}[/]", highlight=False)
    if sweep:
        keys = [key for key in sweep[0] if key not in ("task", "run_id", "run", "mean", "low", "high")]
        console.print(
            table(
                f"sweep: {metric} against {', '.join(keys)}",
                ["task", *keys, "mean [95 % interval]" if intervals else "mean"],
                [[r["task"], *(r[key] for key in keys), with_interval(r["mean"], r["low"], r["high"])] for r in sweep],
            )
        )


def judged_marks(settings: Settings, experiment_id: int, task: str | None, metric: str) -> dict[tuple[int, str], dict[str, Any]] | None:
    """(run, task) -> how the run stands within its experiment: told apart from the best run, and a
    model from the better baseline. The judging is the evaluator's (its ``relctl.judges`` entry point:
    the CLI imports no other service); None where none is installed or it cannot judge ``metric``."""
    from importlib.metadata import entry_points

    from relctl_core.errors import RelctlError

    judges = entry_points(group="relctl.judges", name="board")
    if not judges:
        return None
    try:
        return next(iter(judges)).load()(settings, experiment_id, task, metric)
    except (RelctlError, OSError, KeyError, ValueError) as exc:
        # A run whose rows cannot be read: the board stands without its marks, and says why on stderr
        # (the JSON on stdout keeps its shape).
        why = str(exc) if isinstance(exc, RelctlError) else f"a run's out-of-fold rows could not be read ({type(exc).__name__}: {exc})"
        print(f"leaderboard: runs not judged against each other: {why}", file=sys.stderr)
        return None


def _difference_text(difference: dict[str, Any] | None) -> str:
    if not difference or not difference.get("comparable") or difference.get("low") is None:
        return "-"
    return f"{difference['difference']:+.4f} [{difference['low']:+.4f}, {difference['high']:+.4f}]"


def mark_cells(marks: dict[str, Any] | None) -> list[str]:
    """The two judged cells of a row: against the best run, and (a model) against the better baseline."""
    if marks is None:
        return ["-", "-"]
    if marks["best"]:
        best = "best"
    else:
        best = ("≈ best " if marks["tied_with_best"] else "") + _difference_text(marks["vs_best"])
    vs_baseline = marks["vs_baseline"]
    if vs_baseline is None:
        baseline = marks["note"] or "-"
    else:
        name = (vs_baseline.get("baseline") or "").replace("-", " ")
        verdict = "beats" if marks["beats_baseline"] else "not told apart from" if vs_baseline.get("verdict") != "B better" else "below"
        baseline = f"{verdict} {name}: {_difference_text(vs_baseline)}"
    return [best, baseline]

"""A judged leaderboard: each run's score with its 95 % interval, and whether it is told apart from the
best run of its task and, for a model, from the better of the two baselines.

Runs are judged against others scored on the same out-of-fold rows only (the same task and split):
the comparisons are paired, each resample scoring both runs on the same resampled queries. The board
is plain dicts, so that the leaderboard command, the HTML report and a web page can all show it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from relctl_core.db import DONE, Experiment, Run
from relctl_core.errors import InputError
from relctl_core.settings import Settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from relctl_evaluator.compare import RunRows, paired_rows, read_run_rows, scored_tasks
from relctl_evaluator.stats import DEFAULT_RESAMPLES, RESAMPLED, ScoredRows, compare, interval

BASELINES = ("all-relevant", "lexical")  # the baselines every model must beat (relctl_core.stages)
Progress = Callable[[str], None]


class StderrProgress:
    """Progress lines on stderr, once the work has taken long enough for anyone to wonder."""

    def __init__(self, label: str, after_seconds: float = 1.5, every_seconds: float = 1.0) -> None:
        self.label = label
        self.started = time.monotonic()
        self.after_seconds, self.every_seconds = after_seconds, every_seconds
        self.said = -math.inf

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now - self.started >= self.after_seconds and now - self.said >= self.every_seconds:
            self.said = now
            print(f"{self.label}: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Contender:
    """A run's out-of-fold rows of one task, with what the board needs to know about the run."""

    rows: RunRows
    kind: str  # model, baseline or ensemble
    baseline: str | None = None  # all-relevant or lexical, for a baseline
    mode: str | None = None  # the translation-augmentation mode of a model


def _scored(rows: RunRows) -> ScoredRows:
    return ScoredRows.of(rows.labels, rows.folds, rows.queries, rows.languages)


def finite(value: float) -> float | None:
    """A score as JSON can hold it: None where undefined."""
    return value if math.isfinite(value) else None


def _difference(a: Contender, b: Contender, metric: str, resamples: int, seed: int) -> dict[str, Any]:
    """A minus B, paired, with its interval; or why the two cannot be compared."""
    try:
        scored, prob_a, prob_b = paired_rows(a.rows, b.rows)
    except InputError as exc:
        return {"run_id": b.rows.run_id, "run": b.rows.name, "comparable": False, "why": exc.message}
    found = compare(metric, scored, prob_a, prob_b, resamples=resamples, permutations=0, seed=seed)
    return {
        "run_id": b.rows.run_id,
        "run": b.rows.name,
        "comparable": True,
        "difference": finite(found.difference),
        "low": finite(found.low),
        "high": finite(found.high),
        "verdict": found.verdict,
    }


def _contains_zero(difference: dict[str, Any]) -> bool:
    """Whether the interval of a difference holds 0 (an undefined interval tells nothing either way)."""
    low, high = difference.get("low"), difference.get("high")
    return low is not None and high is not None and low <= 0.0 <= high


def _baseline_note(against: dict[str, Any] | None, baseline: Contender | None) -> str:
    if baseline is None or against is None:
        return "no baseline was scored on these folds"
    name = baseline.baseline.replace("-", " ") if baseline.baseline else baseline.rows.name
    if not against["comparable"]:
        return f"cannot be compared with the better baseline ({name}): {against['why']}"
    spread = _spread(against)
    if against["verdict"] == "A better":
        return f"beats the better baseline ({name}): {spread}"
    if against["verdict"] == "B better":
        return f"has not beaten the better baseline ({name}): it is worse, {spread}"
    return f"has not beaten the better baseline ({name}): no detectable difference, {spread}"


def _spread(difference: dict[str, Any]) -> str:
    def signed(value: float | None) -> str:
        return "nan" if value is None else f"{value:+.3f}"

    return f"difference {signed(difference.get('difference'))} [{signed(difference.get('low'))}, {signed(difference.get('high'))}]"


def _rank_key(value: float, run_id: int) -> tuple[bool, float, int]:
    """Best first, undefined scores last, ties by run id."""
    return (not math.isfinite(value), -value if math.isfinite(value) else 0.0, run_id)


def judge(
    contenders: Sequence[Contender], metric: str, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """The judged board of ``contenders``: one dict per run and task, best first within each task and
    split (runs split differently are judged apart, as ``group`` says).

    Each row: the run, its ``value`` of ``metric`` (the CV mean over folds, as the leaderboard ranks)
    with ``low``/``high`` of its 95 % interval (query-grouped bootstrap), ``best`` for the best run
    of its group, ``vs_best`` (the run minus the best, paired) and ``tied_with_best`` (that
    interval holds 0, or the run is the best); for a model or ensemble, ``vs_baseline`` (the run
    minus the better of the two baselines) and ``beats_baseline`` (True where that interval lies
    above 0, None without a baseline), and ``note``, saying in words how it stands."""
    if metric not in RESAMPLED:
        raise InputError(f"cannot judge runs on {metric!r}; valid: {', '.join(RESAMPLED)}", path="--metric")
    groups: dict[tuple[str, tuple[str | None, ...]], list[Contender]] = {}
    for contender in contenders:
        groups.setdefault((contender.rows.task, contender.rows.split), []).append(contender)
    board: list[dict[str, Any]] = []
    split_number: dict[str, int] = {}
    for (task, _), members in sorted(groups.items(), key=lambda item: (item[0][0], min(c.rows.run_id for c in item[1]))):
        group = split_number[task] = split_number.get(task, -1) + 1
        scores: dict[int, Any] = {}
        for contender in members:
            if progress is not None:
                progress(f"{task} {metric}: interval of run {contender.rows.run_id} ({contender.rows.name})")
            scores[contender.rows.run_id] = interval(metric, _scored(contender.rows), np.array(contender.rows.probs), resamples=resamples, seed=seed)
        ranked = sorted(members, key=lambda c, found=scores: _rank_key(found[c.rows.run_id].value, c.rows.run_id))
        best = ranked[0] if math.isfinite(scores[ranked[0].rows.run_id].value) else None
        baselines = [c for c in ranked if c.kind == "baseline" and c.baseline in BASELINES]
        better_baseline = baselines[0] if baselines else None
        for position, contender in enumerate(ranked, start=1):
            score = scores[contender.rows.run_id]
            row: dict[str, Any] = {
                "run_id": contender.rows.run_id,
                "run": contender.rows.name,
                "kind": contender.kind,
                "baseline": contender.baseline,
                "mode": contender.mode,
                "task": task,
                "group": group,
                "metric": metric,
                "value": finite(score.value),
                "low": finite(score.low),
                "high": finite(score.high),
                "resamples": resamples,
                "rows": len(contender.rows.labels),
                "queries": len(set(zip(contender.rows.folds, contender.rows.queries, strict=True))),
                "folds": sorted(set(contender.rows.folds)),
                "rank": position,
                "best": best is not None and contender is best,
                "best_run_id": None if best is None else best.rows.run_id,
                "vs_best": None,
                "tied_with_best": best is not None and contender is best,
                "vs_baseline": None,
                "beats_baseline": None,
                "note": "",
            }
            if best is not None and contender is not best:
                if progress is not None:
                    progress(f"{task} {metric}: run {contender.rows.run_id} against the best, run {best.rows.run_id}")
                row["vs_best"] = _difference(contender, best, metric, resamples, seed)
                row["tied_with_best"] = row["vs_best"]["comparable"] and _contains_zero(row["vs_best"])
            if contender.kind != "baseline":
                against = None
                if better_baseline is not None:
                    if progress is not None:
                        progress(f"{task} {metric}: run {contender.rows.run_id} against the better baseline")
                    against = _difference(contender, better_baseline, metric, resamples, seed)
                    row["vs_baseline"] = {**against, "baseline": better_baseline.baseline}
                    row["beats_baseline"] = bool(against["comparable"] and against["verdict"] == "A better")
                row["note"] = _baseline_note(against, better_baseline)
            board.append(row)
    return board


def contenders_of(
    session: Session, settings: Settings, experiment_id: int, task: str | None = None, *, on_unreadable: Progress | None = None
) -> list[Contender]:
    """The finished runs of an experiment, each with its out-of-fold rows of each task it was scored on
    (of ``task`` only, where given). A run whose rows cannot be read is bad input, or, given
    ``on_unreadable``, left out and said there."""
    if session.get(Experiment, experiment_id) is None:
        raise InputError(f"no experiment {experiment_id} (see `relctl list`)")
    code = None if task is None else task.upper()
    if code is not None and code not in ("QC", "QI"):
        raise InputError(f"unknown task {task!r}; valid: qc, qi", path="--task")
    runs = session.scalars(select(Run).where(Run.experiment_id == experiment_id, Run.status == DONE).order_by(Run.id)).all()
    found = []
    for run in runs:
        for scored in sorted(scored_tasks(session, run.id)):
            if code is not None and scored != code:
                continue
            try:
                rows = read_run_rows(session, settings, run.id, scored)
            except (InputError, OSError) as exc:
                if on_unreadable is None:
                    raise
                on_unreadable(f"run {run.id} ({run.name}): its {scored} out-of-fold rows cannot be read ({exc}); it is left out")
                continue
            found.append(
                Contender(
                    rows=rows,
                    kind=run.kind,
                    baseline=run.config.get("baseline") if run.kind == "baseline" else None,
                    mode=run.config.get("mode") if run.kind != "baseline" else None,
                )
            )
    return found


def judged_board(
    session: Session,
    settings: Settings,
    experiment_id: int,
    metric: str = "f1@oof",
    task: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """judge() the finished runs of one experiment (of one task, where given), read from the run
    database and their out-of-fold artifacts."""
    if metric not in RESAMPLED:
        raise InputError(f"cannot judge runs on {metric!r}; valid: {', '.join(RESAMPLED)}", path="--metric")
    return judge(contenders_of(session, settings, experiment_id, task), metric, resamples=resamples, seed=seed, progress=progress)


def board_marks(settings: Settings, experiment_id: int, task: str | None, metric: str) -> dict[tuple[int, str], dict[str, Any]] | None:
    """The marks of one experiment's leaderboard (entry point ``relctl.judges: board``, which `relctl
    leaderboard --experiment` loads): (run id, task) -> best, tied_with_best, vs_best, beats_baseline,
    vs_baseline and note of its judged row; None for a metric that is not resampled."""
    from relctl_core.db import session_scope

    if metric not in RESAMPLED:
        return None
    with session_scope(settings.database_url) as session:
        board = judged_board(session, settings, experiment_id, metric, task, progress=StderrProgress("leaderboard"))
    keys = ("best", "tied_with_best", "vs_best", "beats_baseline", "vs_baseline", "note")
    return {(row["run_id"], row["task"]): {key: row[key] for key in keys} for row in board}

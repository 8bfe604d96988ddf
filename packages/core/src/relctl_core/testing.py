"""Run databases filled the way relctl fills them, for tests of what reads them (the leaderboard, `list`).

A real experiment file is planned as `relctl submit` plans it (sweep, run names, run configs, stage
graph), then every evaluate stage records what the evaluator writes, per trained fold and as CV
aggregates, overall and per language, and every translate stage its chrF per language, through the
same code path a finished stage takes. Only the numbers are made up: seeded, with the ties, NaNs and
gaps that real boards have.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from relctl_core.db import DONE, RUNNING, Experiment, Run, Stage, session_scope
from relctl_core.leaderboard import KNOWN_METRICS

POOLED = "threshold@oof.pooled"  # tuned once per scored task, on all its rows
FOLD_METRICS = tuple(name for name in KNOWN_METRICS if name != POOLED)  # per fold and group
INTERVALS = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")  # what the evaluator bounds with an interval
# "All relevant" scores the same on every experiment of the same data: boards are full of its ties.
ALL_RELEVANT = {"f1@0.5": 0.81, "f1@oof": 0.81, "precision@0.5": 0.68, "recall@0.5": 1.0, "roc_auc": 0.5, "pr_auc": 0.68}


def write_scored_experiment(
    url: str,
    directory: Path,
    spec_text: str,
    *,
    seed: int,
    languages: tuple[str, ...] = ("es", "fr", "ja"),
    unfinished: Collection[str] = (),
    nan_auc: Mapping[str, str] = {},  # noqa: B006 - read only
    left_out: Mapping[str, Collection[str]] = {},  # noqa: B006 - read only
) -> int:
    """Plan ``spec_text`` (its data files are written empty into ``directory``) into the database at
    ``url`` and score every run; returns the experiment id.

    ``unfinished`` runs (by name) stay running; ``nan_auc`` maps a run name to a language whose AUCs are
    undefined on every fold (one class only), so their CV means are NaN; ``left_out`` maps a run name to
    metrics it has none of (a run scored before they existed)."""
    from relctl_core.pipeline import _finish, json_safe, write_experiment
    from relctl_core.spec import expand_runs, load_spec, resolved_dict
    from relctl_core.stages import plan_experiment

    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("qc.jsonl", "qi.jsonl"):
        (directory / name).write_text("")
        files[str(directory / name)] = {"path": str(directory / name), "sha256": name}
    spec_file = directory / "experiment.yaml"
    spec_file.write_text(spec_text)
    loaded = load_spec(spec_file)
    plan = plan_experiment(expand_runs(loaded), files)
    rng = random.Random(seed)
    with session_scope(url) as session:
        experiment_id = write_experiment(
            session, name=loaded.spec.name, spec_path=str(spec_file), spec_text=loaded.text, spec=resolved_dict(loaded.spec), plan=plan
        )
        runs = {run.id: run for run in session.scalars(select(Run).where(Run.experiment_id == experiment_id))}
        for stage in session.scalars(select(Stage).where(Stage.experiment_id == experiment_id).order_by(Stage.id)):
            run = runs.get(stage.run_id) if stage.run_id is not None else None
            if stage.kind == "evaluate" and run is not None:
                records = _evaluation(rng, run, stage.config["folds"], languages, nan_auc.get(run.name), set(left_out.get(run.name, ())))
                _finish(session, stage, json_safe({"metrics": records}), cache_key=f"test-{stage.id}", cached_from=None)
            elif stage.kind == "translate":
                chrf = [{"name": "translation.chrf", "language": lang, "value": round(rng.uniform(20, 60), 2), "n": 24} for lang in ("de", *languages)]
                _finish(session, stage, json_safe({"metrics": chrf}), cache_key=f"test-{stage.id}", cached_from=None)
            else:
                stage.status = DONE
        for run in runs.values():
            run.status = RUNNING if run.name in unfinished else DONE
        experiment = session.get(Experiment, experiment_id)
        assert experiment is not None
        experiment.status = RUNNING if unfinished else DONE
    return experiment_id


def write_ensemble(url: str, members: list[int], *, seed: int, languages: tuple[str, ...] = ("es", "fr", "ja")) -> int:
    """An ensemble of finished runs as `relctl ensemble` records it (an experiment of its own, one run of
    kind ensemble), scored like any run; returns the experiment id."""
    from relctl_core.pipeline import _finish, json_safe

    with session_scope(url) as session:
        first = session.get(Run, members[0])
        assert first is not None
        name = "ensemble:" + "+".join(map(str, members))
        config = {"task": first.task, "folds": [0, 1], "combine": "mean", "members": [{"run": m} for m in members]}
        experiment = Experiment(name=name, status=DONE, spec_path="", spec_text="", spec={"ensemble": config})
        session.add(experiment)
        session.flush()
        run = Run(experiment_id=experiment.id, name=name, kind="ensemble", task=first.task, config=config, status=DONE)
        session.add(run)
        session.flush()
        stage = Stage(
            experiment_id=experiment.id, run_id=run.id, kind="evaluate", key=f"evaluate:ensemble-{experiment.id}", label=f"evaluate {name}",
            task_name="relctl.evaluator.evaluate", queue="cpu", config=config, depends_on=[],
        )  # fmt: skip
        session.add(stage)
        session.flush()
        _finish(session, stage, json_safe({"metrics": _evaluation(random.Random(seed), run, [0, 1], languages, None, set())}), cache_key=f"test-{stage.id}", cached_from=None)
        return experiment.id


def _evaluation(
    rng: random.Random, run: Run, folds: list[int], languages: tuple[str, ...], nan_language: str | None, left_out: set[str]
) -> list[dict[str, Any]]:
    """What the evaluator records for one scored task of a run: each metric per fold and group, then the
    CV aggregates (mean over the folds where defined, sample std, folds averaged, and for the leaderboard's
    metrics an interval), then the pooled threshold."""
    level = rng.uniform(0.6, 0.9)
    per_fold: dict[tuple[str | None, str], list[float]] = {}
    records: list[dict[str, Any]] = []
    for fold in folds:
        for language in (None, *languages):
            for name in FOLD_METRICS:
                if name in left_out:
                    continue
                if run.name == "baseline:all-relevant" and name in ALL_RELEVANT:
                    value = ALL_RELEVANT[name]
                elif name in ("roc_auc", "pr_auc") and language is not None and language == nan_language:
                    value = float("nan")
                else:
                    value = round(level + rng.uniform(-0.05, 0.05), 4)
                records.append({"fold": fold, "language": language, "name": name, "value": value})
                per_fold.setdefault((language, name), []).append(value)
    for (language, name), values in per_fold.items():
        defined = [v for v in values if v == v]
        if not defined:
            records.append({"fold": None, "language": language, "name": name, "value": float("nan"), "std": float("nan"), "n": 0})
            continue
        mean = sum(defined) / len(defined)
        std = (sum((v - mean) ** 2 for v in defined) / (len(defined) - 1)) ** 0.5 if len(defined) > 1 else 0.0
        record = {"fold": None, "language": language, "name": name, "value": mean, "std": std, "n": len(defined)}
        if name in INTERVALS:  # the evaluator's query-grouped interval of the mean
            record.update(low=mean - rng.uniform(0.01, 0.05), high=mean + rng.uniform(0.01, 0.05))
        records.append(record)
    records.append({"fold": None, "language": None, "name": POOLED, "value": rng.uniform(0.3, 0.7), "std": None, "n": 100})
    return records

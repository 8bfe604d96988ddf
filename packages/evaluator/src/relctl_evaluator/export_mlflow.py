"""`relctl export mlflow`: finished experiments copied into an MLflow tracking store, run by run.

One MLflow experiment per relctl experiment (``relctl/<name>#<id>``), one MLflow run per relctl run,
found again by its ``relctl.run_id`` tag, so that exporting again updates the same runs. What is read
from the run database is planned first (``plan_experiment``, no MLflow needed); ``export_experiment``
then writes a plan through an ``MlflowClient``, logging only what the store does not hold yet.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import math
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
from relctl_core.db import ACTIVE, CANCELLED, DONE, FAILED, Experiment, Metric, Run, session_scope
from relctl_core.errors import InputError, RelctlError, first_line
from relctl_core.pipeline import json_safe
from relctl_core.settings import Settings, load_settings, redact_url
from sqlalchemy import select
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from mlflow.entities import Run as MlflowRun
    from mlflow.tracking import MlflowClient

# Tags that link an MLflow experiment or run back to the run database.
EXPERIMENT_ID_TAG = "relctl.experiment_id"
RUN_ID_TAG = "relctl.run_id"
# A param whose value differs from the one MLflow holds (params cannot change there): the new value.
CHANGED_PARAM_TAG = "relctl.changed_param."

# MLflow's run states for relctl's.
RUN_STATUS = {DONE: "FINISHED", FAILED: "FAILED", CANCELLED: "KILLED"}

# What MLflow allows in a metric or param name: letters, digits, _ - . / and space (a colon too, except
# on Windows, so it is not used). '@' reads as "at", anything else becomes '_'.
_NOT_IN_NAME = re.compile(r"[^\w.\- /]")
# Params and tags longer than MLflow keeps are cut, ending with this mark.
_CUT = "...(cut)"
# MLflow's limits on one log_batch call.
_METRICS_PER_BATCH, _PARAMS_OR_TAGS_PER_BATCH = 1000, 100

OOF_DIR = "oof_predictions"
SUMMARY_FILE = "relctl_summary.json"
REPORT_FILE = "report.html"
OOF_COLUMNS = ("fold", "id", "language", "query", "label", "prob")


def mlflow_name(text: str) -> str:
    """A relctl name as MLflow allows it: ``f1@oof`` -> ``f1_at_oof``, ``f1@0.5`` -> ``f1_at_0.5``."""
    return _NOT_IN_NAME.sub("_", text.replace("@", "_at_"))


def metric_key(task: str, name: str, language: str | None = None, *, std: bool = False, per_fold: bool = False) -> str:
    """The MLflow metric key of a relctl metric.

    ``QC/f1_at_oof`` is the CV mean, ``QC/f1_at_oof.std`` its standard deviation over the folds,
    ``QC/f1_at_oof.lang.de`` (``.lang.de.std``) the same for one language, and ``QC/f1_at_oof.fold``
    (``.lang.de.fold``) the value of each fold, logged at step = fold number."""
    key = f"{task}/{mlflow_name(name)}"
    if language is not None:
        key += f".lang.{mlflow_name(language)}"
    if std:
        key += ".std"
    if per_fold:
        key += ".fold"
    return key


def mlflow_experiment_name(experiment: Experiment) -> str:
    return f"relctl/{experiment.name}#{experiment.id}"


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - len(_CUT)] + _CUT


def param_value(value: Any) -> str:
    """A config value as an MLflow param: strings as they are, anything else as JSON (true, null, [..])."""
    return value if isinstance(value, str) else json.dumps(json_safe(value), sort_keys=True, ensure_ascii=False)


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A resolved run config as MLflow params with dotted keys (``model.lora.r``, ``train.lr``)."""
    params: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            params.update(flat_params(value, f"{name}."))
        else:
            params[mlflow_name(name)] = param_value(value)
    return params


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int


def metric_points(rows: Iterable[Metric]) -> list[MetricPoint]:
    """A run's metric rows as MLflow metric values (see ``metric_key``); undefined values (the AUC of a
    one-class fold, NULL in the run database) are left out."""
    points = []
    for row in rows:
        if row.value is None or not math.isfinite(row.value):
            continue
        if row.fold is None:
            points.append(MetricPoint(metric_key(row.task, row.name, row.language), row.value, 0))
            if row.std is not None and math.isfinite(row.std):
                points.append(MetricPoint(metric_key(row.task, row.name, row.language, std=True), row.std, 0))
        else:
            points.append(MetricPoint(metric_key(row.task, row.name, row.language, per_fold=True), row.value, row.fold))
    return points


@dataclass
class RunPlan:
    """What one relctl run becomes in MLflow."""

    run_id: int
    name: str
    status: str
    start_ms: int
    end_ms: int | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[MetricPoint]
    summary: dict[str, Any]
    oof: dict[str, list[dict[str, Any]]]  # the out-of-fold rows by task (a model for both tasks has two)


@dataclass
class ExperimentPlan:
    experiment_id: int
    name: str
    mlflow_name: str
    tags: dict[str, str]
    runs: list[RunPlan]


def _ms(moment: dt.datetime | None) -> int | None:
    """Milliseconds since the epoch, as MLflow keeps times. SQLite hands datetimes back without their
    zone; the run database stores UTC."""
    if moment is None:
        return None
    return int((moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)).timestamp() * 1000)


def finished_experiment(session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise InputError(f"no experiment {experiment_id} (see `relctl list`)")
    if experiment.status in ACTIVE:
        raise InputError(f"experiment {experiment_id} ({experiment.name}) is {experiment.status}: export it once it has finished (`relctl status {experiment_id}`)")
    return experiment


def out_of_fold_rows(session: Session, settings: Settings, run: Run) -> dict[str, list[dict[str, Any]]]:
    """A done run's out-of-fold rows by task, each with its fold and query, as its evaluate stage scored them."""
    from relctl_evaluator.compare import read_run_rows, scored_tasks

    if run.status != DONE:
        return {}
    found = {}
    for task in scored_tasks(session, run.id):
        rows = read_run_rows(session, settings, run.id, task)
        found[task] = [
            {"fold": fold, "id": row_id, "language": language, "query": query, "label": label, "prob": prob}
            for fold, row_id, language, query, label, prob in zip(rows.folds, rows.ids, rows.languages, rows.queries, rows.labels, rows.probs, strict=True)
        ]
    return found


def plan_run(session: Session, settings: Settings, experiment: Experiment, run: Run) -> RunPlan:
    rows = session.scalars(select(Metric).where(Metric.run_id == run.id).order_by(Metric.task, Metric.name, Metric.language, Metric.fold)).all()
    params = {**flat_params(run.config), "kind": run.kind, "task": run.task, "experiment_id": str(experiment.id)}
    tags = {
        EXPERIMENT_ID_TAG: str(experiment.id),
        "relctl.experiment": experiment.name,
        RUN_ID_TAG: str(run.id),
        "relctl.run": run.name,
        "relctl.kind": run.kind,
        "relctl.status": run.status,
    }
    points = metric_points(rows)
    summary = {
        "experiment": {"id": experiment.id, "name": experiment.name, "status": experiment.status, "spec_path": experiment.spec_path},
        "run": {
            "id": run.id, "name": run.name, "kind": run.kind, "task": run.task, "status": run.status,
            "created": run.created_at.isoformat(), "finished": run.finished_at.isoformat() if run.finished_at else None,
        },
        "config": run.config,
        "metrics": [
            {
                "task": row.task, "fold": row.fold, "language": row.language, "name": row.name, "value": row.value, "std": row.std, "n": row.n,
                "mlflow_key": None if row.value is None else metric_key(row.task, row.name, row.language, per_fold=row.fold is not None),
            }
            for row in rows
        ],
    }  # fmt: skip
    return RunPlan(
        run_id=run.id, name=run.name, status=RUN_STATUS.get(run.status, "KILLED"), start_ms=_ms(run.created_at) or 0,
        end_ms=_ms(run.finished_at), params=params, tags=tags, metrics=points, summary=json_safe(summary),
        oof=out_of_fold_rows(session, settings, run),
    )  # fmt: skip


def plan_experiment(settings: Settings, experiment_id: int) -> ExperimentPlan:
    """What a finished experiment becomes in MLflow, read from the run database."""
    with session_scope(settings.database_url) as session:
        experiment = finished_experiment(session, experiment_id)
        runs = session.scalars(select(Run).where(Run.experiment_id == experiment_id).order_by(Run.id)).all()
        tags = {
            EXPERIMENT_ID_TAG: str(experiment.id),
            "relctl.experiment": experiment.name,
            "relctl.database": redact_url(settings.database_url),
            "mlflow.note.content": f"relctl experiment {experiment.id} ({experiment.name}), {experiment.status}; spec {experiment.spec_path}",
        }
        return ExperimentPlan(
            experiment_id=experiment.id, name=experiment.name, mlflow_name=mlflow_experiment_name(experiment), tags=tags,
            runs=[plan_run(session, settings, experiment, run) for run in runs],
        )  # fmt: skip


@dataclass
class RunResult:
    run_id: int
    name: str
    mlflow_run_id: str
    created: bool
    params_logged: int = 0
    metrics_logged: int = 0
    metrics_unchanged: int = 0
    changed_params: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {"mlflow": ..., "relctl": ...}
    artifacts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ExperimentResult:
    experiment_id: int
    name: str
    mlflow_experiment: str
    mlflow_experiment_id: str
    created: bool
    runs: list[RunResult]
    notes: list[str] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def ensure_experiment(client: MlflowClient, plan: ExperimentPlan, artifact_location: str | None) -> tuple[str, bool]:
    """The MLflow experiment of a relctl experiment (created, or restored where it was deleted) and
    whether it is new."""
    from mlflow.entities import LifecycleStage

    found = client.get_experiment_by_name(plan.mlflow_name)
    created = found is None
    if found is None:
        experiment_id = client.create_experiment(plan.mlflow_name, artifact_location=artifact_location)
    else:
        experiment_id = found.experiment_id
        if found.lifecycle_stage == LifecycleStage.DELETED:
            client.restore_experiment(experiment_id)
    for key, value in plan.tags.items():
        client.set_experiment_tag(experiment_id, key, value)
    return experiment_id, created


def runs_by_relctl_id(client: MlflowClient, experiment_id: str) -> dict[int, list[MlflowRun]]:
    """The MLflow runs of an experiment (deleted ones too) by their relctl.run_id tag, oldest first."""
    from mlflow.entities import ViewType

    found: dict[int, list[MlflowRun]] = defaultdict(list)
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` != ''", run_view_type=ViewType.ALL, max_results=1000,
            order_by=["attributes.start_time ASC"], page_token=token,
        )  # fmt: skip
        for run in page:
            tag = run.data.tags.get(RUN_ID_TAG, "")
            if tag.isdigit():
                found[int(tag)].append(run)
        token = page.token
        if not token:
            return found


def metrics_to_log(client: MlflowClient, mlflow_run_id: str, latest: dict[str, float], points: list[MetricPoint]) -> tuple[list[MetricPoint], int]:
    """The metric values the MLflow run does not hold yet, and how many it does. MLflow appends every
    value logged, even one it already holds, so each (key, step) is compared with the run's history
    first: a key logged once at step 0 with the same value needs no history read."""
    by_key: dict[str, list[MetricPoint]] = defaultdict(list)
    for point in points:
        by_key[point.key].append(point)
    missing, unchanged = [], 0
    for key, key_points in by_key.items():
        if key not in latest:
            missing += key_points
            continue
        if len(key_points) == 1 and key_points[0].step == 0 and _same(latest[key], key_points[0].value):
            unchanged += 1
            continue
        held: dict[int, float] = {}
        for metric in sorted(client.get_metric_history(mlflow_run_id, key), key=lambda m: m.timestamp):
            held[metric.step] = metric.value  # the latest value logged at each step
        for point in key_points:
            if point.step in held and _same(held[point.step], point.value):
                unchanged += 1
            else:
                missing.append(point)
    return missing, unchanged


def write_artifacts(plan: RunPlan, folder: Path) -> list[str]:
    """The run's own artifacts in ``folder``: its out-of-fold rows per task and a JSON summary of its
    config and metrics. Their paths, relative to ``folder``."""
    written = []
    for task, rows in plan.oof.items():
        target = folder / OOF_DIR / f"{task}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=OOF_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        written.append(f"{OOF_DIR}/{task}.csv")
    (folder / SUMMARY_FILE).write_text(json.dumps(plan.summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    written.append(SUMMARY_FILE)
    return written


def write_report_page(settings: Settings, experiment_id: int, target: Path) -> str | None:
    """Write the experiment's `relctl report` page to ``target``: None once written, else why not (the
    runs' JSON summaries stand in for it then)."""
    try:
        from relctl_evaluator.report import build_report
        from relctl_evaluator.report_html import render_page, write_page

        write_page(target, render_page(build_report(settings, [experiment_id])))
    except ImportError as exc:  # the page's template and plot libraries
        return f"no report page: {first_line(exc)}"
    except InputError as exc:  # nothing scored to report
        return f"no report page: {exc}"
    return None


def export_run(client: MlflowClient, mlflow_experiment_id: str, plan: RunPlan, held: list[MlflowRun], work: Path, report: Path | None) -> RunResult:
    """Create or update the MLflow run of one relctl run; ``report``, the experiment's report page, is
    logged beside the run's own artifacts."""
    from mlflow.entities import LifecycleStage, Param, RunTag
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.utils.time import get_current_time_millis
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH

    if held:
        mlflow_run = held[0]
        if mlflow_run.info.lifecycle_stage == LifecycleStage.DELETED:
            client.restore_run(mlflow_run.info.run_id)
        result = RunResult(plan.run_id, plan.name, mlflow_run.info.run_id, created=False)
        if len(held) > 1:
            others = ", ".join(run.info.run_id for run in held[1:])
            result.warnings.append(f"MLflow runs {others} also carry {RUN_ID_TAG}={plan.run_id}; updated the oldest, {result.mlflow_run_id}")
    else:
        mlflow_run = client.create_run(mlflow_experiment_id, start_time=plan.start_ms, tags={RUN_ID_TAG: str(plan.run_id)}, run_name=plan.name)
        result = RunResult(plan.run_id, plan.name, mlflow_run.info.run_id, created=True)
    run_id = result.mlflow_run_id

    # Params cannot change once logged: a new key is logged, the same value skipped, and a value that
    # differs from MLflow's is kept as a tag beside it, and reported.
    have = mlflow_run.data.params
    params, tags = [], dict(plan.tags)
    for key, value in plan.params.items():
        value = _cut(value, MAX_PARAM_VAL_LENGTH)
        if key not in have:
            params.append(Param(key, value))
        elif have[key] != value:
            result.changed_params[key] = {"mlflow": have[key], "relctl": value}
            tags[CHANGED_PARAM_TAG + key] = _cut(value, MAX_TAG_VAL_LENGTH)
    for key in mlflow_run.data.tags:
        if key.startswith(CHANGED_PARAM_TAG) and key not in tags:
            client.delete_tag(run_id, key)
    tag_list = [RunTag(key, _cut(value, MAX_TAG_VAL_LENGTH)) for key, value in tags.items()]
    for chunk in _chunks(params, _PARAMS_OR_TAGS_PER_BATCH):
        client.log_batch(run_id, params=list(chunk))
    for chunk in _chunks(tag_list, _PARAMS_OR_TAGS_PER_BATCH):
        client.log_batch(run_id, tags=list(chunk))
    result.params_logged = len(params)

    missing, result.metrics_unchanged = metrics_to_log(client, run_id, mlflow_run.data.metrics, plan.metrics)
    now = get_current_time_millis()
    for chunk in _chunks([MlflowMetric(p.key, p.value, now, p.step) for p in missing], _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=list(chunk))
    result.metrics_logged = len(missing)

    folder = work / str(plan.run_id)
    folder.mkdir(parents=True)
    result.artifacts = write_artifacts(plan, folder)
    client.log_artifacts(run_id, str(folder))  # the same paths again replace the files: nothing piles up
    if report is not None:
        client.log_artifact(run_id, str(report))
        result.artifacts.append(report.name)

    if mlflow_run.info.run_name != plan.name:
        client.update_run(run_id, name=plan.name)
    client.set_terminated(run_id, status=plan.status, end_time=plan.end_ms)
    return result


def export_experiment(
    client: MlflowClient, plan: ExperimentPlan, *, settings: Settings | None = None, artifact_location: str | None = None
) -> ExperimentResult:
    """Write a planned experiment into MLflow: its experiment, and a run per relctl run. With
    ``settings``, the experiment's report page goes to each of its runs too."""
    mlflow_experiment_id, created = ensure_experiment(client, plan, artifact_location)
    held = runs_by_relctl_id(client, mlflow_experiment_id)
    notes = []
    with tempfile.TemporaryDirectory(prefix="relctl-mlflow-") as work:
        report: Path | None = None
        if settings is not None:
            page = Path(work) / REPORT_FILE
            why_not = write_report_page(settings, plan.experiment_id, page)
            report = page if why_not is None else None
            notes += [why_not] if why_not else []
        runs = [export_run(client, mlflow_experiment_id, run, held.get(run.run_id, []), Path(work), report) for run in plan.runs]
    return ExperimentResult(plan.experiment_id, plan.name, plan.mlflow_name, mlflow_experiment_id, created, runs, notes)


_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_tracking_uri(uri: str) -> None:
    """Bad input, at once, where the tracking store cannot be reached: MLflow itself retries an
    unreachable server or database for minutes."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    shown = redact_url(uri)
    if scheme in ("http", "https"):
        import requests

        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=10)
        except requests.RequestException as exc:
            # A refused connection's message is pages of pool and adapter names around the OS's reason.
            reason = re.search(r"\[Errno -?\d+\] [^\"')]+", str(exc))
            raise InputError(f"cannot reach the MLflow tracking server {shown}: {reason[0] if reason else first_line(exc)}", path="--tracking-uri") from None
    elif scheme in _DATABASE_SCHEMES:
        from sqlalchemy import create_engine, text

        try:
            if scheme == "sqlite":
                database = uri.split(":///", 1)[1] if ":///" in uri else ""
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(uri, connect_args={"connect_timeout": 10} if scheme == "postgresql" else {})
            try:
                with engine.connect() as connection:
                    connection.execute(text("select 1"))
            finally:
                engine.dispose()
        except Exception as exc:  # noqa: BLE001 - a driver's or the file system's error, reported as bad input
            raise InputError(f"cannot use the MLflow tracking store {shown}: {first_line(exc)}", path="--tracking-uri") from None


def open_tracking_store(uri: str) -> MlflowClient:
    """An MLflow client of a reachable tracking store, or bad input."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RelctlError("the MLflow client is not installed: pip install 'relctl-evaluator[mlflow]'") from None
    # MLflow and Alembic announce each table they create in a new store; the export says what it did.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    check_tracking_uri(uri)
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        raise InputError(f"cannot use the MLflow tracking store {redact_url(uri)}: {first_line(exc)}", path="--tracking-uri") from None
    return client


def _run_line(result: RunResult) -> str:
    what = "new" if result.created else "updated"
    return (
        f"  run {result.run_id} {result.name}: {what} MLflow run {result.mlflow_run_id}, {result.params_logged} params, "
        f"{result.metrics_logged} metric values logged ({result.metrics_unchanged} already there), {len(result.artifacts)} artifacts"
    )


@click.command(name="mlflow")
@click.argument("experiment_ids", metavar="EXPERIMENT...", nargs=-1, required=True, type=int)
@click.option("--tracking-uri", required=True, envvar="MLFLOW_TRACKING_URI", show_envvar=True, help="The MLflow tracking store: http(s)://server, sqlite:///file.db, postgresql://...")
@click.option("--artifact-location", default=None, help="Where MLflow experiments that the export creates keep their artifacts (default: the store's own).")
@click.option("--report/--no-report", default=True, show_default=True, help="Log the experiment's `relctl report` page to each of its runs.")
@click.option("--json", "as_json", is_flag=True, help="Print what was exported as JSON.")
def mlflow_command(experiment_ids: tuple[int, ...], tracking_uri: str, artifact_location: str | None, report: bool, as_json: bool) -> None:
    """Export finished experiments into MLflow: one MLflow run per relctl run.

    Each experiment becomes the MLflow experiment relctl/NAME#ID, each of its runs an MLflow run
    tagged relctl.run_id (and relctl.experiment_id, relctl.status), with the resolved run config as
    params (dotted keys: model.lora.r, train.lr; plus kind, task, experiment_id).

    Metrics keep relctl's names with '@' read as '_at_' (MLflow allows letters, digits, _ - . / and
    space), under the task: QC/f1_at_oof is the CV mean over the folds, QC/f1_at_oof.std its standard
    deviation, QC/f1_at_oof.lang.de the mean of one language, and QC/f1_at_oof.fold each fold's value,
    logged at step = fold number (a chart over the folds). Undefined values are left out.

    Artifacts: oof_predictions/TASK.csv (the out-of-fold rows the run was scored on), relctl_summary.json
    (its config and every metric row, with the MLflow key of each) and report.html, the experiment's
    `relctl report` page (a few MB each, the plot library is inside it; --no-report leaves it out).

    Exporting again updates the same MLflow runs: values MLflow already holds are not logged twice,
    and a param whose value changed (MLflow's params cannot change) keeps MLflow's value, with the new
    one in the tag relctl.changed_param.KEY. An unknown or unfinished experiment, or an unreachable
    store, is bad input (exit 2).

    \b
    Example:
      relctl export mlflow 12 14 --tracking-uri sqlite:///mlflow.db
      mlflow ui --backend-store-uri sqlite:///mlflow.db
    """
    from relctl_core.migrate import check_database

    settings = load_settings()
    check_database(settings.database_url)
    ids = list(dict.fromkeys(experiment_ids))
    with session_scope(settings.database_url) as session:
        for experiment_id in ids:
            finished_experiment(session, experiment_id)
    client = open_tracking_store(tracking_uri)
    from mlflow.exceptions import MlflowException

    results = []
    for experiment_id in ids:
        plan = plan_experiment(settings, experiment_id)
        if report:
            click.echo(f"experiment {experiment_id}: writing its report page ...", err=True)
        try:
            result = export_experiment(client, plan, settings=settings if report else None, artifact_location=artifact_location)
        except MlflowException as exc:
            raise RelctlError(f"exporting experiment {experiment_id} to {redact_url(tracking_uri)} failed: {first_line(exc)}") from None
        results.append(result)
        for note in result.notes:
            click.echo(f"warning: experiment {experiment_id}: {note}", err=True)
        for run in result.runs:
            for warning in run.warnings:
                click.echo(f"warning: run {run.run_id}: {warning}", err=True)
            for key, values in run.changed_params.items():
                click.echo(
                    f"warning: run {run.run_id}: param {key} is {values['relctl']!r} now, MLflow keeps {values['mlflow']!r} "
                    f"(tag {CHANGED_PARAM_TAG}{key})",
                    err=True,
                )
        if not as_json:
            click.echo(f"experiment {result.experiment_id} {result.name} -> MLflow experiment {result.mlflow_experiment} (id {result.mlflow_experiment_id}, {'new' if result.created else 'updated'})")
            for run in result.runs:
                click.echo(_run_line(run))
    if as_json:
        document = {
            "tracking_uri": redact_url(tracking_uri),
            "experiments": [
                {
                    "experiment_id": r.experiment_id, "name": r.name, "mlflow_experiment": r.mlflow_experiment,
                    "mlflow_experiment_id": r.mlflow_experiment_id, "created": r.created, "notes": r.notes,
                    "runs": [asdict(run) for run in r.runs],
                }
                for r in results
            ],
        }  # fmt: skip
        click.echo(json.dumps(document, indent=2))

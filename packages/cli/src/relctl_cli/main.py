"""The relctl command: submit, run, watch and rank multilingual search relevance experiments."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import click
from relctl_core.db import CANCELLED, DONE, FAILED, Event, Experiment, Run, Stage, session_scope
from relctl_core.errors import InputError, RelctlError
from relctl_core.leaderboard import DEFAULT_LIMIT, DEFAULT_METRIC
from relctl_core.settings import Settings, load_settings, redact_url
from sqlalchemy import func, select

from relctl_cli.render import console, emit_json, err_console, fmt, state, table

TERMINAL = (DONE, FAILED, CANCELLED)


@cache
def plugin_commands() -> dict[str, Any]:
    """Commands that installed packages add (entry points ``relctl.commands``), by name, not yet loaded."""
    from importlib.metadata import entry_points

    return {plugin.name: plugin for plugin in entry_points(group="relctl.commands")}


class RelctlGroup(click.Group):
    """Turns relctl's own errors into a one-line message and the right exit status (2 for bad input).

    Plugin commands load when asked for: a command of relctl's own never reads the installed packages'
    metadata or imports another package's command module (and what that module imports)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in plugin_commands():
            command = plugin_commands()[cmd_name].load()
            self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RelctlError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)


def settings_with_schema() -> Settings:
    from relctl_core.experiments import check_services

    settings = load_settings()
    check_services(settings)
    return settings


def settings_with_database() -> Settings:
    """Settings for a command that only reads the run database: it must be reachable and current; the
    broker is not needed, and neither is anything that talks to it."""
    from relctl_core.migrate import check_database

    settings = load_settings()
    check_database(settings.database_url)
    return settings


def experiment_or_fail(session: Any, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise InputError(f"no experiment {experiment_id} (see `relctl list`)")
    return experiment


def experiment_with_stages(session: Any, experiment_id: int) -> tuple[Experiment, list[Stage]]:
    experiment = experiment_or_fail(session, experiment_id)
    return experiment, list(session.scalars(select(Stage).where(Stage.experiment_id == experiment_id).order_by(Stage.id)))


@click.group(cls=RelctlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="relctl")
def cli() -> None:
    """relctl: train and rank multilingual e-commerce search relevance models.

    Describe an experiment in experiment.yaml, then run it here (`relctl run`) or on workers
    (`relctl submit`). Every run, fold, stage and metric lands in the run database.

    \b
    Settings (environment):
      RELCTL_HOME           state folder (default ~/.relctl)
      RELCTL_DATABASE_URL   run database (default SQLite in RELCTL_HOME)
      RELCTL_BROKER_URL     Celery broker (default: a folder in RELCTL_HOME)
      RELCTL_ARTIFACT_ROOT  artifacts (default RELCTL_HOME/artifacts)

    \b
    Example:
      relctl models install multilingual-e5-small
      relctl run examples/demo/experiment.yaml
    """


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the resolved spec as JSON.")
def validate(file: Path, as_json: bool) -> None:
    """Check an experiment file and print the resolved spec and its runs.

    \b
    Example:
      relctl validate experiment.yaml
    """
    import yaml
    from relctl_core.experiments import prepare

    prepared = prepare(file)
    runs = [{"name": r.name, "task": r.task, "kind": r.kind} for r in prepared.plan.runs]
    stages: dict[str, int] = {}
    for stage in prepared.plan.stages.values():
        stages[stage.kind] = stages.get(stage.kind, 0) + 1
    if as_json:
        emit_json({"spec": prepared.spec, "runs": runs, "stages": stages})
        return
    console.print(yaml.safe_dump(prepared.spec, sort_keys=False, allow_unicode=True), highlight=False, markup=False)
    console.print(table(f"{len(runs)} runs", ["run", "task", "kind"], [[r["name"], r["task"], r["kind"]] for r in runs]))
    console.print("stages: " + ", ".join(f"{n} {k}" for k, n in stages.items()))
    console.print(f"[green]ok[/] {file}")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait for the experiment to finish, showing progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the experiment id as JSON.")
def submit(file: Path, wait: bool, as_json: bool) -> None:
    """Submit an experiment to the workers (RELCTL_BROKER_URL).

    \b
    Example:
      RELCTL_BROKER_URL=redis://gpu-head:6379/0 \\
      RELCTL_DATABASE_URL=postgresql+psycopg://relctl@db/relctl relctl submit experiment.yaml --wait
    """
    from relctl_core.experiments import submit as submit_experiment

    settings = load_settings()
    experiment_id = submit_experiment(settings, file)
    if as_json and not wait:
        emit_json({"experiment_id": experiment_id})
        return
    (err_console if as_json else console).print(f"submitted experiment [bold]{experiment_id}[/] to {redact_url(settings.broker_url)}")
    if not wait:
        console.print(f"next: relctl status {experiment_id}   relctl logs {experiment_id} -f   relctl leaderboard --experiment {experiment_id}")
        return
    final = watch(settings, experiment_id, quiet_stdout=as_json)
    finish(settings, experiment_id, final, as_json)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", default=1, show_default=True, help="CPU stages run at once beside the trainings.")
@click.option("--trainings", default=1, show_default=True, help="Trainings run at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the final leaderboard as JSON.")
def run(file: Path, concurrency: int, trainings: int, as_json: bool) -> None:
    """Run an experiment here, with in-process workers for every queue, and print its leaderboard.

    Needs no servers: the run database, broker and artifacts default to RELCTL_HOME.
    Ctrl-C cancels the experiment (its trainings are killed); `relctl retry ID` resumes it.

    \b
    Example:
      relctl run examples/demo/experiment.yaml
    """
    from relctl_core import names
    from relctl_core.experiments import prepare
    from relctl_core.experiments import submit as submit_experiment
    from relctl_core.pipeline import cancel as cancel_experiment
    from relctl_core.worker import embedded_workers

    settings = load_settings()
    prepared = prepare(file)
    train_queues = sorted({names.train_queue(s.gpu) for s in prepared.plan.stages.values() if s.kind == "train"})
    groups = [([names.CPU_QUEUE, names.TRANSLATE_QUEUE], concurrency), (train_queues, trainings)]
    with embedded_workers(groups) as workers:
        experiment_id = submit_experiment(settings, file, prepared=prepared)
        (err_console if as_json else console).print(f"experiment [bold]{experiment_id}[/] running here (queues {', '.join(groups[0][0] + train_queues)})")
        try:
            final = watch_here(settings, experiment_id, workers, quiet_stdout=as_json)
        except KeyboardInterrupt:
            cancel_experiment(settings, experiment_id)
            err_console.print(f"experiment {experiment_id} cancelled; resume it with: relctl retry {experiment_id}")
            sys.exit(130)
    finish(settings, experiment_id, final, as_json)


def finish(settings: Settings, experiment_id: int, final: str, as_json: bool) -> None:
    print_leaderboard(settings, experiment_id=experiment_id, task=None, metric=DEFAULT_METRIC, by_language=False, as_json=as_json)
    if final != DONE:
        with session_scope(settings.database_url) as session:
            error = experiment_or_fail(session, experiment_id).error
        err_console.print(f"[bold red]experiment {experiment_id} {final}[/]" + (f": {error}" if error else ""), highlight=False)
        err_console.print(f"see: relctl status {experiment_id}   relctl logs {experiment_id}   relctl retry {experiment_id}")
        sys.exit(1)


def progress_text(stage: Stage) -> str:
    p = stage.progress or {}
    if stage.kind in ("train", "pretrain") and "total_steps" in p:
        loss = f" loss {p['loss']:.4f}" if isinstance(p.get("loss"), float) else ""
        return f"epoch {p.get('epoch', 0)} step {p.get('step', 0)}/{p['total_steps']}{loss}"
    if "total" in p:
        return f"{p.get('done', 0)}/{p['total']} {p.get('unit', '')} ({p.get('rate', 0)}/s)"
    return ""


def watch(
    settings: Settings, experiment_id: int, poll: float = 0.5, *, quiet_stdout: bool = False, check: Callable[[], None] | None = None
) -> str:
    """Follow an experiment until it ends: a line per stage change, a live bar per running stage.

    With quiet_stdout (--json) all of it goes to stderr, so that stdout holds the JSON alone.
    check, if given, runs at every poll and may raise to stop following (see watch_here)."""
    out = err_console if quiet_stdout else console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    seen: dict[int, str] = {}
    bars: dict[int, Any] = {}
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=out, transient=True, disable=not out.is_terminal,
    )
    unreachable_since: float | None = None
    with progress:
        while True:
            try:
                # No wait inside: the watch waits itself, so that an outage is said on the screen.
                with session_scope(settings.database_url, wait=0) as session:
                    experiment, stages = experiment_with_stages(session, experiment_id)
                    status = experiment.status
            except Exception as exc:  # noqa: BLE001 - a restarting database pauses the watch, within bounds
                from relctl_core.db import is_unreachable, retry_seconds

                if not is_unreachable(exc):
                    raise
                now = time.monotonic()
                if unreachable_since is None:
                    unreachable_since = now
                    progress.console.print(f"  run database unreachable ({str(exc).splitlines()[0]}); waiting for it", highlight=False)
                if now - unreachable_since > retry_seconds():
                    raise
                time.sleep(max(poll, 1.0))
                continue
            if unreachable_since is not None:
                unreachable_since = None
                progress.console.print("  run database reachable again", highlight=False)
            for stage in stages:
                if seen.get(stage.id) != stage.status:
                    seen[stage.id] = stage.status
                    if stage.status != "pending":
                        cached = " (cached)" if stage.status == DONE and stage.cached_from else ""
                        error = f": {stage.error.splitlines()[0]}" if stage.status == FAILED and stage.error else ""
                        progress.console.print(f"  {stage.label}: {state(stage.status)}{cached}{error}", highlight=False)
                p = stage.progress or {}
                total = p.get("total_steps") or p.get("total")
                if stage.status == "running" and total:
                    done = p.get("step", p.get("done", 0))
                    if stage.id not in bars:
                        bars[stage.id] = progress.add_task(stage.label, total=total, detail="")
                    progress.update(bars[stage.id], completed=done, total=total, detail=progress_text(stage))
                elif stage.id in bars:
                    progress.remove_task(bars.pop(stage.id))
            done_count = sum(1 for s in stages if s.status == DONE)
            if status in TERMINAL:
                out.print(f"experiment {experiment_id}: {state(status)} ({done_count}/{len(stages)} stages done)")
                return status
            if check is not None:
                check()
            time.sleep(poll)


def watch_here(settings: Settings, experiment_id: int, workers: Sequence[Any], *, quiet_stdout: bool = False) -> str:
    """watch() an experiment that the in-process workers run: if one of them stops, nothing would take
    its queues, so cancel the experiment (for `relctl retry`) and fail rather than wait forever."""
    from relctl_core.pipeline import cancel as cancel_experiment
    from relctl_core.worker import EmbeddedWorkerStopped, check_workers

    try:
        return watch(settings, experiment_id, quiet_stdout=quiet_stdout, check=lambda: check_workers(workers))
    except EmbeddedWorkerStopped as exc:
        cancel_experiment(settings, experiment_id)
        raise EmbeddedWorkerStopped(f"{exc}; experiment {experiment_id} cancelled, resume it with: relctl retry {experiment_id}") from exc


@cli.command()
@click.option("--queues", "-Q", required=True, help="Comma-separated queues: cpu, translate, train.cpu, train.a100, ...")
@click.option("--concurrency", "-c", default=1, show_default=True, help="Jobs at once.")
@click.option("--gpus", default=None, envvar="RELCTL_WORKER_GPUS", help="GPU ids this worker's trainings may use (CUDA_VISIBLE_DEVICES), e.g. 0,1.")
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "threads", "solo"]))
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker(queues: str, concurrency: int, gpus: str | None, pool: str, loglevel: str) -> None:
    """Start a worker for some queues (run one per GPU host, one or more for cpu,translate).

    \b
    Examples:
      relctl worker --queues cpu,translate
      relctl worker --queues train.a100 --gpus 0,1,2,3
    """
    from relctl_core.worker import run_worker

    settings = settings_with_schema()
    names = [q.strip() for q in queues.split(",") if q.strip()]
    console.print(f"worker for {', '.join(names)} on {redact_url(settings.broker_url)}, database {redact_url(settings.database_url)}")
    run_worker(names, concurrency=concurrency, gpus=gpus, pool=pool, loglevel=loglevel)


@cli.command()
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def status(experiment_id: int, as_json: bool) -> None:
    """Show an experiment's stages: state, attempts, worker, progress.

    \b
    Example:
      relctl status 12
    """
    settings = settings_with_schema()
    with session_scope(settings.database_url) as session:
        experiment, stages = experiment_with_stages(session, experiment_id)
        rows = [
            {
                "id": s.id,
                "stage": s.label,
                "status": s.status,
                "cached": s.cached_from is not None,
                "attempts": s.attempts,
                "worker": s.worker_host,
                "queue": s.queue,
                "progress": progress_text(s) if s.status == "running" else "",
                "last_progress": s.progress,  # the stage's last report (done/total and rate), kept after it ends
                "seconds": f"{(s.finished_at - s.started_at).total_seconds():.1f}" if s.finished_at and s.started_at else None,
                "error": s.error,
                "losses": s.losses or [],  # attempts whose worker died: host, when, at which step, why
                "waits_for": s.waits_for,
                "note": stage_note(s),
            }
            for s in stages
        ]
        head = {"experiment_id": experiment.id, "name": experiment.name, "status": experiment.status, "error": experiment.error}
    if as_json:
        emit_json({**head, "stages": rows})
        return
    console.print(f"experiment [bold]{head['experiment_id']}[/] {head['name']}: {state(head['status'])}")
    console.print(
        table(
            None,
            ["id", "stage", "status", "queue", "attempts", "worker", "progress", "seconds", "note"],
            [[r["id"], r["stage"], r["status"] + (" (cached)" if r["cached"] else ""), r["queue"], r["attempts"], r["worker"], r["progress"], r["seconds"], r["note"]] for r in rows],
            states="status",
        )
    )
    for r in rows:
        if r["error"]:
            err_console.print(f"[red]{r['stage']}[/]: {r['error']}", highlight=False)


def stage_note(stage: Any) -> str:
    """What a stage's status alone does not say: it was taken over from a dead worker, or it waits for
    its twin in another experiment."""
    if stage.waits_for is not None and stage.status == "queued":
        return f"waits for stage {stage.waits_for}"
    losses = stage.losses or []
    if not losses or stage.status == "failed":
        return ""
    last = losses[-1]
    at = f" at step {last['step']}" if last.get("step") else ""
    verb = "taken over" if stage.status in ("queued", "running") else "recovered"
    return f"{verb}: worker on {last['host']} lost{at} ({len(losses)} lost)"


@cli.command()
@click.argument("experiment_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the experiment ends.")
@click.option("--json", "as_json", is_flag=True)
def logs(experiment_id: int, follow: bool, as_json: bool) -> None:
    """Print an experiment's log: stage starts and ends, training progress, errors.

    \b
    Example:
      relctl logs 12 --follow
    """
    settings = settings_with_schema()
    last = 0
    while True:
        with session_scope(settings.database_url) as session:
            experiment = experiment_or_fail(session, experiment_id)
            events = session.scalars(select(Event).where(Event.experiment_id == experiment_id, Event.id > last).order_by(Event.id)).all()
            ended = experiment.status in TERMINAL
        for e in events:
            last = e.id
            if as_json:
                print(json.dumps({"ts": e.ts.isoformat(), "stage_id": e.stage_id, "level": e.level, "message": e.message}, ensure_ascii=False))
            else:
                colour = {"error": "red", "debug": "dim"}.get(e.level, "white")
                console.print(f"[dim]{fmt(e.ts)}[/] [{colour}]{e.message}[/]", highlight=False, markup=True)
        if not follow or (ended and not events):
            return
        time.sleep(1.0)


@cli.command()
@click.argument("experiment_id", type=int)
def cancel(experiment_id: int) -> None:
    """Cancel an experiment: queued stages are dropped, running trainings killed with their process group.

    \b
    Example:
      relctl cancel 12
    """
    from relctl_core.pipeline import cancel as cancel_experiment

    settings = settings_with_schema()
    cancelled = cancel_experiment(settings, experiment_id)
    console.print(f"experiment {experiment_id}: {len(cancelled)} stages cancelled")


@cli.command()
@click.argument("experiment_id", type=int)
@click.option("--wait", is_flag=True, help="Wait for the experiment to finish (always, with the embedded default).")
def retry(experiment_id: int, wait: bool) -> None:
    """Run an experiment's failed (or cancelled) stages again; finished stages are kept.

    With the embedded default (no RELCTL_BROKER_URL) the stages run here, as with `relctl run`.

    \b
    Example:
      relctl retry 12 --wait
    """
    from relctl_core import names
    from relctl_core.pipeline import retry as retry_experiment
    from relctl_core.worker import embedded_workers

    settings = settings_with_schema()
    if not settings.embedded_broker:
        again = retry_experiment(settings, experiment_id)
        console.print(f"experiment {experiment_id}: {len(again)} stages queued again")
        if wait:
            finish(settings, experiment_id, watch(settings, experiment_id), False)
        return
    with session_scope(settings.database_url) as session:
        train_queues = sorted(set(session.scalars(select(Stage.queue).where(Stage.experiment_id == experiment_id, Stage.kind == "train"))))
    with embedded_workers([([names.CPU_QUEUE, names.TRANSLATE_QUEUE], 1), (train_queues, 1)]) as workers:
        again = retry_experiment(settings, experiment_id)
        console.print(f"experiment {experiment_id}: {len(again)} stages run again here")
        final = watch_here(settings, experiment_id, workers)
    finish(settings, experiment_id, final, False)


@cli.command(name="list")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(min=1), help="How many experiments, newest first.")
@click.option("--json", "as_json", is_flag=True)
def list_experiments(limit: int, as_json: bool) -> None:
    """List recent experiments.

    \b
    Example:
      relctl list --limit 5
    """
    settings = settings_with_database()
    with session_scope(settings.database_url) as session:
        # Only the experiments shown, and their run counts, leave the database.
        runs = select(func.count(Run.id)).where(Run.experiment_id == Experiment.id).correlate(Experiment).scalar_subquery()
        query = select(Experiment.id, Experiment.name, Experiment.status, runs, Experiment.created_at, Experiment.finished_at)
        rows = [
            {"id": e_id, "name": name, "status": status, "runs": count, "created": created, "finished": finished}
            for e_id, name, status, count, created, finished in session.execute(query.order_by(Experiment.id.desc()).limit(limit))
        ]
        total = session.scalar(select(func.count(Experiment.id))) if len(rows) == limit else len(rows)
    note = f"showing the newest {len(rows):,} of {total:,} experiments; --limit to see more" if len(rows) < total else None
    if as_json:
        emit_json(rows)
        if note:
            print(note, file=sys.stderr)
        return
    console.print(table(None, ["id", "name", "status", "runs", "created", "finished"], [list(r.values()) for r in rows], states="status"))
    if note:
        console.print(f"[dim]{note}[/]", highlight=False)


@cli.command()
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(experiment_id: int, as_json: bool) -> None:
    """Show an experiment: its spec, datasets, split audit, translations, runs and example model inputs.

    \b
    Example:
      relctl show 12
    """
    settings = settings_with_schema()
    with session_scope(settings.database_url) as session:
        experiment, stages = experiment_with_stages(session, experiment_id)
        runs = session.scalars(select(Run).where(Run.experiment_id == experiment_id).order_by(Run.id)).all()
        detail: dict[str, Any] = {
            "experiment_id": experiment.id,
            "name": experiment.name,
            "status": experiment.status,
            "spec_path": experiment.spec_path,
            "created": experiment.created_at,
            "finished": experiment.finished_at,
            "error": experiment.error,
            "runs": [{"id": r.id, "name": r.name, "kind": r.kind, "task": r.task, "status": r.status} for r in runs],
            "datasets": [{"stage": s.label, **(s.output or {}).get("summary", {})} for s in stages if s.kind == "ingest" and s.output],
            "splits": [{"stage": s.label, **{k: v for k, v in (s.output or {}).get("audit", {}).items() if k != "folds"}} for s in stages if s.kind == "split" and s.output],
            "translations": [
                {
                    "stage": s.label,
                    **(s.output or {}).get("summary", {}),
                    "chrf": {lang: q["chrf"] for lang, q in (s.output or {}).get("quality", {}).items()},
                }
                for s in stages
                if s.kind == "translate" and s.output
            ],
            "example_inputs": example_inputs(settings, stages),
        }
    if as_json:
        emit_json(detail)
        return
    console.print(f"experiment [bold]{detail['experiment_id']}[/] {detail['name']}: {state(detail['status'])}  ({detail['spec_path']})")
    for d in detail["datasets"]:
        console.print(f"  {d['stage']}: {d.get('rows')} rows, positive rate {fmt(d.get('positive_rate'))}, languages {', '.join(sorted(d.get('languages', {})))}")
    for s in detail["splits"]:
        console.print(f"  {s['stage']}: query leakage {fmt(s.get('query_leakage'))}, group leakage {fmt(s.get('group_leakage'))}, size ratio {fmt(s.get('size_ratio'))}")
    for t in detail["translations"]:
        console.print(
            f"  {t['stage']}: {t.get('unique_queries')} unique queries: {t.get('translated')} translated, "
            f"{t.get('cached')} from the cache, {t.get('english_passthrough')} already English, {t.get('failed')} failed"
        )
        if t["chrf"]:
            console.print("    chrF on the reference set: " + ", ".join(f"{lang} {v:.1f}" for lang, v in t["chrf"].items()))
    console.print(table("runs", ["id", "name", "kind", "task", "status"], [list(r.values()) for r in detail["runs"]], states="status"))
    if detail["example_inputs"]:
        console.print(table("example model inputs (query side | target side)", ["query", "target"], [[e["query_text"], e["target_text"]] for e in detail["example_inputs"]]))


def example_inputs(settings: Settings, stages: list[Stage], count: int = 5) -> list[dict[str, str]]:
    for stage in stages:
        if stage.kind == "train" and stage.cache_key:
            rows_file = settings.artifact_root / "train" / stage.cache_key / "inputs" / "train.jsonl"
            if rows_file.is_file():
                with rows_file.open(encoding="utf-8") as rows:
                    picked = [json.loads(line) for _, line in zip(range(count), rows, strict=False)]
                return [{"query_text": r["query_text"], "target_text": r["target_text"]} for r in picked]
    return []


@cli.command(name="leaderboard")
@click.option("--experiment", "experiment_id", type=int, default=None, help="Only this experiment.")
@click.option("--task", default=None, metavar="qc|qi", help="Only this task.")
@click.option("--metric", default=DEFAULT_METRIC, show_default=True, help="Rank by: f1@oof, f1@0.5, roc_auc, pr_auc, precision@0.5, ...")
@click.option("--by", "by", type=click.Choice(["language"]), default=None, help="One row per run and language.")
@click.option("--limit", default=DEFAULT_LIMIT, show_default=True, type=click.IntRange(min=1), help="Top runs shown per task (per task and language with --by language), and F1avg pairs.")
@click.option("--json", "as_json", is_flag=True)
def leaderboard_command(experiment_id: int | None, task: str | None, metric: str, by: str | None, limit: int, as_json: bool) -> None:
    """Rank finished runs by the cross-validation mean of a metric, baselines beside the models.

    F1@oof is scored at a threshold cross-fitted within each fold (tuned on the other half of the
    fold's out-of-fold predictions), never on the rows it scores. With --by language, a chrF column
    shows the experiment's translator on the reference set in that language, where it was measured.

    \b
    Examples:
      relctl leaderboard --task qc --metric roc_auc
      relctl leaderboard --experiment 12 --by language --json
    """
    settings = settings_with_database()
    print_leaderboard(settings, experiment_id=experiment_id, task=task, metric=metric, by_language=by == "language", as_json=as_json, limit=limit)


def print_leaderboard(
    settings: Settings, *, experiment_id: int | None, task: str | None, metric: str, by_language: bool, as_json: bool, limit: int = DEFAULT_LIMIT
) -> None:
    from relctl_core.leaderboard import leaderboard

    with session_scope(settings.database_url) as session:
        # The count of rows ranked is for the note people read; a script reading --json only wants the rows.
        board = leaderboard(session, experiment_id=experiment_id, task=task, metric=metric, by_language=by_language, limit=limit, count=not as_json)
    rows, averages = board.rows, board.f1avg
    rows_note = pairs_note = None
    if board.cut:
        each = "each task and language" if by_language else "each task"
        what = "rows" if by_language else "runs"
        of = f" of {board.ranked:,}" if board.ranked is not None else ""
        rows_note = f"showing {len(rows):,}{of} {what}, the top {limit} of {each}; --limit to see more"
    if len(averages) < board.pairs:
        pairs_note = f"showing {len(averages):,} of {board.pairs:,} F1avg pairs; --limit to see more"
    if as_json:
        emit_json({"metric": metric, "rows": rows, "f1avg": averages})
        for note in (rows_note, pairs_note):
            if note:
                print(note, file=sys.stderr)  # not through rich: --json output imports none of it
        return
    columns = ["experiment", "run", "task"] + (["language"] if by_language else []) + ["mean", "std", "folds"]
    extra = [m for m in ("f1@0.5", "f1@oof", "roc_auc", "pr_auc") if m != metric]
    extra += ["chrf"] if by_language and any("chrf" in r for r in rows) else []
    body = []
    for r in rows:
        name = f"[dim]{r['run']}[/]" if r["kind"] == "baseline" else r["run"]
        body.append([f"{r['experiment_id']} {r['experiment']}", name, r["task"]] + ([r["language"]] if by_language else []) + [r.get("mean"), r.get("std"), r.get("folds")] + [r.get(m) for m in extra])
    console.print(table(f"leaderboard: {metric} (CV mean over folds)", columns + extra, body))
    if rows_note:
        console.print(f"[dim]{rows_note}[/]", highlight=False)
    if averages:
        console.print(table(f"F1avg = 0.5 {metric}(QC) + 0.5 {metric}(QI)", ["experiment", "run", "F1avg"], [[a["experiment_id"], a["run"], a["f1avg"]] for a in averages]))
    if pairs_note:
        console.print(f"[dim]{pairs_note}[/]", highlight=False)


@cli.group()
def models() -> None:
    """The model store: real models converted once for offline use."""


@models.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json: bool) -> None:
    """List installable and installed models.

    \b
    Example:
      relctl models list
    """
    from relctl_core import modelstore

    settings = load_settings()
    installed = modelstore.installed(settings)
    names = sorted(set(modelstore.providers()) | set(installed))
    rows = [{"name": n, "installed": n in installed, "path": installed.get(n, {}).get("path"), "source": installed.get(n, {}).get("source")} for n in names]
    if as_json:
        emit_json(rows)
        return
    console.print(table(f"model store: {settings.model_store}", ["name", "installed", "path", "source"], [list(r.values()) for r in rows]))


@models.command(name="install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Convert again even if installed.")
def models_install(name: str, force: bool) -> None:
    """Convert a packaged model into the model store (once; later calls return at once).

    \b
    Example:
      relctl models install multilingual-e5-small
    """
    from relctl_core import modelstore

    settings = load_settings()
    with console.status(f"installing {name} into {settings.model_store} ..."):
        info, fresh = modelstore.install(settings, name, force=force)
    console.print(f"{name}: {'installed' if fresh else 'already installed'} at {info['path']}")


@cli.group()
def db() -> None:
    """The run database."""


@db.command(name="upgrade")
def db_upgrade() -> None:
    """Create or upgrade the run database's schema (Alembic migrations).

    \b
    Example:
      RELCTL_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/relctl relctl db upgrade
    """
    from relctl_core.migrate import upgrade

    settings = load_settings()
    try:
        before, after = upgrade(settings.database_url)
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            raise InputError(f"cannot use the run database {redact_url(settings.database_url)}: {str(exc).splitlines()[0]}", path="RELCTL_DATABASE_URL") from None
        raise
    console.print(f"{redact_url(settings.database_url)}: schema {before or 'empty'} -> {after}")


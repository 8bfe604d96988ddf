"""Commands that run experiments: submit, run, retry, cancel, worker; and following one until it ends."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from relctl_core.db import DONE, FAILED, Stage, session_scope
from relctl_core.leaderboard import DEFAULT_METRIC
from relctl_core.settings import Settings, load_settings, redact_url
from sqlalchemy import select

from relctl_cli.commands.ranking import print_leaderboard
from relctl_cli.common import TERMINAL, experiment_or_fail, experiment_with_stages, settings_with_schema
from relctl_cli.render import console, emit_json, err_console, state


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
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

"""The train stage: one fold of one run, trained in a child process in its own process session.

The child never shares the worker's process: CUDA must not be initialised in a forked worker, and
cancelling must kill the training's whole process group (several ranks under DeepSpeed).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from celery import shared_task
from relctl_core import names
from relctl_core.data import read_examples
from relctl_core.db import Stage, session_scope
from relctl_core.errors import InputError, RelctlError
from relctl_core.folds import FoldData, english_for, load_fold, read_predictions, write_prediction_rows
from relctl_core.liveness import host_name
from relctl_core.modelstore import resolve_backbone
from relctl_core.payloads import PretrainPayload, TrainPayload
from relctl_core.pipeline import (
    HandedBack,
    LeaseLost,
    StageContext,
    TimeLimitExceeded,
    execute_stage,
    write_json,
)
from relctl_core.spec import DEFAULT_PRIVATE_LAYERS, ModelSpec, ResourcesSpec, TrainSpec
from relctl_core.targets import target_text
from sqlalchemy import update

from relctl_trainer import __version__
from relctl_trainer.inputs import TASK_TAGS, build_query_text
from relctl_trainer.job import TrainJob
from relctl_trainer.launch import free_port, launch_command

LOG_EVERY_SECONDS = 10.0
KILL_GRACE_SECONDS = 10.0
# How long a training asked to checkpoint and stop may take to finish its step and save; the systemd
# unit's TimeoutStopSec must leave room for it.
STOP_GRACE_SECONDS = 90.0


class TrainingCancelled(RelctlError):
    pass


def write_rows(
    path: Path,
    english: dict[str, str] | None,
    examples: list[Any],
    mode: str,
    *,
    with_label: bool,
    task: str | None = None,
    tag: bool = False,
    target_form: str | None = None,
    rows_task: str | None = None,
) -> None:
    """Row files of the trainer. With ``task`` (a model for both tasks) each row names it, and with
    ``tag`` (routing prefix) the query starts with the task's tag. ``target_form`` (model.target_form)
    rewrites the targets of QC rows (``rows_task``, or ``task``: the task the examples are of)."""
    with path.open("a", encoding="utf-8") as out:
        for e in examples:
            query_text = build_query_text(e.query, (english or {}).get(e.query), mode)
            row = {
                "id": e.id,
                "language": e.language,
                "query_text": f"{TASK_TAGS[task]} {query_text}" if tag and task else query_text,
                "target_text": target_text(e.target, rows_task or task or "", target_form) if target_form else e.target,
            }
            if task:
                row["task"] = task
            if with_label:
                row["label"] = e.label
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_job(ctx: StageContext, payload: TrainPayload, folds: dict[str, FoldData]) -> TrainJob:
    """The job of one fold: the fold of the run's task, or of each task for a model of both."""
    inputs = _fresh_inputs(ctx)
    both = len(folds) > 1
    routing = payload.model.routing
    for task, data in folds.items():
        rows = {"task": task if both else None, "tag": both and routing == "prefix", "target_form": payload.model.target_form, "rows_task": task}
        write_rows(inputs / "train.jsonl", data.english, data.train, payload.mode, with_label=True, **rows)
        write_rows(inputs / "val.jsonl", data.english, data.val, payload.mode, with_label=True, **rows)
        # The holdout rows are predicted with the test rows, after them (split apart again by predicted_parts).
        for _kind, examples in predicted_parts({task: data})[task]:
            write_rows(inputs / "test.jsonl", data.english, examples, payload.mode, with_label=False, **rows)
    has_test = (inputs / "test.jsonl").exists()
    pretrained = ctx.inputs("pretrain")
    return _job(
        ctx,
        payload.model,
        # TAPT's stage 1 is a stage of its own: this job is stage 2, which continues its model.
        payload.train.model_copy(update={"tapt": None}),
        payload.resources,
        train_file=str(inputs / "train.jsonl"),
        val_file=str(inputs / "val.jsonl"),
        test_file=str(inputs / "test.jsonl") if has_test else None,
        init_from=str(ctx.path(pretrained[0]["artifacts"]["model"])) if pretrained else None,
        tasks=list(folds) if both and routing != "prefix" else None,
        private_layers=(payload.model.private_layers or DEFAULT_PRIVATE_LAYERS) if both and routing == "heads+private" else 0,
    )


def predicted_parts(folds: dict[str, FoldData]) -> dict[str, list[tuple[str, list[Any]]]]:
    """Per task, the parts of the rows the trained model predicts, in the order of its test file: the
    test rows ("test"), then the holdout rows ("holdout"); a part without rows is left out."""
    return {
        task: [(kind, rows) for kind, rows in (("test", data.test), ("holdout", data.holdout)) if rows]
        for task, data in folds.items()
    }


def split_predictions(rows: list[dict[str, Any]], folds: dict[str, FoldData]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The model's predictions of its test file, in file order, back into (task, part) pieces: test
    rows as predicted, holdout rows with their labels. Row ids may repeat across parts (a test file's
    ids are its own), so rows are matched by position, and each row's id is checked."""
    pieces: dict[tuple[str, str], list[dict[str, Any]]] = {}
    position = 0
    for task, parts in predicted_parts(folds).items():
        for kind, examples in parts:
            piece = rows[position : position + len(examples)]
            position += len(examples)
            if [str(row["id"]) for row in piece] != [str(e.id) for e in examples]:
                raise RelctlError(f"the {task} {kind} predictions do not follow the rows written for them")
            if kind == "holdout":
                piece = [{**row, "label": e.label} for row, e in zip(piece, examples, strict=True)]
            pieces[(task, kind)] = piece
    if position != len(rows):
        raise RelctlError(f"{len(rows)} predictions for {position} rows to predict")
    return pieces


def _fresh_inputs(ctx: StageContext) -> Path:
    """An empty inputs/ folder for the row files (a redelivered stage writes them again)."""
    inputs = ctx.work_dir / "inputs"
    if inputs.exists():
        shutil.rmtree(inputs)
    inputs.mkdir()
    return inputs


def _job(ctx: StageContext, model: ModelSpec, train: TrainSpec, resources: ResourcesSpec, **fields: Any) -> TrainJob:
    """A TrainJob with the stage's model, optimisation and resource settings; ``fields`` adds the rest."""
    return TrainJob(
        model_path=resolve_backbone(ctx.settings, model.backbone),
        pooling=model.pooling,
        train_embeddings=model.train_embeddings,
        lora=model.lora,
        train=train,
        resources=resources,
        output_dir=str(ctx.work_dir / "out"),
        **fields,
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    gpus = env.get("RELCTL_WORKER_GPUS")
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def train_fold(ctx: StageContext) -> dict[str, Any]:
    payload = TrainPayload.model_validate(ctx.config)
    tasks = payload.tasks or [payload.task]
    folds = {task: load_fold(ctx, payload.fold, task) for task in tasks}
    job = build_job(ctx, payload, folds)
    start = f", continuing the TAPT stage-1 model {job.init_from}" if job.init_from else ""
    sizes = "; ".join(
        f"{task} {len(d.train)} train rows, {len(d.val)} validation rows" + (f", {len(d.holdout)} holdout rows" if d.holdout else "")
        for task, d in folds.items()
    )
    ctx.log(f"training fold {payload.fold}: {sizes} on {job.model_path}{start}")
    result = _run_child(ctx, job)
    outputs = ctx.work_dir / "out"
    artifacts = {"model": ctx.relative(outputs / "model")}
    written = result.get("oof_file")
    if written and len(tasks) == 1:
        artifacts["oof"] = ctx.relative(Path(written))
    elif written:
        # A model for both tasks scored both: each task's evaluation reads its own rows.
        rows = read_predictions(Path(written))
        for task in tasks:
            of_task = [row for row in rows if row["task"] == task]
            if of_task:
                path = outputs / f"oof.{task}.jsonl"
                write_prediction_rows(path, of_task)
                artifacts[f"oof:{task}"] = ctx.relative(path)
    written = result.get("test_file")
    if written:
        pieces = split_predictions(read_predictions(Path(written)), folds)
        if len(tasks) == 1 and set(pieces) == {(payload.task, "test")}:
            artifacts["test"] = ctx.relative(Path(written))  # the file as the model wrote it
        else:
            for (task, kind), piece in pieces.items():  # one task may come without test rows
                path = outputs / f"{kind}.{task}.jsonl"
                write_prediction_rows(path, piece)
                artifacts[kind if len(tasks) == 1 else f"{kind}:{task}"] = ctx.relative(path)
    digest = hashlib.sha256(b"".join(ctx.path(path).read_bytes() for key, path in sorted(artifacts.items()) if key != "model")).hexdigest()
    return {
        "hash": digest,
        "artifacts": artifacts,
        "fold": payload.fold,
        "val": result.get("metrics"),
        "epochs_run": result.get("epochs_run"),
        "resumed_from_step": result.get("resumed_from_step"),
        "steps_run": result.get("steps_run"),
    }


def pretrain_fold(ctx: StageContext) -> dict[str, Any]:
    """TAPT stage 1 for one fold: train the adapter and head on the auxiliary task's rows, less every
    row whose query is in this fold's validation rows of the target task (stage 2 is scored there) or
    in its holdout rows (every fold model is scored there too)."""
    payload = PretrainPayload.model_validate(ctx.config)
    tapt = payload.tapt
    target = load_fold(ctx, payload.fold, payload.task)
    held_out = {e.query for e in [*target.val, *target.holdout]}
    aux = read_examples(ctx.path(ctx.input("ingest", tapt.aux_task)["artifacts"]["train"]))
    rows = [e for e in aux if e.query not in held_out]
    excluded = len(aux) - len(rows)
    if tapt.max_rows and len(rows) > tapt.max_rows:
        keep = sorted(random.Random(payload.seed).sample(range(len(rows)), tapt.max_rows))
        rows = [rows[i] for i in keep]
    if not rows:
        raise InputError(f"no {tapt.aux_task} rows left for TAPT stage 1 once the fold's validation and holdout queries are held out", path="train.tapt")
    inputs = _fresh_inputs(ctx)
    write_rows(
        inputs / "train.jsonl", english_for(ctx, tapt.aux_task), rows, payload.mode, with_label=True,
        target_form=payload.model.target_form, rows_task=tapt.aux_task,
    )  # fmt: skip
    job = _job(ctx, payload.model, payload.stage_train(), payload.resources, train_file=str(inputs / "train.jsonl"))
    ctx.log(
        f"TAPT stage 1 on {tapt.aux_task} for {payload.task} fold {payload.fold}: {len(rows)} rows "
        f"({excluded} held out: their query is in the fold's validation or holdout rows)"
    )
    _run_child(ctx, job)
    model_dir = ctx.work_dir / "out" / "model"
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sorted(model_dir.glob("*.safetensors")))).hexdigest()
    return {"hash": digest, "artifacts": {"model": ctx.relative(model_dir)}, "fold": payload.fold, "rows": len(rows), "held_out": excluded}


def _run_child(ctx: StageContext, job: TrainJob) -> dict[str, Any]:
    """Run one training job in a child process of its own session, relaying its events; its result."""
    job_file = ctx.work_dir / "job.json"
    write_json(job_file, job.model_dump(mode="json"))
    with (ctx.work_dir / "train.log").open("ab") as stderr:
        child = subprocess.Popen(
            launch_command(job_file, job, gpus=os.environ.get("RELCTL_WORKER_GPUS"), port=free_port()),
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=child_env(),
            start_new_session=True,  # its own process group: cancel kills every rank at once
        )
        try:
            with session_scope(ctx.settings.database_url) as session:
                session.execute(update(Stage).where(Stage.id == ctx.stage_id).values(pid=child.pid))
            return _follow(ctx, child, time_limit=job.train.time_limit)
        finally:
            if child.poll() is None:  # whatever ended the following, no training outlives it
                _kill_group(child)


def _follow(ctx: StageContext, child: subprocess.Popen[bytes], *, time_limit: float | None = None) -> dict[str, Any]:
    """Relay the child's JSON events into the run database until it ends.

    Once a second it asks whether to stop: a cancelled stage, or one that another worker took over,
    kills the training; a worker that is stopping, or a training past train.time_limit, has it
    checkpoint at its next step first, and then hands the stage back or fails it."""
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            try:
                events.put(json.loads(raw))
            except ValueError:
                events.put({"event": "output", "text": raw.decode(errors="replace").rstrip()})
        events.put(None)

    threading.Thread(target=read, daemon=True).start()
    result: dict[str, Any] | None = None
    error: str | None = None
    interrupted: dict[str, Any] | None = None
    asked_to_stop: str | None = None  # "stopping" or "time limit", once the child was asked to checkpoint and stop
    asked_at = 0.0
    last_step: int | None = None
    last_log = 0.0
    started = time.monotonic()
    last_check = time.monotonic()
    while True:
        try:
            event = events.get(timeout=1.0)
        except queue.Empty:
            event = {}
        if event is None:
            break
        kind = event.get("event")
        if kind == "step":
            last_step = event["step"]
            ctx.progress(event)
            if time.monotonic() - last_log > LOG_EVERY_SECONDS:
                last_log = time.monotonic()
                ctx.log(f"epoch {event['epoch']} step {event['step']}/{event['total_steps']} loss {event['loss']:.4f}")
        elif kind == "start":
            ctx.progress({**event, "step": event.get("resumed_from_step") or 0})
            resumed = event.get("resumed_from_step")
            ctx.log(f"started on {event.get('device')}: {event.get('total_steps')} steps" + (f", resumed from the checkpoint at step {resumed}" if resumed else ""))
        elif kind == "epoch":
            val = event.get("val") or {}
            ctx.log("epoch {} done: " .format(event["epoch"]) + ", ".join(f"val {k} {v:.4f}" for k, v in val.items() if isinstance(v, float)))
        elif kind == "done":
            result = event["result"]
        elif kind == "interrupted":
            interrupted = event
        elif kind == "error":
            error = f"{event.get('type', 'Error')}: {event.get('message', '')}"
        elif kind == "output":
            ctx.log(event["text"], level="debug")
        if time.monotonic() - last_check > 1.0:
            last_check = time.monotonic()
            if asked_to_stop is None:
                reason = ctx.interruption()
                if reason == "cancelled":
                    _kill_group(child)
                    raise TrainingCancelled("cancelled")
                if reason == "lost":
                    _kill_group(child)
                    raise LeaseLost("another worker took the training over; this one stopped it")
                if reason is None and time_limit and time.monotonic() - started > time_limit:
                    reason = "time limit"
                if reason is not None:
                    asked_to_stop, asked_at = reason, time.monotonic()
                    ctx.log(f"asking the training to checkpoint and stop ({'worker stopping' if reason == 'stopping' else 'past train.time_limit'})")
                    _signal_group(child, signal.SIGTERM)
            elif time.monotonic() - asked_at > STOP_GRACE_SECONDS:
                _kill_group(child)
    code = child.wait()
    if asked_to_stop is not None and result is None:
        step = (interrupted or {}).get("step")
        saved = f"checkpointed at step {step}" if interrupted else f"stopped before a checkpoint (last step {last_step}; the last periodic checkpoint stays)"
        if asked_to_stop == "stopping":
            raise HandedBack(f"the worker is stopping; the training {saved}", step=step)
        raise TimeLimitExceeded(
            f"ran past train.time_limit of {time_limit:.0f} s on {host_name()} and {saved}; `relctl retry` resumes it from its last checkpoint"
        )
    if result is None or code != 0:
        raise RelctlError(error or f"training process exited with status {code}; see {ctx.work_dir / 'train.log'}")
    return result


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    except ProcessLookupError:
        pass


@shared_task(name=names.PRETRAIN, bind=True)
def pretrain(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, pretrain_fold, version=__version__, task_id=self.request.id)


@shared_task(name=names.TRAIN, bind=True)
def train(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, train_fold, version=__version__, task_id=self.request.id)

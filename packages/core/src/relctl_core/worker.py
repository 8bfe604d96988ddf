"""Celery workers: the long-running `relctl worker`, and the in-process one that `relctl run` starts."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.worker import WorkController

from relctl_core.celery_app import configure, get_app
from relctl_core.settings import load_settings


class _EmbeddedWorkController(WorkController):
    """A worker that says when it is consuming, so `relctl run` can wait for it before submitting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.consuming = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.consuming.set()


@contextmanager
def embedded_workers(groups: Sequence[tuple[Sequence[str], int]]) -> Iterator[list[WorkController]]:
    """Worker threads inside this process, one per (queues, concurrency) group, stopped on exit.

    `relctl run` gives trainings a worker of their own, so that one training never waits behind
    cheap CPU stages, nor two trainings fight over the same cores. Each worker gets an app of its
    own: a worker narrows its app's queue selection to its queues, so two cannot share one."""
    settings = load_settings()
    workers: list[_EmbeddedWorkController] = []
    threads: list[threading.Thread] = []
    try:
        for index, (queues, concurrency) in enumerate(g for g in groups if g[0]):
            app = configure(Celery(f"relctl-run-{index}", set_as_current=False), settings)
            app.loader.import_default_modules()
            worker = _EmbeddedWorkController(
                app=app,
                hostname=f"relctl-run-{os.getpid()}-{index}@{socket.gethostname()}",
                pool_cls="threads",
                concurrency=concurrency,
                queues=list(queues),
                loglevel="WARNING",
                without_heartbeat=True,
                without_mingle=True,
                without_gossip=True,
            )
            thread = threading.Thread(target=worker.start, name=f"relctl-worker-{index}", daemon=True)
            thread.start()
            workers.append(worker)
            threads.append(thread)
        for worker in workers:
            worker.consuming.wait(timeout=60)
        yield list(workers)
    finally:
        for worker in workers:
            worker.stop(in_sighandler=False)
        for thread in threads:
            thread.join(timeout=30)


def run_worker(queues: Sequence[str], *, concurrency: int, gpus: str | None, pool: str, loglevel: str) -> None:
    """Run a worker in the foreground until it is stopped (Ctrl-C / SIGTERM finish or hand back the job)."""
    if gpus:
        # Training children inherit this as CUDA_VISIBLE_DEVICES; the worker itself never touches CUDA.
        os.environ["RELCTL_WORKER_GPUS"] = gpus
    app = get_app()
    worker = app.Worker(
        queues=list(queues),
        concurrency=concurrency,
        pool=pool,
        loglevel=loglevel,
        hostname=f"relctl-{'-'.join(queues)}@{socket.gethostname()}",
        without_mingle=True,
        without_gossip=True,
    )
    worker.start()
    if worker.exitcode:
        raise SystemExit(worker.exitcode)

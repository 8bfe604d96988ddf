"""Celery workers: the long-running `relctl worker`, and the in-process one that `relctl run` starts."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from celery import Celery, signals
from celery.worker import WorkController

from relctl_core.celery_app import configure, create_exchange_tables, get_app
from relctl_core.db import forget_inherited_connections
from relctl_core.errors import RelctlError
from relctl_core.pipeline import STOPPING
from relctl_core.settings import load_settings
from relctl_core.sweeper import Sweeper

START_TIMEOUT = 60.0  # seconds an in-process worker may take to connect and start consuming


class EmbeddedWorkerStopped(RelctlError):
    """An in-process worker did not come up, or stopped on its own: its queues would wait forever."""


class _EmbeddedWorkController(WorkController):
    """A worker that says when it is consuming, so `relctl run` can wait for it before submitting,
    and whether it has stopped, and why, so that `relctl run` can tell instead of waiting forever."""

    class Blueprint(WorkController.Blueprint):
        def start(self, parent: Any) -> None:
            # Celery reports the error that ends a worker only to its own logger, which has no
            # handler in `relctl run`: keep it for the message.
            try:
                super().start(parent)
            except BaseException as exc:
                parent.failure = exc
                raise

    def __init__(self, *args: Any, queues: Sequence[str], **kwargs: Any) -> None:
        self.consuming = threading.Event()
        self.ended = threading.Event()
        self.failure: BaseException | None = None
        self.queue_names = list(queues)
        super().__init__(*args, queues=list(queues), **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.consuming.set()

    def start(self) -> None:
        try:
            super().start()
        finally:
            self.ended.set()

    def describe(self) -> str:
        return f"the in-process worker for queues {', '.join(self.queue_names)}"

    def reason(self) -> str:
        if self.failure is None:
            return f"exit status {self.exitcode}" if self.exitcode else "no error given"
        return f"{type(self.failure).__name__}: {self.failure}"

    def wait_consuming(self, timeout: float = START_TIMEOUT) -> None:
        """Return once the worker consumes; raise if it stops or takes longer than timeout."""
        deadline = time.monotonic() + timeout
        while not self.consuming.wait(0.1):
            if self.ended.is_set():
                raise EmbeddedWorkerStopped(f"{self.describe()} stopped while starting ({self.reason()})")
            if time.monotonic() > deadline:
                raise EmbeddedWorkerStopped(f"{self.describe()} did not start consuming within {timeout:.0f} s")


def check_workers(workers: Sequence[WorkController]) -> None:
    """Raise EmbeddedWorkerStopped if an in-process worker has stopped: nothing would take its queues."""
    for worker in workers:
        if isinstance(worker, _EmbeddedWorkController) and worker.ended.is_set():
            raise EmbeddedWorkerStopped(f"{worker.describe()} stopped ({worker.reason()})")


@contextmanager
def embedded_workers(groups: Sequence[tuple[Sequence[str], int]]) -> Iterator[list[WorkController]]:
    """Worker threads inside this process, one per (queues, concurrency) group, stopped on exit.

    `relctl run` gives trainings a worker of their own, so that one training never waits behind
    cheap CPU stages, nor two trainings fight over the same cores. Each worker gets an app of its
    own: a worker narrows its app's queue selection to its queues, so two cannot share one.

    The workers start one after another, each consuming before the next starts and before anything
    is submitted, so that no two of them declare their queues and mailboxes at the same time; one
    that does not come up raises EmbeddedWorkerStopped. Check the yielded workers with
    `check_workers` while waiting on them."""
    settings = load_settings()
    workers: list[_EmbeddedWorkController] = []
    threads: list[threading.Thread] = []
    sweeper: Sweeper | None = None
    try:
        for index, (queues, concurrency) in enumerate(g for g in groups if g[0]):
            app = configure(Celery(f"relctl-run-{index}", set_as_current=False), settings)
            app.loader.import_default_modules()
            worker = _EmbeddedWorkController(
                app=app,
                hostname=f"relctl-run-{os.getpid()}-{index}@{socket.gethostname()}",
                pool_cls="threads",
                concurrency=concurrency,
                queues=queues,
                loglevel="WARNING",
                without_heartbeat=True,
                without_mingle=True,
                without_gossip=True,
            )
            if settings.embedded_broker:  # before the worker binds its queues and mailbox to them
                selected = app.amqp.queues.consume_from.values()
                create_exchange_tables(settings, [app.control.mailbox.exchange.name, *(q.exchange.name for q in selected)])
            thread = threading.Thread(target=worker.start, name=f"relctl-worker-{index}", daemon=True)
            thread.start()
            workers.append(worker)
            threads.append(thread)
            worker.wait_consuming()
        sweeper = Sweeper(settings).start()
        yield list(workers)
    finally:
        if sweeper is not None:
            sweeper.stop()
        for worker in workers:
            worker.stop(in_sighandler=False)
        for thread in threads:
            thread.join(timeout=30)


# Sent by a stopping worker to its pool processes: running stages checkpoint and hand their work back.
HAND_BACK_SIGNAL = signal.SIGUSR2


def _hand_back_on_signal() -> None:
    """In a pool process: the hand-back signal sets STOPPING, which running stages poll."""
    signal.signal(HAND_BACK_SIGNAL, lambda _signum, _frame: STOPPING.set())


def run_worker(queues: Sequence[str], *, concurrency: int, gpus: str | None, pool: str, loglevel: str) -> None:
    """Run a worker in the foreground until it is stopped.

    SIGTERM (systemd stop, a preempted host) or Ctrl-C stops taking new messages and asks the running
    stages to stop: a training checkpoints at its next step and goes back to the queue, to be resumed
    by another worker; short CPU stages finish. The worker's sweeper thread hands on the stages of
    workers that died without that chance."""
    if gpus:
        # Training children inherit this as CUDA_VISIBLE_DEVICES; the worker itself never touches CUDA.
        os.environ["RELCTL_WORKER_GPUS"] = gpus
    settings = load_settings()
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

    def stopping(**_: Any) -> None:
        STOPPING.set()  # the threads and solo pools run stages in this process
        if pool == "prefork":
            for pid in (worker.pool.info or {}).get("processes", []) if worker.pool else []:
                with suppress(ProcessLookupError):
                    os.kill(pid, HAND_BACK_SIGNAL)

    def pool_process_starts(**_: Any) -> None:
        forget_inherited_connections()
        _hand_back_on_signal()

    sweeper = Sweeper(settings)
    signals.worker_process_init.connect(pool_process_starts, weak=False)
    signals.worker_shutting_down.connect(stopping, weak=False)
    # The sweeper starts once the pool's processes are forked: a fork must not copy a thread midway.
    signals.worker_ready.connect(lambda **_: sweeper.start(), weak=False)
    try:
        worker.start()
    finally:
        sweeper.stop()
    if worker.exitcode:
        raise SystemExit(worker.exitcode)

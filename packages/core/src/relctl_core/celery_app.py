"""The Celery app every relctl service shares: broker settings for long GPU jobs, and the one routing table."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from celery import Celery

from relctl_core import names
from relctl_core.settings import Settings, load_settings

TASK_MODULES_GROUP = "relctl.tasks"

# The one routing table: a task's service decides its queue. Trainer jobs go to train.<gpu type>,
# taken from the `gpu` keyword every training message carries.
ROUTES: dict[str, str] = {
    "relctl.core.*": names.CPU_QUEUE,
    "relctl.splitter.*": names.CPU_QUEUE,
    "relctl.evaluator.*": names.CPU_QUEUE,
    "relctl.translator.*": names.TRANSLATE_QUEUE,
    "relctl.trainer.*": "train.<gpu>",
}


def route_for(name: str, kwargs: dict[str, Any] | None = None) -> str:
    for pattern, queue in ROUTES.items():
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            if queue == "train.<gpu>":
                return names.train_queue((kwargs or {}).get("gpu") or "cpu")
            return queue
    raise KeyError(f"no route for task {name}")


def _router(name: str, args: Any, kwargs: dict[str, Any], options: dict[str, Any], task: Any = None, **_: Any) -> dict[str, str]:
    return {"queue": route_for(name, kwargs)}


def task_modules() -> list[str]:
    """The task modules of every installed relctl service (each package registers its own)."""
    return sorted({ep.value for ep in entry_points(group=TASK_MODULES_GROUP)})


def broker_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded_broker:
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            # The exchange tables too, or kombu writes them to a `control` folder in whatever the cwd is.
            "control_folder": str(folder / "control"),
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    # Redis redelivers a message not acknowledged within the visibility timeout: it must exceed the
    # longest training, or a two-hour job runs twice.
    return {"visibility_timeout": settings.visibility_timeout}


def create_exchange_tables(settings: Settings, exchanges: Iterable[str]) -> None:
    """Give the filesystem broker's exchanges their (empty) tables before anything binds a queue.

    kombu's filesystem transport creates a missing table by opening it for writing and only then
    locking and filling it: a bind in another thread or process that opens the table in between reads
    an empty file and fails with a JSON error. Both in-process workers of `relctl run` bind their
    mailboxes to the one `celery.pidbox` table, so one of them could die that way while starting.
    A table that already exists takes kombu's locked read-modify-write path instead."""
    folder = Path(broker_options(settings)["control_folder"])
    for exchange in exchanges:
        table = folder / f"{exchange}.exchange"
        if table.exists():
            continue
        handle, draft = tempfile.mkstemp(dir=folder, prefix=f".{exchange}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as f:
                f.write("[]")
            try:
                os.link(draft, table)  # whole at once, and unlike a rename it keeps a table made meanwhile
            except FileExistsError:
                pass
        finally:
            os.unlink(draft)


def configure(app: Celery, settings: Settings) -> Celery:
    options = broker_options(settings)
    if settings.embedded_broker:
        from relctl_core import fsbroker

        fsbroker.install()  # messages written and taken whole (see fsbroker.py)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=options,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes=(_router,),
        task_default_queue=names.CPU_QUEUE,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        imports=task_modules(),
    )
    return app


@lru_cache(maxsize=1)
def get_app() -> Celery:
    """The process-wide app, configured from the environment on first use."""
    app = Celery("relctl", set_as_current=True)
    return configure(app, load_settings())


def reset_app() -> None:
    """Forget the configured app (settings changed, e.g. between tests)."""
    get_app.cache_clear()

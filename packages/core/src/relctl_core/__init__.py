"""Experiment schema, settings, data loading, run database, artifact and model stores, Celery app and stage graph for relctl."""

from typing import Any


def __getattr__(name: str) -> Any:
    # The version is read from the installed metadata when asked for, not on every import: reading it
    # imports importlib.metadata, a good part of a short command's start-up.
    if name == "__version__":
        from importlib.metadata import version

        return version("relctl-core")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

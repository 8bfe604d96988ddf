"""Experiment schema, settings, data loading, run database, artifact and model stores, Celery app and stage graph for relctl."""

from importlib.metadata import version

__version__ = version("relctl-core")

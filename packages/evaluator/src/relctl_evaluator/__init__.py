"""Metrics, baselines, cross-validation aggregation and reports for relctl."""

from importlib.metadata import version

__version__ = version("relctl-evaluator")

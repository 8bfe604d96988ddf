"""Leakage-free cross-validation folds for relctl (category-aware, query-grouped) and their audit."""

from importlib.metadata import version

__version__ = version("relctl-splitter")

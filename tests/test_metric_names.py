"""Core names the metrics the evaluator writes without importing it: the two lists must stay one."""

from __future__ import annotations

from relctl_core.leaderboard import KNOWN_METRICS
from relctl_evaluator.metrics import metric_names


def test_the_leaderboard_knows_the_metrics_the_evaluator_writes_in_its_order() -> None:
    # Before any run is scored, these are the valid --metric values, and the order of every list of them.
    assert list(KNOWN_METRICS) == metric_names()

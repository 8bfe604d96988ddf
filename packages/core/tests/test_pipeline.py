"""The stage graph, the routing table and how stage states combine into run and experiment states."""

from __future__ import annotations

import pytest

from relctl_core import names
from relctl_core.celery_app import ROUTES, route_for
from relctl_core.pipeline import _combined_status


@pytest.mark.parametrize(
    ("task", "gpu", "queue"),
    [
        (names.INGEST, "cpu", "cpu"),
        (names.SPLIT, "cpu", "cpu"),
        (names.BASELINE, "cpu", "cpu"),
        (names.EVALUATE, "cpu", "cpu"),
        (names.TRANSLATE, "cpu", "translate"),
        (names.TRAIN, "cpu", "train.cpu"),
        (names.TRAIN, "A100", "train.a100"),
        (names.TRAIN, "h100", "train.h100"),
    ],
)
def test_one_routing_table_sends_each_service_to_its_queue(task: str, gpu: str, queue: str) -> None:
    assert route_for(task, {"gpu": gpu}) == queue


def test_every_task_name_has_a_route_and_unknown_ones_fail() -> None:
    for name in (names.INGEST, names.TRANSLATE, names.SPLIT, names.TRAIN, names.BASELINE, names.EVALUATE):
        assert any(name.startswith(pattern.rstrip("*")) for pattern in ROUTES)
    with pytest.raises(KeyError):
        route_for("other.service.task")


@pytest.mark.parametrize("statuses", [["done", "done"], ["done", "running"], ["failed", "pending"], ["cancelled", "done"]])
def test_combined_status(statuses: list[str]) -> None:
    expected = {("done", "done"): "done", ("done", "running"): "running", ("failed", "pending"): "failed", ("cancelled", "done"): "cancelled"}
    assert _combined_status(statuses) == expected[tuple(statuses)]

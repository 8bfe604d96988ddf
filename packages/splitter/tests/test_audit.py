"""Tests of the split audit on hand-made splits whose metrics are worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relctl_splitter.audit import audit_split

# Fold 0 holds rows 0-2, fold 1 rows 3-5. Query "q1" sits in both folds (rows 0 and 3); category
# group "a,b" (depth 2) sits in both folds (rows 0, 1 and 4).
ROWS = {
    "queries": ["q1", "q2", "q3", "q1", "q4", "q5"],
    "targets": ["a,b,c", "a,b,d", "e,f", "g,h", "a,b", "g,h,i"],
    "labels": [1, 1, 0, 1, 0, 0],
    "languages": ["en", "de", "en", "ja", "ja", "ja"],
}
FOLDS = np.array([0, 0, 0, 1, 1, 1])


def test_qc_audit_reports_sizes_balance_and_leakage() -> None:
    report = audit_split(task="QC", folds=FOLDS, category_depth=2, **ROWS)
    assert report["n_folds"] == 2
    first, second = report["folds"]
    assert first == {
        "fold": 0,
        "rows": 3,
        "positive_rate": pytest.approx(2 / 3),
        "languages": {"de": 1, "en": 2},
        "query_leakage": pytest.approx(1 / 3),
        "group_leakage": pytest.approx(2 / 3),
    }
    assert second["languages"] == {"ja": 3}
    assert second["positive_rate"] == pytest.approx(1 / 3)
    assert second["query_leakage"] == pytest.approx(1 / 3)
    assert second["group_leakage"] == pytest.approx(1 / 3)
    assert report["query_leakage"] == pytest.approx(1 / 3)
    assert report["group_leakage"] == pytest.approx(0.5)
    assert report["size_ratio"] == 1.0
    assert report["positive_rate_spread"] == pytest.approx(1 / 3)


def test_group_depth_changes_group_leakage() -> None:
    # at depth 1 group "a" (rows 0, 1, 4) spans both folds while "e" and "g" each stay in one
    report = audit_split(task="QC", folds=FOLDS, category_depth=1, **ROWS)
    assert [fold["group_leakage"] for fold in report["folds"]] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    unsplit = audit_split(task="QC", folds=np.array([0, 0, 1, 1, 0, 1]), category_depth=1, **ROWS)
    assert unsplit["group_leakage"] == 0.0


def test_qi_audit_has_no_group_leakage_and_is_json_serialisable() -> None:
    report = audit_split(task="QI", folds=np.array([1, 0, 0, 1, 0, 1]), category_depth=2, **ROWS)
    assert report["group_leakage"] is None
    assert all(fold["group_leakage"] is None for fold in report["folds"])
    assert report["query_leakage"] == 0.0
    assert json.loads(json.dumps(report)) == report


def test_unequal_fold_sizes_give_size_ratio() -> None:
    report = audit_split(task="QI", folds=np.array([0, 0, 0, 0, 1, 1]), category_depth=2, **ROWS)
    assert report["size_ratio"] == 2.0


@pytest.mark.parametrize(
    ("task", "folds", "message"),
    [
        ("QC", np.array([0, 0, 2, 2, 0, 2]), r"fold\(s\) \[1\] have no rows"),
        ("QC", np.array([0, 1, 0]), "equal lengths"),
        ("QX", FOLDS, "unknown task"),
    ],
)
def test_bad_audit_inputs_raise(task: str, folds: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit_split(task=task, folds=folds, category_depth=2, **ROWS)

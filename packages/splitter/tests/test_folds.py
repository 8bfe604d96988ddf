"""Tests of fold assignment on small synthetic datasets built in code."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from relctl_core.data import category_group, category_levels

from relctl_splitter.audit import audit_split
from relctl_splitter.folds import assign_folds

LANGUAGES = ("en", "de", "ja", "pt")


def qi_rows(n_queries: int = 300, seed: int = 0) -> dict[str, list]:
    """QI rows where each query has 1 to 4 items, so queries repeat across rows."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"queries": [], "targets": [], "labels": [], "languages": []}
    for q in range(n_queries):
        language = LANGUAGES[q % len(LANGUAGES)]
        for item in range(int(rng.integers(1, 5))):
            rows["queries"].append(f"query {q}")
            rows["targets"].append(f"item {q}-{item}")
            rows["labels"].append(int(rng.random() < 0.7))
            rows["languages"].append(language)
    return rows


def qc_rows(*, chained: bool, n_groups: int = 40, seed: int = 0) -> dict[str, list]:
    """QC rows over ``n_groups`` depth-2 category groups with repeated queries.

    Each group has its own queries (some repeated inside it) and one query shared with a
    neighbouring group: with ``chained`` the neighbour is the next group, which links all groups
    into one component; without, groups are linked in pairs (0-1, 2-3, ...).
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"queries": [], "targets": [], "labels": [], "languages": []}

    def add(query: str, group: int) -> None:
        # the third level differs between rows, so only the first two levels make the group
        rows["queries"].append(query)
        rows["targets"].append(f"top {group % 7},sub {group},leaf {int(rng.integers(3))}")
        rows["labels"].append(int(rng.random() < 0.7))
        rows["languages"].append(LANGUAGES[int(rng.integers(len(LANGUAGES)))])

    for group in range(n_groups):
        for q in range(int(rng.integers(8, 16))):
            for _ in range(int(rng.integers(1, 3))):
                add(f"query {group}-{q}", group)
        link = group if chained else group - group % 2
        add(f"shared {link}", group)
        if chained and group > 0:
            add(f"shared {group - 1}", group)
    return rows


def folds_per_key(keys: list[str], folds: np.ndarray) -> dict[str, set[int]]:
    spread: dict[str, set[int]] = defaultdict(set)
    for key, fold in zip(keys, folds.tolist(), strict=True):
        spread[key].add(fold)
    return spread


def test_category_levels_split_on_comma_without_space() -> None:
    path = "automobiles, parts & accessories,exterior parts,locks & hardware"
    assert category_levels(path) == ["automobiles, parts & accessories", "exterior parts", "locks & hardware"]
    assert category_group(path, 1) == "automobiles, parts & accessories"
    assert category_group(path, 2) == "automobiles, parts & accessories,exterior parts"
    assert category_group(path, 5) == path


def test_category_group_rejects_depth_below_one() -> None:
    with pytest.raises(ValueError, match="depth"):
        category_group("a,b", 0)


@pytest.mark.parametrize(
    ("task", "strategy"),
    [("QI", "category-aware"), ("QC", "category-aware"), ("QC", "random"), ("QI", "stratified")],
)
def test_same_seed_same_folds_and_other_seed_other_folds(task: str, strategy: str) -> None:
    rows = qi_rows() if task == "QI" else qc_rows(chained=True)
    first = assign_folds(task=task, strategy=strategy, n_folds=5, seed=7, **rows)
    again = assign_folds(task=task, strategy=strategy, n_folds=5, seed=7, **rows)
    other = assign_folds(task=task, strategy=strategy, n_folds=5, seed=8, **rows)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (len(rows["queries"]),)
    assert set(first.tolist()) == set(range(5))


def test_qi_category_aware_keeps_each_query_in_one_fold_and_balances_labels() -> None:
    rows = qi_rows()
    folds = assign_folds(task="QI", strategy="category-aware", n_folds=5, **rows)
    assert all(len(spread) == 1 for spread in folds_per_key(rows["queries"], folds).values())
    report = audit_split(task="QI", folds=folds, category_depth=2, **rows)
    assert report["query_leakage"] == 0.0
    assert report["group_leakage"] is None
    assert report["size_ratio"] < 1.05
    assert report["positive_rate_spread"] < 0.05


def test_qc_category_aware_without_giant_component_leaks_nothing() -> None:
    rows = qc_rows(chained=False)
    folds = assign_folds(task="QC", strategy="category-aware", n_folds=4, category_depth=2, **rows)
    groups = [category_group(path, 2) for path in rows["targets"]]
    assert all(len(spread) == 1 for spread in folds_per_key(groups, folds).values())
    assert all(len(spread) == 1 for spread in folds_per_key(rows["queries"], folds).values())
    report = audit_split(task="QC", folds=folds, category_depth=2, **rows)
    assert report["group_leakage"] == 0.0
    assert report["query_leakage"] == 0.0
    assert report["size_ratio"] < 1.2


def test_qc_category_aware_on_one_component_keeps_groups_whole_and_reports_the_broken_query_links() -> None:
    rows = qc_rows(chained=True)
    folds = assign_folds(task="QC", strategy="category-aware", n_folds=4, category_depth=2, **rows)
    groups = [category_group(path, 2) for path in rows["targets"]]
    assert all(len(spread) == 1 for spread in folds_per_key(groups, folds).values())

    # four balanced folds cannot hold a chain of linked groups whole: some "shared" queries must
    # straddle folds, and only those may
    split_queries = {q for q, spread in folds_per_key(rows["queries"], folds).items() if len(spread) > 1}
    assert split_queries
    assert all(query.startswith("shared") for query in split_queries)

    report = audit_split(task="QC", folds=folds, category_depth=2, **rows)
    leaking = np.array([query in split_queries for query in rows["queries"]])
    expected = np.mean([leaking[folds == fold].mean() for fold in range(4)])
    assert report["query_leakage"] == pytest.approx(expected)
    assert report["group_leakage"] == 0.0
    assert report["size_ratio"] < 1.2

    random_folds = assign_folds(task="QC", strategy="random", n_folds=4, **rows)
    random_report = audit_split(task="QC", folds=random_folds, category_depth=2, **rows)
    assert report["query_leakage"] < random_report["query_leakage"] / 4


@pytest.mark.parametrize("strategy", ["random", "stratified"])
def test_baselines_leak_repeated_queries_and_groups(strategy: str) -> None:
    rows = qc_rows(chained=False)
    folds = assign_folds(task="QC", strategy=strategy, n_folds=5, **rows)
    report = audit_split(task="QC", folds=folds, category_depth=2, **rows)
    assert report["query_leakage"] > 0.2
    assert report["group_leakage"] > 0.9
    sizes = [fold["rows"] for fold in report["folds"]]
    assert max(sizes) - min(sizes) <= 1


def test_stratified_spreads_every_language_label_pair_evenly() -> None:
    rows = qi_rows()
    folds = assign_folds(task="QI", strategy="stratified", n_folds=5, **rows)
    per_fold: Counter[tuple[str, int, int]] = Counter(
        zip(rows["languages"], rows["labels"], folds.tolist(), strict=True)
    )
    for language in LANGUAGES:
        for label in (0, 1):
            counts = [per_fold[(language, label, fold)] for fold in range(5)]
            assert max(counts) - min(counts) <= 1, (language, label, counts)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "QX"}, "unknown task"),
        ({"strategy": "grouped"}, "unknown split strategy"),
        ({"n_folds": 1}, "n_folds must be >= 2"),
        ({"n_folds": 4}, "exceeds the number of distinct queries"),
        ({"labels": [0, 1, 2, 1]}, "labels must be 0 or 1"),
        ({"languages": ["en"]}, "equal lengths"),
        ({"category_depth": 0}, "depth"),
    ],
)
def test_bad_arguments_raise(change: dict, message: str) -> None:
    arguments = {
        "task": "QI",
        "strategy": "category-aware",
        "queries": ["a", "a", "b", "c"],
        "targets": ["x", "y", "z", "w"],
        "labels": [0, 1, 1, 1],
        "languages": ["en", "en", "de", "de"],
        "n_folds": 3,
    }
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        assign_folds(**arguments)


@pytest.mark.parametrize(("strategy", "what"), [("category-aware", "category groups"), ("random", "rows")])
def test_more_folds_than_groups_raise(strategy: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        assign_folds(
            task="QC",
            strategy=strategy,
            queries=["a", "b", "c"],
            targets=["x,1", "x,2", "y,1"],
            labels=[1, 0, 1],
            languages=["en", "en", "en"],
            n_folds=4 if strategy == "random" else 3,
            category_depth=1,
        )

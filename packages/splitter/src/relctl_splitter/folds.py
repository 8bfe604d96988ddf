"""Cross-validation fold assignment: category-aware (query- and category-grouped), random and stratified K-fold.

Category-aware splits follow the method in ARCHITECTURE.md:

* QI: every row of one query lands in one fold; folds are balanced in size and stratified by
  language x label as far as the query groups allow.
* QC: every category group (the first ``category_depth`` levels of the category path) lands in one
  fold, and so should every query. Rows linked by a shared query or a shared group form connected
  components, and on real data one component holds nearly everything (the QC sample at depth 2:
  15,430 of 15,981 rows), so both constraints cannot hold at once with balanced folds.
  The category-group constraint is kept strict: a group is never split. Query links are kept as far
  as balance allows, breaking those that leak fewest rows:

  1. merge the groups each query touches into one placement unit, queries with the most rows first,
     while a unit stays within ``MAX_UNIT_SHARE`` of a fold;
  2. place the units into folds, largest first, balancing fold sizes and language x label counts;
  3. move single groups between folds by simulated annealing to close the links still open, never
     taking a fold's positive or negative row count further than ``CLASS_COUNT_TOLERANCE`` from its
     target.

  Queries whose rows still end up in several folds are the residual leakage that
  ``relctl_splitter.audit.audit_split`` reports (on the QC sample, 5 folds: about 4% of rows at
  depth 2 and 2% at depth 3, against 14% for a random split).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from relctl_core.data import category_group

TASKS = ("QC", "QI")
STRATEGIES = ("category-aware", "random", "stratified")

# A merged QC unit may hold at most this share of a fold's target size: larger units keep more
# queries whole before packing but give the packer coarse pieces it cannot balance.
MAX_UNIT_SHARE = 0.25

# Annealing moves keep each fold's positive and negative row counts within this share of their
# targets. With every fold inside that band, fold sizes are within 1.05 / 0.95 = 1.11 of each other,
# and a 68% positive rate stays between 66% and 70%.
CLASS_COUNT_TOLERANCE = 0.05

# Annealing schedule: moves tried per group that shares a query with another group, and the
# temperature (in leaked rows) it falls through; a move leaking 2 more rows is taken half the
# time at the start and almost never at the end.
ANNEALING_STEPS_PER_GROUP = 500
ANNEALING_START = 3.0
ANNEALING_END = 0.05
ANNEALING_CHUNK = 65_536

def assign_folds(
    *,
    task: str,
    strategy: str,
    queries: Sequence[str],
    targets: Sequence[str],
    labels: Sequence[int],
    languages: Sequence[str],
    n_folds: int,
    category_depth: int = 2,
    seed: int = 42,
) -> np.ndarray:
    """The fold (0..n_folds-1) of each row, in row order; the same inputs and seed give the same folds.

    ``targets`` are category paths for QC and item titles for QI; ``strategy`` is "category-aware",
    "random" or "stratified" (stratified by language x label). Raises ValueError for an unknown task
    or strategy, inputs of unequal length, labels other than 0/1, or ``n_folds`` outside
    2..number of groups (query groups for QI, category groups for QC, rows for the baselines).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    n_rows = len(queries)
    if not len(targets) == len(labels) == len(languages) == n_rows:
        raise ValueError(
            f"queries, targets, labels and languages must have equal lengths, got "
            f"{n_rows}, {len(targets)}, {len(labels)}, {len(languages)}"
        )
    label_array = np.asarray(labels, dtype=np.int64)
    if n_rows and not np.isin(label_array, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    if category_depth < 1:
        raise ValueError(f"category depth must be >= 1, got {category_depth}")

    rng = np.random.default_rng(seed)
    stratum_of_row = _stratum_of_row(languages, label_array)
    if strategy == "category-aware":
        _, query_of_row = np.unique(np.asarray(queries, dtype=object), return_inverse=True)
        if task == "QI":
            _require_groups(n_folds, int(query_of_row.max(initial=-1)) + 1, "distinct queries")
            return _pack_units(query_of_row, stratum_of_row, n_folds, rng)[query_of_row]
        groups = [category_group(path, category_depth) for path in targets]
        _, group_of_row = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
        _require_groups(n_folds, int(group_of_row.max(initial=-1)) + 1, "category groups")
        links = _query_links(query_of_row, group_of_row)
        unit_of_group = _merge_linked_groups(links, np.bincount(group_of_row), n_folds, rng)
        fold_of_group = _pack_units(unit_of_group[group_of_row], stratum_of_row, n_folds, rng)[unit_of_group]
        _close_query_links(fold_of_group, group_of_row, label_array, links, n_folds, rng)
        return fold_of_group[group_of_row]

    _require_groups(n_folds, n_rows, "rows")
    if strategy == "random":
        fold_of_row = np.empty(n_rows, dtype=np.int64)
        fold_of_row[rng.permutation(n_rows)] = np.arange(n_rows) % n_folds
        return fold_of_row
    return _stratified_folds(stratum_of_row, n_folds, rng)


def _require_groups(n_folds: int, n_groups: int, what: str) -> None:
    if n_folds > n_groups:
        raise ValueError(f"n_folds={n_folds} exceeds the number of {what} ({n_groups})")


def _stratum_of_row(languages: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """An integer id per (language, label) pair."""
    _, language_of_row = np.unique(np.asarray(languages, dtype=object), return_inverse=True)
    return language_of_row.astype(np.int64) * 2 + labels


def _stratified_folds(stratum_of_row: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Deal each stratum's shuffled rows round-robin, carrying the dealer on between strata.

    Carrying the position on keeps total fold sizes within one row of each other, while every
    stratum is still spread within one row per fold.
    """
    fold_of_row = np.empty(len(stratum_of_row), dtype=np.int64)
    dealt = int(rng.integers(n_folds))
    for stratum in rng.permutation(np.unique(stratum_of_row)):
        rows = rng.permutation(np.flatnonzero(stratum_of_row == stratum))
        fold_of_row[rows] = (dealt + np.arange(len(rows))) % n_folds
        dealt += len(rows)
    return fold_of_row


class _Clusters:
    """Union-find over category groups that tracks each cluster's row count and the number of clusters."""

    def __init__(self, sizes: np.ndarray) -> None:
        self.parent = list(range(len(sizes)))
        self.size = [int(s) for s in sizes]
        self.count = len(sizes)

    def root(self, node: int) -> int:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def join(self, roots: list[int]) -> None:
        keeper = roots[0]
        for other in roots[1:]:
            self.parent[other] = keeper
            self.size[keeper] += self.size[other]
        self.count -= len(roots) - 1


def _query_links(query_of_row: np.ndarray, group_of_row: np.ndarray) -> list[list[tuple[int, int]]]:
    """For each query with rows in more than one category group: its (group, rows in that group) pairs."""
    pairs, pair_rows = np.unique(np.stack([query_of_row, group_of_row], axis=1), axis=0, return_counts=True)
    boundaries = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    links = []
    for query_pairs, query_pair_rows in zip(
        np.split(pairs, boundaries), np.split(pair_rows, boundaries), strict=True
    ):
        if len(query_pairs) > 1:
            links.append(list(zip(query_pairs[:, 1].tolist(), query_pair_rows.tolist(), strict=True)))
    return links


def _merge_linked_groups(
    links: list[list[tuple[int, int]]], group_sizes: np.ndarray, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """The placement unit of each category group: groups merged along the queries they share.

    Queries are honoured with the most rows first (a broken link leaks all of that query's rows),
    then the smallest merged unit first, then in seeded random order. A merge is skipped when the
    unit would exceed ``MAX_UNIT_SHARE`` of a fold or when fewer than ``n_folds`` units would remain.
    """
    unit_cap = MAX_UNIT_SHARE * group_sizes.sum() / n_folds
    clusters = _Clusters(group_sizes)
    tie_breaks = rng.permutation(len(links))

    def priority(i: int) -> tuple[int, int, int]:
        groups = [group for group, _ in links[i]]
        return -sum(rows for _, rows in links[i]), int(group_sizes[groups].sum()), int(tie_breaks[i])

    for i in sorted(range(len(links)), key=priority):
        roots = sorted({clusters.root(group) for group, _ in links[i]})
        if len(roots) < 2:
            continue
        merged_size = sum(clusters.size[root] for root in roots)
        if merged_size <= unit_cap and clusters.count - (len(roots) - 1) >= n_folds:
            clusters.join(roots)

    root_of_group = np.array([clusters.root(group) for group in range(len(group_sizes))], dtype=np.int64)
    return np.unique(root_of_group, return_inverse=True)[1]


def _pack_units(
    unit_of_row: np.ndarray, stratum_of_row: np.ndarray, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Place whole units into folds, largest first, balancing fold sizes and language x label counts.

    Each unit goes to the fold where it most reduces the squared distance of the fold's size and
    of its per-stratum counts from their targets (total / n_folds). For a unit of size n with
    stratum counts u, that reduction ranks folds by n * size_f + u . counts_f, so only those terms
    are computed. Ties go to a seeded random fold.
    """
    n_units = int(unit_of_row.max(initial=-1)) + 1
    n_strata = int(stratum_of_row.max(initial=-1)) + 1
    unit_strata = np.zeros((n_units, n_strata), dtype=np.int64)
    np.add.at(unit_strata, (unit_of_row, stratum_of_row), 1)
    unit_sizes = unit_strata.sum(axis=1)

    fold_strata = np.zeros((n_folds, n_strata), dtype=np.int64)
    fold_sizes = np.zeros(n_folds, dtype=np.int64)
    fold_of_unit = np.empty(n_units, dtype=np.int64)
    shuffled = rng.permutation(n_units)
    for unit in shuffled[np.argsort(-unit_sizes[shuffled], kind="stable")]:
        cost = unit_sizes[unit] * fold_sizes + fold_strata @ unit_strata[unit]
        tied = np.flatnonzero(cost == cost.min())
        fold = int(tied[rng.integers(len(tied))])
        fold_of_unit[unit] = fold
        fold_sizes[fold] += unit_sizes[unit]
        fold_strata[fold] += unit_strata[unit]
    return fold_of_unit


def _close_query_links(
    fold_of_group: np.ndarray,
    group_of_row: np.ndarray,
    label_of_row: np.ndarray,
    links: list[list[tuple[int, int]]],
    n_folds: int,
    rng: np.random.Generator,
) -> None:
    """Move category groups between folds (in place) so that fewer queries have rows in several folds.

    A query whose rows span several folds leaks all of them, so a move costs the rows of the
    queries it splits and earns those of the queries it makes whole. Greedy moves stall where
    closing one link opens another, so moves are chosen by simulated annealing: a random linked group to a random other fold, taken when it leaks no more rows or,
    with a chance that shrinks as the temperature falls, when it leaks more. A move must keep both
    folds' positive and negative row counts within ``CLASS_COUNT_TOLERANCE`` of their targets. The
    assignment that leaked least is kept.
    """
    if not links:
        return
    query_rows = [sum(rows for _, rows in link) for link in links]
    queries_of_group: dict[int, list[tuple[int, int]]] = {}
    fold_rows_of_query = [[0] * n_folds for _ in links]
    for query, link in enumerate(links):
        for group, rows in link:
            queries_of_group.setdefault(group, []).append((query, rows))
            fold_rows_of_query[query][int(fold_of_group[group])] += rows
    folds_of_query = [sum(1 for rows in spread if rows) for spread in fold_rows_of_query]
    movable = sorted(queries_of_group)

    group_classes = np.zeros((len(fold_of_group), 2), dtype=np.int64)
    np.add.at(group_classes, (group_of_row, label_of_row), 1)
    fold_classes = np.zeros((n_folds, 2), dtype=np.int64)
    np.add.at(fold_classes, fold_of_group, group_classes)
    class_targets = group_classes.sum(axis=0) / n_folds
    low = (class_targets * (1 - CLASS_COUNT_TOLERANCE)).tolist()
    high = (class_targets * (1 + CLASS_COUNT_TOLERANCE)).tolist()
    counts = fold_classes.tolist()
    classes = group_classes.tolist()

    def move(group: int, source: int, target: int) -> int:
        """Move a group's rows of linked queries from one fold to another; the change in leaked rows."""
        change = 0
        for query, rows in queries_of_group[group]:
            spread = fold_rows_of_query[query]
            before = folds_of_query[query]
            spread[source] -= rows
            after = before - (spread[source] == 0) + (spread[target] == 0)
            spread[target] += rows
            folds_of_query[query] = after
            if (before > 1) != (after > 1):
                change += query_rows[query] if after > 1 else -query_rows[query]
        return change

    leaked = sum(rows for rows, n in zip(query_rows, folds_of_query, strict=True) if n > 1)
    best_leaked, best_folds = leaked, fold_of_group.copy()
    n_steps = ANNEALING_STEPS_PER_GROUP * len(movable)
    for temperature, pick, shift, chance in _annealing_steps(n_steps, len(movable), n_folds, rng):
        group = movable[pick]
        source = int(fold_of_group[group])
        target = (source + shift) % n_folds
        group_counts, source_counts, target_counts = classes[group], counts[source], counts[target]
        if any(
            source_counts[c] - group_counts[c] < low[c] or target_counts[c] + group_counts[c] > high[c]
            for c in (0, 1)
        ):
            continue
        change = move(group, source, target)
        if change > 0 and chance >= math.exp(-change / temperature):
            move(group, target, source)
            continue
        fold_of_group[group] = target
        for c in (0, 1):
            source_counts[c] -= group_counts[c]
            target_counts[c] += group_counts[c]
        leaked += change
        if leaked < best_leaked:
            best_leaked, best_folds = leaked, fold_of_group.copy()
    fold_of_group[:] = best_folds


def _annealing_steps(
    n_steps: int, n_movable: int, n_folds: int, rng: np.random.Generator
) -> Iterator[tuple[float, int, int, float]]:
    """(temperature, movable group, fold shift, acceptance draw) per step, cooling geometrically.

    Drawn in chunks so that long schedules need neither one random call per step nor all draws at once.
    """
    cooling = (ANNEALING_END / ANNEALING_START) ** (1 / max(n_steps - 1, 1))
    for start in range(0, n_steps, ANNEALING_CHUNK):
        size = min(ANNEALING_CHUNK, n_steps - start)
        temperatures = ANNEALING_START * cooling ** np.arange(start, start + size)
        yield from zip(
            temperatures.tolist(),
            rng.integers(n_movable, size=size).tolist(),
            rng.integers(1, n_folds, size=size).tolist(),
            rng.random(size).tolist(),
            strict=True,
        )

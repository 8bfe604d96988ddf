"""Synthetic QC- and QI-like rows for the split benchmark, shaped after the real QC sample.

What the split sees of real data, measured on ../shared/data/qc-sample (15,981 rows):

- a category taxonomy of 35 top levels, about 10 second levels under each, then a third, fourth and
  sometimes fifth level (paths of 2 to 5 levels; some level names contain ", "), and category paths
  whose frequencies are heavy-tailed (median 2 rows, 99th percentile 33, largest 146: a log-normal
  with sigma 1.2 has the same spread);
- two rows of one query share no level in 40% of pairs, only the first level in 26%, the first two in
  18%, three in 13% and four in 3%: a query's candidate categories cluster around one place in the
  taxonomy, so queries link category groups mostly inside one branch, and across branches too;
- ten languages (pt 11%, fr, en, ko, es 11% each, ja 10%, pl, it 9%, de, ar 8-9%), 68% relevant,
  more often the nearer a category is to the query's own (and from 59% for ko to 80% for ja).

The rows here follow that: each query has a home category (drawn by popularity) and a language; each of
its rows (1 + Poisson(4), so 5 a query on average, as in the competition's full data) draws how many
levels it shares with the home (at least 1, 2, 3, 4 with chance 0.77, 0.58, 0.40, 0.18, which gives
the pair shares above) and then a category by popularity inside that branch; the label's chance grows
with the levels shared. QI rows are the same queries with an item title in place of the category.
Everything comes from one seed, so every process of the benchmark builds the same rows.
"""

from __future__ import annotations

import numpy as np

LANGUAGES = ("pt", "fr", "en", "ko", "es", "ja", "pl", "it", "de", "ar")
LANGUAGE_WEIGHTS = (1757, 1749, 1736, 1735, 1684, 1584, 1475, 1474, 1429, 1358)
# Added to the chance of "relevant": the sample's per-language positive rates around its 68%.
LANGUAGE_OFFSETS = (0.01, 0.01, -0.04, -0.09, 0.04, 0.12, -0.01, -0.01, -0.02, 0.0)
# Chance that a row's category shares at least 1, 2, 3, 4 levels with its query's home category.
SHARES_AT_LEAST = (0.77, 0.58, 0.43, 0.19)
# Chance of "relevant" by the number of levels shared with the home category (0 to 4 or more).
RELEVANT_BY_SHARED = (0.42, 0.64, 0.74, 0.82, 0.88)
ROWS_PER_QUERY = 5
TOP_LEVELS = 35
_SYLLABLES = ("ka", "lo", "mi", "ra", "te", "su", "no", "vi", "be", "do", "xa", "pe", "zu", "gi", "fo", "ha")


def make_rows(task: str, n_rows: int, seed: int = 0) -> dict[str, list]:
    """``n_rows`` rows of ``task`` ("QC" or "QI") as the split takes them: queries, targets, labels, languages."""
    rng = np.random.default_rng(seed)
    paths, ancestors, popularity = _taxonomy(np.random.default_rng(seed + 1))
    order = np.argsort(np.asarray(paths, dtype=object), kind="stable")
    paths = [paths[i] for i in order]
    ancestors, popularity = ancestors[order], popularity[order]
    # Paths sorted as strings put every branch's leaves next to each other: a branch is a range of
    # leaves, so drawing a leaf inside a branch is one search in the cumulative popularity.
    cumulative = np.concatenate([[0.0], np.cumsum(popularity)])
    branch_start, branch_end = _branch_ranges(ancestors)

    n_queries = max(1, n_rows // ROWS_PER_QUERY)
    rows_of_query = 1 + rng.poisson(ROWS_PER_QUERY - 1, size=n_queries)
    while rows_of_query.sum() < n_rows:
        rows_of_query[rng.integers(n_queries)] += 1
    query_of_row = np.repeat(np.arange(n_queries), rows_of_query)[:n_rows]

    language_of_query = rng.choice(len(LANGUAGES), size=n_queries, p=_normalised(LANGUAGE_WEIGHTS))
    home_of_query = np.searchsorted(cumulative, rng.random(n_queries) * cumulative[-1], side="right") - 1
    home = home_of_query[query_of_row]
    levels = (rng.random((n_rows, 1)) < np.asarray(SHARES_AT_LEAST)).sum(axis=1)
    leaf = _leaf_in_branch(rng, home, levels, ancestors, branch_start, branch_end, cumulative)
    # A query rarely meets one category twice: redraw a repeated (query, category) one level higher.
    for _ in range(4):
        pair = query_of_row.astype(np.int64) * len(paths) + leaf
        _, first = np.unique(pair, return_index=True)
        repeated = np.ones(n_rows, dtype=bool)
        repeated[first] = False
        if not repeated.any():
            break
        levels[repeated] = np.maximum(levels[repeated] - 1, 0)
        leaf[repeated] = _leaf_in_branch(
            rng, home[repeated], levels[repeated], ancestors, branch_start, branch_end, cumulative
        )

    shared = (ancestors[leaf] == ancestors[home]).cumprod(axis=1).sum(axis=1)
    language = language_of_query[query_of_row]
    chance = np.asarray(RELEVANT_BY_SHARED)[np.minimum(shared, 4)] + np.asarray(LANGUAGE_OFFSETS)[language]
    labels = (rng.random(n_rows) < chance).astype(int).tolist()

    words = _words(rng, 4000)
    first_word = rng.integers(len(words), size=n_queries)
    second_word = rng.integers(len(words), size=n_queries)
    query_text = [
        f"{words[a]} {words[b]} {np.base_repr(q, 36).lower()}"
        for q, (a, b) in enumerate(zip(first_word.tolist(), second_word.tolist(), strict=True))
    ]
    queries = [query_text[q] for q in query_of_row.tolist()]
    if task == "QC":
        targets = [paths[i] for i in leaf.tolist()]
    else:
        targets = [f"{words[i % len(words)]} item {row}" for row, i in enumerate(leaf.tolist())]
    return {
        "queries": queries,
        "targets": targets,
        "labels": labels,
        "languages": [LANGUAGES[i] for i in language.tolist()],
    }


def _taxonomy(rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Leaf category paths, each leaf's node id at levels 1-4 (its own id below its depth), popularity."""
    paths: list[str] = []
    ancestor_rows: list[list[int]] = []
    next_node = 0

    def name(level: int, index: int) -> str:
        # one level name in twelve holds ", " as real ones do ("automobiles, parts & accessories")
        stem = "".join(rng.choice(_SYLLABLES, size=3))
        return (
            f"{stem}, {stem[:2]}parts {level}.{index}" if rng.random() < 1 / 12 else f"{stem} {level}.{index}"
        )

    def grow(prefix: list[str], ids: list[int], level: int) -> None:
        nonlocal next_node
        node, next_node = next_node, next_node + 1
        ids = [*ids, node]
        # depth 2 ends a path one time in five, depth 3 two times in three, depth 4 nine in ten
        ends = {1: 0.0, 2: 0.18, 3: 0.65, 4: 0.9}.get(level, 1.0)
        if level > 1 and rng.random() < ends:
            paths.append(",".join(prefix))
            ancestor_rows.append((ids + [node] * 4)[:4])
            return
        children = {1: 3 + rng.geometric(1 / 8), 2: 2 + rng.geometric(1 / 5)}.get(
            level, 2 + rng.geometric(1 / 3)
        )
        for index in range(int(children)):
            grow([*prefix, name(level + 1, index)], ids, level + 1)

    for top in range(TOP_LEVELS):
        grow([name(1, top)], [], 1)
    ancestors = np.asarray(ancestor_rows, dtype=np.int64)
    # Whole branches differ in popularity too (the sample's largest second level holds 3.5% of rows).
    branch_weight = rng.lognormal(0.0, 0.9, size=next_node)
    popularity = (
        rng.lognormal(0.0, 0.9, size=len(paths))
        * branch_weight[ancestors[:, 1]]
        * branch_weight[ancestors[:, 2]]
    )
    return paths, ancestors, popularity


def _branch_ranges(ancestors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf and level 0-4: the first and one-past-last leaf of the branch it shares that many levels in."""
    n_leaves = len(ancestors)
    start = np.zeros((n_leaves, 5), dtype=np.int64)
    end = np.full((n_leaves, 5), n_leaves, dtype=np.int64)
    for level in range(1, 5):
        node = ancestors[:, level - 1]
        boundaries = np.flatnonzero(np.diff(node)) + 1
        first = np.concatenate([[0], boundaries])
        last = np.concatenate([boundaries, [n_leaves]])
        run = np.repeat(np.arange(len(first)), np.diff(np.concatenate([first, [n_leaves]])))
        start[:, level], end[:, level] = first[run], last[run]
    return start, end


def _leaf_in_branch(
    rng: np.random.Generator,
    home: np.ndarray,
    levels: np.ndarray,
    ancestors: np.ndarray,
    branch_start: np.ndarray,
    branch_end: np.ndarray,
    cumulative: np.ndarray,
) -> np.ndarray:
    """A leaf drawn by popularity among those sharing ``levels`` levels with ``home`` (row by row)."""
    low = cumulative[branch_start[home, levels]]
    high = cumulative[branch_end[home, levels]]
    draw = low + rng.random(len(home)) * (high - low)
    return np.clip(np.searchsorted(cumulative, draw, side="right") - 1, 0, len(ancestors) - 1)


def _words(rng: np.random.Generator, n_words: int) -> list[str]:
    syllables = rng.choice(_SYLLABLES, size=(n_words, 3))
    return ["".join(row[: 2 + i % 2]) + str(i) for i, row in enumerate(syllables.tolist())]


def _normalised(weights: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()

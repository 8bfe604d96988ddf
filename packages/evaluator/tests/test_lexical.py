"""The baselines: 'all relevant' and the TF-IDF + logistic regression lexical model, on synthetic and real rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from relctl_core.errors import InputError, RelctlError

from relctl_evaluator.lexical import LexicalBaseline, all_relevant_proba
from relctl_evaluator.metrics import binary_metrics

RELEVANT_BRANDS = ["zorvex", "quintal", "mabrik"]
OTHER_BRANDS = ["pelucor", "drasnik", "voltemo"]
RELEVANT_CATEGORIES = ["watches,watches accessories,watchbands", "home & garden,kitchen,cookware"]
OTHER_CATEGORIES = ["toys & hobbies,puzzles", "automobiles, parts & accessories,car lights,headlights"]


def synthetic_rows(rows: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """A pair is relevant when its query names a relevant brand or its category is a relevant one.

    Filler words are random letters, so rows drawn with another seed share only the brands and categories.
    """
    rng = np.random.default_rng(seed)
    queries, targets, labels = [], [], []
    for _ in range(rows):
        brand_is_relevant = bool(rng.integers(0, 2))
        category_is_relevant = rng.uniform() < 0.3
        brand = rng.choice(RELEVANT_BRANDS if brand_is_relevant else OTHER_BRANDS)
        filler = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 8)))
        queries.append(f"{filler} {brand}" if rng.uniform() < 0.5 else f"{brand} {filler}")
        targets.append(str(rng.choice(RELEVANT_CATEGORIES if category_is_relevant else OTHER_CATEGORIES)))
        labels.append(int(brand_is_relevant or category_is_relevant))
    return queries, targets, np.array(labels)


def test_all_relevant_answers_relevant_for_every_row() -> None:
    assert np.array_equal(all_relevant_proba(4), np.ones(4))
    assert all_relevant_proba(0).shape == (0,)
    with pytest.raises(InputError):
        all_relevant_proba(-1)


def test_lexical_baseline_learns_a_relation_from_queries_and_targets() -> None:
    queries, targets, labels = synthetic_rows(400, seed=0)
    held_out_queries, held_out_targets, held_out_labels = synthetic_rows(200, seed=1)
    baseline = LexicalBaseline(seed=0).fit(queries, targets, labels)
    probs = baseline.predict_proba(held_out_queries, held_out_targets)
    assert probs.shape == (200,)
    assert ((probs >= 0.0) & (probs <= 1.0)).all()
    assert binary_metrics(held_out_labels, probs)["roc_auc"] > 0.9
    # The category alone decides the pairs with an irrelevant brand: the target features must be used.
    other_brand = np.array([any(brand in query for brand in OTHER_BRANDS) for query in held_out_queries])
    assert binary_metrics(held_out_labels[other_brand], probs[other_brand])["roc_auc"] > 0.9


def test_lexical_baseline_is_deterministic() -> None:
    queries, targets, labels = synthetic_rows(300, seed=2)
    first = LexicalBaseline(seed=3).fit(queries, targets, labels).predict_proba(queries, targets)
    second = LexicalBaseline(seed=3).fit(queries, targets, labels).predict_proba(queries, targets)
    assert np.array_equal(first, second)


def test_lexical_baseline_rejects_bad_input() -> None:
    with pytest.raises(RelctlError):
        LexicalBaseline().predict_proba(["a query"], ["a,category"])
    with pytest.raises(InputError) as raised:
        LexicalBaseline().fit(["a", "b"], ["x"], [0, 1])
    assert raised.value.path == "targets"
    with pytest.raises(InputError) as raised:
        LexicalBaseline().fit(["a", "b"], ["x", "y"], [0, 3])
    assert raised.value.path == "labels[1]"
    with pytest.raises(InputError) as raised:
        LexicalBaseline().fit(["a", "b"], ["x", "y"], [1, 1])
    assert raised.value.path == "labels"
    with pytest.raises(InputError) as raised:
        LexicalBaseline().fit(["a", None], ["x", "y"], [0, 1])  # type: ignore[list-item]
    assert raised.value.path == "queries[1]"


def test_on_the_real_qc_sample_lexical_ranks_weakly_and_f1_hardly_tells_it_from_all_relevant(
    qc_sample: Path,
) -> None:
    rows = [json.loads(line) for line in qc_sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = [row["origin_query"] for row in rows]
    targets = [row["category_path"] for row in rows]
    labels = np.array([row["label"] for row in rows])
    order = np.random.default_rng(0).permutation(len(rows))
    train, test = order[: int(0.8 * len(rows))], order[int(0.8 * len(rows)) :]

    baseline = LexicalBaseline(seed=0).fit(
        [queries[i] for i in train], [targets[i] for i in train], labels[train]
    )
    lexical = binary_metrics(
        labels[test], baseline.predict_proba([queries[i] for i in test], [targets[i] for i in test])
    )
    all_relevant = binary_metrics(labels[test], all_relevant_proba(test.size))

    assert 0.6 < lexical["roc_auc"] < 0.75
    positive_rate = labels[test].mean()
    assert all_relevant["f1"] == pytest.approx(2 * positive_rate / (1 + positive_rate))
    assert all_relevant["f1"] == pytest.approx(0.81, abs=0.015)
    assert lexical["f1"] < all_relevant["f1"] + 0.02

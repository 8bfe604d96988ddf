"""Baselines every experiment is scored against on its own folds: 'all relevant' and a lexical model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from relctl_core.errors import InputError, RelctlError

# Chosen by 5-fold ROC-AUC on 80% of the real QC sample. Query char n-grams from 1-3 to 3-5, target
# words 1 or 1-2 and C from 0.3 to 3 all land within 0.015 of each other (0.667..0.680); these sit near
# the top and keep the vocabulary small.
QUERY_CHAR_NGRAMS = (2, 4)
TARGET_WORD_NGRAMS = (1, 2)
REGULARISATION_C = 1.0


def all_relevant_proba(n: int) -> np.ndarray:
    """P(relevant) of the baseline that answers 'relevant' for each of ``n`` rows."""
    if n < 0:
        raise InputError(f"row count must be >= 0, got {n}", path="n")
    return np.ones(n)


class LexicalBaseline:
    """TF-IDF of query character n-grams next to TF-IDF of target words, fed to a logistic regression.

    Targets are category paths (``"watches,watches accessories,watchbands"``) or item titles. The model
    is additive: it learns which queries and which targets tend to be relevant but nothing about whether a
    query matches its target, which makes it the floor a model that reads both together must clear.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._pipeline: Any = None

    def fit(self, queries: Sequence[str], targets: Sequence[str], labels: ArrayLike) -> LexicalBaseline:
        """Fit on aligned queries, targets and 0/1 labels (both classes must occur)."""
        pairs = _pairs(queries, targets)
        label_array = np.asarray(labels)
        if label_array.shape != (len(pairs),):
            raise InputError(f"{label_array.size} labels for {len(pairs)} query-target pairs", path="labels")
        bad = ~np.isin(label_array, (0, 1))
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(f"label must be 0 or 1, got {label_array[row]!r}", path=f"labels[{row}]")
        if np.unique(label_array).size < 2:
            raise InputError("both labels 0 and 1 are needed to fit the lexical baseline", path="labels")
        self._pipeline = _lexical_pipeline(self.seed).fit(pairs, label_array.astype(int))
        return self

    def predict_proba(self, queries: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """P(label=1) for each aligned query-target pair."""
        if self._pipeline is None:
            raise RelctlError("the lexical baseline must be fitted before it predicts")
        return self._pipeline.predict_proba(_pairs(queries, targets))[:, 1]


def _pairs(queries: Sequence[str], targets: Sequence[str]) -> np.ndarray:
    """Queries and targets as the two text columns the pipeline reads."""
    if len(queries) != len(targets):
        raise InputError(f"{len(targets)} targets for {len(queries)} queries", path="targets")
    for name, texts in (("queries", queries), ("targets", targets)):
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"must be a string, got {text!r}", path=f"{name}[{row}]")
    pairs = np.empty((len(queries), 2), dtype=object)
    pairs[:, 0] = list(queries)
    pairs[:, 1] = list(targets)
    return pairs


def _lexical_pipeline(seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    features = ColumnTransformer(
        [
            (
                "query",
                TfidfVectorizer(analyzer="char_wb", ngram_range=QUERY_CHAR_NGRAMS, sublinear_tf=True),
                0,
            ),
            (
                "target",
                TfidfVectorizer(analyzer="word", ngram_range=TARGET_WORD_NGRAMS, sublinear_tf=True),
                1,
            ),
        ]
    )
    classifier = LogisticRegression(C=REGULARISATION_C, solver="liblinear", max_iter=1000, random_state=seed)
    return make_pipeline(features, classifier)

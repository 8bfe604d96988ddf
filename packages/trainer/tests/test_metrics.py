"""Validation metrics agree with scikit-learn's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

from relctl_trainer.metrics import bce_with_logits, positive_f1, roc_auc, sigmoid, validation_metrics


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=500).astype(np.float64)
    # Rounded logits make many ties, which a rank-based AUC must count as half.
    logits = np.round(labels * 0.8 + rng.normal(size=500), 1)
    return labels, logits


def test_roc_auc_matches_sklearn_with_ties(scored) -> None:
    from sklearn.metrics import roc_auc_score

    labels, logits = scored
    assert roc_auc(labels, logits) == pytest.approx(roc_auc_score(labels, logits), abs=1e-12)


def test_roc_auc_is_none_with_one_class() -> None:
    assert roc_auc(np.ones(4), np.array([0.1, 0.2, 0.3, 0.4])) is None


def test_f1_and_loss_match_sklearn(scored) -> None:
    from sklearn.metrics import f1_score, log_loss

    labels, logits = scored
    probs = sigmoid(logits)
    assert positive_f1(labels, probs) == pytest.approx(f1_score(labels, probs >= 0.5), abs=1e-12)
    assert bce_with_logits(labels, logits) == pytest.approx(log_loss(labels, probs), rel=1e-9)
    assert validation_metrics(labels, logits)["f1"] == positive_f1(labels, probs)


def test_loss_stays_finite_for_confident_mistakes() -> None:
    loss = bce_with_logits(np.array([1.0, 0.0]), np.array([-800.0, 800.0]))
    assert loss == pytest.approx(800.0)
    assert sigmoid(np.array([-800.0, 0.0, 800.0])).tolist() == pytest.approx([0.0, 0.5, 1.0])

"""Validation metrics of a binary relevance classifier, computed from logits with numpy."""

from __future__ import annotations

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, without overflow for large negative logits."""
    return np.exp(-np.logaddexp(0.0, -logits))


def bce_with_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy, computed from logits so that confident mistakes stay finite."""
    return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (tied scores count half); None when only one class is present."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="stable")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def positive_f1(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the relevant class at a probability threshold (0 when nothing is predicted or present)."""
    predicted = probs >= threshold
    true_positives = int(np.sum(predicted & (labels == 1)))
    denominator = int(predicted.sum()) + int(labels.sum())
    return 2.0 * true_positives / denominator if denominator else 0.0


def validation_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float | None]:
    """Loss, ROC-AUC and F1 at 0.5 of one scoring pass over the validation rows."""
    return {
        "loss": bce_with_logits(labels, logits),
        "roc_auc": roc_auc(labels, logits),
        "f1": positive_f1(labels, sigmoid(logits)),
    }

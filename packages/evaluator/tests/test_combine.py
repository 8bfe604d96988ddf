"""How several models' probabilities become one: mean, or the share of votes."""

from __future__ import annotations

import numpy as np
import pytest

from relctl_evaluator.tasks import combine_probs


def test_vote_is_the_share_of_models_calling_a_row_relevant() -> None:
    probs = [[0.9, 0.2, 0.6], [0.4, 0.1, 0.7], [0.8, 0.5, 0.1]]
    assert combine_probs(probs, "vote").tolist() == pytest.approx([2 / 3, 1 / 3, 2 / 3])
    assert combine_probs(probs, "mean").tolist() == pytest.approx(np.mean(probs, axis=0).tolist())
    assert combine_probs([[0.3, 0.7]], "vote").tolist() == [0.3, 0.7]  # one model passes through

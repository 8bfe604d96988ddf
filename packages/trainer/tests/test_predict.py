"""Fold-model ensembles: predictions reproduce training's out-of-fold scores and average over folds."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from relctl_core.errors import InputError

from relctl_trainer.predict import predict_probs, quiet_libraries
from relctl_trainer.training import train


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory, make_job) -> list[Path]:
    output_dirs = []
    for seed in (1, 2):
        output_dir = tmp_path_factory.mktemp(f"fold-{seed}")
        train(make_job(output_dir, train={"seed": seed, "epochs": 1}, test_file=None), lambda event: None)
        output_dirs.append(output_dir)
    return output_dirs


@pytest.fixture(scope="module")
def val_rows(toy_files: dict[str, str]) -> list[dict]:
    return [json.loads(line) for line in Path(toy_files["val_file"]).read_text().splitlines()]


def test_one_model_reproduces_its_out_of_fold_probabilities(folds: list[Path], val_rows: list[dict]) -> None:
    oof = [json.loads(line)["prob"] for line in (folds[0] / "oof.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(predict_probs([str(folds[0] / "model")], val_rows), oof, rtol=0, atol=1e-6)


def test_the_ensemble_is_the_mean_of_its_folds(folds: list[Path], val_rows: list[dict]) -> None:
    first, second = (predict_probs([str(fold / "model")], val_rows) for fold in folds)
    assert not np.allclose(first, second, atol=1e-4)
    both = predict_probs([str(fold / "model") for fold in folds], val_rows)
    np.testing.assert_allclose(both, (first + second) / 2, rtol=0, atol=1e-12)


def test_batching_and_padding_do_not_change_predictions(folds: list[Path], val_rows: list[dict]) -> None:
    model_dir = str(folds[0] / "model")
    np.testing.assert_allclose(
        predict_probs([model_dir], val_rows, batch_size=3),
        predict_probs([model_dir], val_rows, batch_size=64),
        atol=1e-6,
    )


def test_bad_inputs_are_reported(folds: list[Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model card"):
        predict_probs([str(tmp_path)], [{"query_text": "red", "target_text": "toys"}])
    with pytest.raises(InputError) as raised:
        predict_probs(
            [str(folds[0] / "model")], [{"query_text": "red", "target_text": "toys"}, {"target_text": "x"}]
        )
    assert raised.value.path == "rows[1].query_text"
    assert predict_probs([str(folds[0] / "model")], []).shape == (0,)


def test_loading_quietly_says_nothing_meant_for_library_developers(
    folds: list[Path], val_rows: list[dict], capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A BERT backbone loads with its unused pooler reported MISSING, behind a progress bar, and some
    versions of peft and transformers warn of deprecations while loading (FutureWarning): notes for
    developers, which a person scoring rows should not get."""
    from relctl_trainer import predict as predicting

    load = predicting.load_relevance_model

    def load_with_a_deprecation(*args: object, **kwargs: object) -> object:
        # What peft 0.17 said of a property it read while loading; 0.22 no longer does.
        warnings.warn("this property is deprecated and will be removed", FutureWarning, stacklevel=2)
        return load(*args, **kwargs)

    monkeypatch.setattr(predicting, "load_relevance_model", load_with_a_deprecation)
    model_dir = str(folds[0] / "model")
    with warnings.catch_warnings(record=True) as loud_warnings:
        warnings.simplefilter("always")
        loud = predict_probs([model_dir], val_rows[:4])
    assert "Loading weights" in capfd.readouterr().err  # what there is to hide
    assert any("LOAD REPORT" in r.getMessage() and "MISSING" in r.getMessage() for r in caplog.records)
    assert any(issubclass(w.category, FutureWarning) for w in loud_warnings)

    caplog.clear()
    with warnings.catch_warnings(record=True) as quiet_warnings:
        warnings.simplefilter("always")
        with quiet_libraries():
            quiet = predict_probs([model_dir], val_rows[:4])
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert not caplog.records and not quiet_warnings
    np.testing.assert_array_equal(quiet, loud)
    from transformers.utils import logging as hf_logging

    assert hf_logging.get_verbosity() != hf_logging.ERROR and hf_logging.is_progress_bar_enabled()  # restored afterwards

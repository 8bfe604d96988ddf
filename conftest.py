"""Fixtures shared by every package's tests: the real QC sample and the real services."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SHARED = REPO.parent / "shared"
QC_SAMPLE = SHARED / "data" / "qc-sample" / "train_QC.jsonl"
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _skip_or_fail(reason: str) -> None:
    """Skip on a laptop that lacks a real part; under CI a missing part is a failure, never a skip."""
    if UNDER_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def skip_or_fail():
    return _skip_or_fail


@pytest.fixture(scope="session")
def qc_sample() -> Path:
    """The real labelled QC sample in ../shared (never copied into the repo)."""
    if not QC_SAMPLE.exists():
        _skip_or_fail(f"QC sample not found at {QC_SAMPLE}")
    return QC_SAMPLE

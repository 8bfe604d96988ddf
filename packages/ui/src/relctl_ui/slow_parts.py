"""The parts of an experiment's page that take seconds (bootstrap intervals): its report and its judged
leaderboard, built once per state of the experiment and kept on disk under the relctl home.

A part is keyed by the experiment's id, status and latest stage end (queries.report_key): while nothing
in the experiment ends, every view after the first reads the file. Requests for a part being built wait
for that build rather than start another."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relctl_core.settings import Settings

CACHE_FOLDER = "ui-cache"


def cache_dir(settings: Settings) -> Path:
    return settings.home / CACHE_FOLDER


class SlowParts:
    """Built reports and judged boards of experiments, on disk, each built by one request at a time."""

    def __init__(self, reader: Callable[[], Settings], folder: Path, *, resamples: int) -> None:
        self.reader = reader  # the settings that open the run database read-only
        self.folder = folder
        self.resamples = resamples
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _cached(self, name: str, build: Callable[[], str], *, replaces: str) -> str:
        """The part in file ``name``, built and kept there if missing; the files it replaces (names
        starting with ``replaces``: the same part of an earlier state of the experiment) are removed."""
        path = self.folder / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
        with self._lock(name):
            if path.is_file():
                return path.read_text(encoding="utf-8")
            text = build()
            from relctl_evaluator.report_html import write_page

            self.folder.mkdir(parents=True, exist_ok=True)
            write_page(path, text)
            for earlier in self.folder.glob(f"{replaces}*"):
                if earlier != path:
                    earlier.unlink(missing_ok=True)
            return text

    def is_cached_report(self, key: str) -> bool:
        return (self.folder / f"report-{key}-{self.resamples}.html").is_file()

    def report_page(self, experiment_id: int, key: str) -> str:
        """The experiment's report as one self-contained HTML page (relctl_evaluator's)."""

        def build() -> str:
            from relctl_evaluator.report import build_report
            from relctl_evaluator.report_html import render_page

            return render_page(build_report(self.reader(), [experiment_id], resamples=self.resamples))

        return self._cached(f"report-{key}-{self.resamples}.html", build, replaces=f"report-{experiment_id}-")

    def judged(self, experiment_id: int, key: str, metric: str) -> list[dict[str, Any]]:
        """The experiment's judged leaderboard on ``metric`` (relctl_evaluator.judged.judged_board)."""

        def build() -> str:
            from relctl_core.db import session_scope
            from relctl_evaluator.judged import judged_board

            settings = self.reader()
            with session_scope(settings.database_url, wait=0) as session:
                board = judged_board(session, settings, experiment_id, metric=metric, resamples=self.resamples)
            return json.dumps(board)

        safe_metric = metric.replace("@", "-at-").replace("/", "_")
        name = f"judged-{safe_metric}-{key}-{self.resamples}.json"
        rows: list[dict[str, Any]] = json.loads(self._cached(name, build, replaces=f"judged-{safe_metric}-{experiment_id}-"))
        return rows

"""The parts of a page that take seconds (bootstrap intervals): an experiment's report and judged
leaderboard, and the comparison of two runs, built once per state of the experiments and kept on disk
under the relctl home.

A part is keyed by the experiment's id, status and latest stage end (queries.report_key), a comparison
by both runs' experiments' keys: while nothing in them ends, every view after the first reads the file. Requests for a part being built wait
for that build rather than start another."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from relctl_core.settings import Settings

CACHE_FOLDER = "ui-cache"
log = logging.getLogger("relctl.ui")


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

    def comparison(self, a: int, b: int, keys: tuple[str, str], *, metric: str, task: str, by: str) -> dict[str, Any]:
        """Run ``a`` minus run ``b`` (relctl_evaluator.compare.compare_runs): both runs' name and task, and
        a list of ``[language, comparison]`` pairs, the whole rows (language None) first."""

        def build() -> str:
            from relctl_evaluator.compare import compare_runs
            from relctl_evaluator.stats import DEFAULT_PERMUTATIONS

            run_a, run_b, results = compare_runs(
                self.reader(), a, b, metric=metric, task=task or None, by_language=by == "language",
                resamples=self.resamples, permutations=DEFAULT_PERMUTATIONS, seed=0,
            )  # fmt: skip
            runs = {side: {"run_id": run.run_id, "name": run.name, "task": run.task} for side, run in (("a", run_a), ("b", run_b))}
            found = [[None, asdict(results[None])]] + [[language, asdict(result)] for language, result in results.items() if language is not None]
            return json.dumps({**runs, "results": found})

        safe = f"{a}-{b}-{metric}-{task}-{by}".replace("@", "-at-").replace("/", "_")
        name = f"compare-{safe}-{keys[0]}-{keys[1]}-{self.resamples}.json"
        found: dict[str, Any] = json.loads(self._cached(name, build, replaces=f"compare-{safe}-"))
        return found

    def _judged_name(self, key: str, metric: str) -> str:
        safe_metric = metric.replace("@", "-at-").replace("/", "_")
        return f"judged-{safe_metric}-{key}-{self.resamples}.json"

    def is_cached_judged(self, key: str, metric: str) -> bool:
        return (self.folder / self._judged_name(key, metric)).is_file()

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
        name = self._judged_name(key, metric)
        rows: list[dict[str, Any]] = json.loads(self._cached(name, build, replaces=f"judged-{safe_metric}-{experiment_id}-"))
        return rows


class Prebuilder:
    """A daemon thread that builds the report and judged board of the experiments that finished last,
    and the comparisons their pages link to (``links``: experiment -> (run a, run b, task), compared by
    language on ``metric``), before anyone asks: the first view of a finished experiment then reads a
    file too. It looks again every ``period`` seconds, so that an experiment that finishes while the
    app runs is built within that; a part that cannot be built (nothing scored, runs on other folds)
    is not tried again in the same state."""

    def __init__(
        self, slow: SlowParts, recent: Callable[[], list[tuple[int, str]]], *, metric: str, period: float = 30.0,
        links: Callable[[int], list[tuple[int, int, str]]] | None = None,
    ) -> None:  # fmt: skip
        self.slow, self.recent, self.metric, self.period = slow, recent, metric, period
        self.links = links or (lambda _experiment_id: [])
        self.stopped = threading.Event()
        self.built: list[str] = []  # the keys built, oldest first (for tests and logs)
        self._refused: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="relctl-ui-prebuild", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def build_recent(self) -> None:
        from relctl_core.errors import RelctlError

        for experiment_id, key in self.recent():
            if self.stopped.is_set():
                return
            if key in self._refused or (self.slow.is_cached_report(key) and self.slow.is_cached_judged(key, self.metric)):
                continue
            try:
                self.slow.judged(experiment_id, key, self.metric)
                self.slow.report_page(experiment_id, key)
                links = self.links(experiment_id)
            except (RelctlError, OSError, KeyError, ValueError) as exc:
                log.info("experiment %s not built ahead: %s", experiment_id, exc)
                self._refused.add(key)
                continue
            for a, b, task in links:
                if self.stopped.is_set():
                    return
                try:
                    self.slow.comparison(a, b, (key, key), metric=self.metric, task=task, by="language")
                except (RelctlError, OSError, KeyError, ValueError) as exc:
                    log.info("runs %s and %s not compared ahead: %s", a, b, exc)
            self.built.append(key)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.build_recent()
            except Exception as exc:  # noqa: BLE001 - an unreachable database, say: the pages say it, this tries again
                log.warning("building recent experiments ahead failed: %s", exc)
            self.stopped.wait(self.period)

"""The parts of a page that take seconds (bootstrap intervals): an experiment's report and judged
leaderboard, and the comparison of two runs, built once per state of the experiments and kept on disk
under the relctl home.

A part is keyed by the experiment's id, status and latest stage end (queries.report_key), a comparison
by both runs' experiments' keys: while nothing in them ends, every view after the first reads the file.

A page never waits seconds for a part: a part that is not on disk is built by a thread of the app's,
and the request waits at most ``answer_within`` seconds for it. A build that takes longer answers
``Building`` (the page says so, with status 202, and asks again until the part is there). Requests for a
part being built join that build rather than start another, and a build that fails says why to the
next request for it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict
from pathlib import Path
from typing import Any

from relctl_core.settings import Settings

CACHE_FOLDER = "ui-cache"
UNTIL_BUILT = float("inf")
ANSWER_WITHIN = 0.2  # seconds a page waits for a part being built before it says "building"
BUILDERS = 2  # threads that build parts on demand (the prebuilder's builds go through them too)
log = logging.getLogger("relctl.ui")


class Building(Exception):
    """A part is being built and was not ready within the page's wait: the page says so and asks again."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is being built")
        self.what = what


def cache_dir(settings: Settings) -> Path:
    return settings.home / CACHE_FOLDER


class SlowParts:
    """Built reports, judged boards and comparisons, on disk, each built by one thread at a time."""

    def __init__(self, reader: Callable[[], Settings], folder: Path, *, resamples: int, answer_within: float = ANSWER_WITHIN) -> None:
        self.reader = reader  # the settings that open the run database read-only
        self.folder = folder
        self.resamples = resamples
        self.answer_within = answer_within
        self._pool = ThreadPoolExecutor(max_workers=BUILDERS, thread_name_prefix="relctl-ui-build")
        self._building: dict[str, Future[str]] = {}  # file name -> its build, until it is on disk or its failure is said
        self._guard = threading.Lock()

    def _cached(self, name: str, build: Callable[[], str], *, replaces: str, what: str, wait: float | None) -> str:
        """The part in file ``name``, built and kept there if missing; the files it replaces (names
        starting with ``replaces``: the same part of an earlier state of the experiment) are removed.
        ``wait``: seconds to wait for a build before raising Building (None: the page's wait; inf: until
        it ends)."""
        path = self.folder / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
        with self._guard:
            if path.is_file():  # written (and its build forgotten) since the look above
                return path.read_text(encoding="utf-8")
            future = self._building.get(name)
            if future is None:
                future = self._pool.submit(self._build, name, build, replaces)
                self._building[name] = future
        timeout = self.answer_within if wait is None else (None if wait == float("inf") else wait)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            raise Building(what) from None
        except BaseException:
            with self._guard:  # the failure is said once; the next request tries again
                if self._building.get(name) is future:
                    del self._building[name]
            raise

    def _build(self, name: str, build: Callable[[], str], replaces: str) -> str:
        from relctl_evaluator.report_html import write_page

        text = build()
        path = self.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        write_page(path, text)
        for earlier in self.folder.glob(f"{replaces}*"):
            if earlier != path:
                earlier.unlink(missing_ok=True)
        with self._guard:
            self._building.pop(name, None)
        return text

    def settled(self) -> bool:
        """Whether no build is running (a failed build waiting to be said counts as settled)."""
        with self._guard:
            return all(future.done() for future in self._building.values())

    def is_cached_report(self, key: str) -> bool:
        return (self.folder / f"report-{key}-{self.resamples}.html").is_file()

    def report_page(self, experiment_id: int, key: str, *, wait: float | None = None) -> str:
        """The experiment's report as one self-contained HTML page (relctl_evaluator's)."""

        def build() -> str:
            from relctl_evaluator.report import build_report
            from relctl_evaluator.report_html import render_page

            return render_page(build_report(self.reader(), [experiment_id], resamples=self.resamples))

        name = f"report-{key}-{self.resamples}.html"
        return self._cached(name, build, replaces=f"report-{experiment_id}-", what=f"the report of experiment {experiment_id}", wait=wait)

    def comparison(self, a: int, b: int, keys: tuple[str, str], *, metric: str, task: str, by: str, wait: float | None = None) -> dict[str, Any]:
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
        what = f"the comparison of runs {a} and {b}"
        found: dict[str, Any] = json.loads(self._cached(name, build, replaces=f"compare-{safe}-", what=what, wait=wait))
        return found

    def _judged_name(self, key: str, metric: str) -> str:
        safe_metric = metric.replace("@", "-at-").replace("/", "_")
        return f"judged-{safe_metric}-{key}-{self.resamples}.json"

    def is_cached_judged(self, key: str, metric: str) -> bool:
        return (self.folder / self._judged_name(key, metric)).is_file()

    def judged(self, experiment_id: int, key: str, metric: str, *, wait: float | None = None) -> list[dict[str, Any]]:
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
        what = f"the judged board of experiment {experiment_id}"
        rows: list[dict[str, Any]] = json.loads(self._cached(name, build, replaces=f"judged-{safe_metric}-{experiment_id}-", what=what, wait=wait))
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
                self.slow.judged(experiment_id, key, self.metric, wait=UNTIL_BUILT)
                self.slow.report_page(experiment_id, key, wait=UNTIL_BUILT)
                links = self.links(experiment_id)
            except (RelctlError, OSError, KeyError, ValueError) as exc:
                log.info("experiment %s not built ahead: %s", experiment_id, exc)
                self._refused.add(key)
                continue
            for a, b, task in links:
                if self.stopped.is_set():
                    return
                try:
                    self.slow.comparison(a, b, (key, key), metric=self.metric, task=task, by="language", wait=UNTIL_BUILT)
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

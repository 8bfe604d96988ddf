"""The web app's pages: experiments, leaderboard, an experiment, a comparison of two runs, a stage's log.

Every page reads the run database through the read-only engine (readonly.py) and renders a Jinja2
template with autoescaping; bad input is a page of its own with status 400 or 404, an unreachable
run database one with status 503, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from relctl_core.engine import wait_for
from relctl_core.errors import InputError, RelctlError, first_line
from relctl_core.leaderboard import (
    DEFAULT_LIMIT,
    DEFAULT_METRIC,
    SHOWN,
    leaderboard,
    scored_metrics,
    sweep_table,
)
from relctl_core.settings import Settings, redact_url
from relctl_core.tables import runs
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from relctl_ui import formatting, queries
from relctl_ui.readonly import read_only_engine, read_only_settings
from relctl_ui.slow_parts import ANSWER_WITHIN, Building, Prebuilder, SlowParts, cache_dir

log = logging.getLogger("relctl.ui")
TEMPLATES = Path(__file__).with_name("templates")
REFRESH_SECONDS = 3
ASK_AGAIN_SECONDS = 1  # how soon a page whose part is being built asks again
# Columns of the leaderboard one may sort by (?sort=), each with the row key it sorts on.
SORTABLE = ("experiment", "run", "task", "language", "mean", "std", "folds", *SHOWN, "chrf")


class PageNotFound(Exception):
    """Something a URL names is not in the run database (an experiment, a stage, a run)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _templates() -> Jinja2Templates:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    formatting.install(environment)
    return Jinja2Templates(env=environment)


def create_app(settings: Settings, *, resamples: int = 2000, prebuild: int = 0, answer_within: float = ANSWER_WITHIN) -> FastAPI:
    """The app over the run database of ``settings``, opened read-only. ``resamples``: bootstrap
    resamples of the intervals that the pages compute (comparisons, judged boards, reports).
    ``prebuild``: how many of the most recently finished experiments get their report and judged
    board built ahead of their first view, by a thread of the app's (0: on first view only).
    ``answer_within``: seconds a page waits for a part being built before it answers "building" (202)
    and asks again."""
    app = FastAPI(title="relctl", docs_url=None, redoc_url=None, openapi_url=None)
    templates = _templates()
    slow = SlowParts(lambda: read_only_settings(settings), cache_dir(settings), resamples=resamples, answer_within=answer_within)
    app.state.slow = slow
    database = redact_url(settings.database_url)

    @contextmanager
    def reading() -> Iterator[Connection]:
        # No waiting out an unreachable database: a page says so at once (see the 503 handler).
        connection = wait_for(read_only_engine(settings.database_url).connect, 0)
        try:
            yield connection
        finally:
            connection.close()

    if prebuild > 0:

        def recently_finished() -> list[tuple[int, str]]:
            with reading() as connection:
                return [(e, queries.report_key(connection, e)) for e in queries.recently_finished(connection, prebuild)]

        def compare_links(experiment_id: int) -> list[tuple[int, int, str]]:
            with reading() as connection:
                board = leaderboard(connection, experiment_id=experiment_id, metric=DEFAULT_METRIC, limit=None)
            return baseline_links(board.rows)

        app.state.prebuilder = Prebuilder(slow, recently_finished, metric=DEFAULT_METRIC, links=compare_links)
        app.state.prebuilder.start()

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, {"database": database, **context}, status_code=status_code)

    def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
        return render(request, "error.html", status_code=status_code, title=title, message=message)

    # --- errors as pages -----------------------------------------------------------------------------

    @app.exception_handler(PageNotFound)
    def not_found(request: Request, exc: PageNotFound) -> HTMLResponse:
        return error_page(request, 404, "Not found", exc.message)

    @app.exception_handler(Building)
    def building(request: Request, exc: Building) -> HTMLResponse:
        answer = render(request, "building.html", status_code=202, title="Building", what=exc.what, again_ms=ASK_AGAIN_SECONDS * 1000)
        answer.headers["Retry-After"] = str(ASK_AGAIN_SECONDS)
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        title = "Not found" if exc.status_code == 404 else "Error"
        message = f"no page at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, title, message)

    @app.exception_handler(RequestValidationError)
    def bad_parameters(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return error_page(request, 400, "Bad request", problems)

    @app.exception_handler(InputError)
    def bad_input(request: Request, exc: InputError) -> HTMLResponse:
        return error_page(request, 400, "Bad request", exc.message if not exc.path else f"{_parameter(exc.path)}: {exc.message}")

    @app.exception_handler(RelctlError)
    def relctl_error(request: Request, exc: RelctlError) -> HTMLResponse:
        return error_page(request, 503, "The run database cannot be used", str(exc))

    @app.exception_handler(DBAPIError)
    def database_error(request: Request, exc: DBAPIError) -> HTMLResponse:
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            log.warning("run database unreachable: %s", first_line(exc))
            return error_page(request, 503, "The run database cannot be reached", f"{database}: {first_line(exc.orig or exc)}")
        log.error("run database error on %s", request.url.path, exc_info=exc)
        return error_page(request, 500, "The run database answered with an error", first_line(exc.orig or exc))

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> HTMLResponse:
        log.error("error on %s", request.url.path, exc_info=exc)
        return error_page(request, 500, "Something went wrong", f"{type(exc).__name__}: {first_line(exc)} (the server's log has the details)")

    # --- pages ---------------------------------------------------------------------------------------

    @app.get("/health", response_class=PlainTextResponse)
    def health() -> str:
        return "ok"

    @app.get("/", response_class=HTMLResponse)
    def experiments_list(request: Request, name: str = "", status: str = "", page: int = 1) -> HTMLResponse:
        if status and status not in queries.STATES:
            raise InputError(f"unknown status {status!r}; valid: {', '.join(queries.STATES)}", path="status")
        with reading() as connection:
            found = queries.experiment_page(connection, name=name.strip() or None, status=status or None, page=page)
        return render(request, "experiments.html", title="Experiments", found=found, name=name, status=status, states=queries.STATES)

    @app.get("/leaderboard", response_class=HTMLResponse)
    def leaderboard_page(
        request: Request, task: str = "", metric: str = DEFAULT_METRIC, language: str = "", sort: str = "", order: str = "desc", limit: int = DEFAULT_LIMIT
    ) -> HTMLResponse:
        if sort and sort not in SORTABLE:
            raise InputError(f"cannot sort by {sort!r}; valid: {', '.join(SORTABLE)}", path="sort")
        if order not in ("asc", "desc"):
            raise InputError(f"order must be asc or desc, got {order!r}", path="order")
        with reading() as connection:
            metrics = scored_metrics(connection)
            board = leaderboard(connection, task=task or None, metric=metric, by_language=bool(language), limit=limit)
            languages = queries.scored_languages(connection, metric)
        rows = [r for r in board.rows if not language or r["language"] == language]
        if language and language not in languages:
            raise InputError(f"no run was scored in language {language!r}; valid: {', '.join(languages)}", path="language")
        best = _best_of_tasks(rows)
        if sort:
            rows = _sorted_rows(rows, sort, descending=order == "desc")
        return render(
            request, "leaderboard.html", title="Leaderboard", board=board, rows=rows, best=best, metrics=metrics, metric=metric, task=task,
            language=language, languages=languages, sort=sort, order=order, limit=limit,
            extra=[m for m in SHOWN if m != metric], chrf=any("chrf" in r for r in rows),
        )  # fmt: skip

    @app.get("/experiments/{experiment_id}", response_class=HTMLResponse)
    def experiment_page(request: Request, experiment_id: int, metric: str = DEFAULT_METRIC) -> HTMLResponse:
        with reading() as connection:
            experiment = _experiment_or_404(connection, experiment_id)
            stages = queries.stages_of(connection, experiment_id)
            board = leaderboard(connection, experiment_id=experiment_id, metric=metric, limit=None)
            metrics = scored_metrics(connection)
            key = queries.report_key(connection, experiment_id)
        sweep = sweep_table(board.rows)
        baselines = _better_baselines(board.rows)
        return render(
            request, "experiment.html", title=f"Experiment {experiment_id}: {experiment['name']}", experiment=experiment, stages=stages,
            board=board, rows=board.rows, sweep=sweep, sweep_keys=_sweep_keys(sweep), baselines=baselines, metric=metric, metrics=metrics,
            active=queries.is_active(experiment["status"]), refresh_seconds=REFRESH_SECONDS, report_ready=slow.is_cached_report(key),
            extra=[m for m in SHOWN if m != metric],
        )  # fmt: skip

    @app.get("/experiments/{experiment_id}/stages", response_class=JSONResponse)
    def experiment_stages(request: Request, experiment_id: int) -> JSONResponse:
        """The stages table and the experiment's status, for the page's refresh while it is active."""
        with reading() as connection:
            experiment = _experiment_or_404(connection, experiment_id)
            stages = queries.stages_of(connection, experiment_id)
        html = templates.get_template("stages.html").render(experiment=experiment, stages=stages)
        return JSONResponse({"status": experiment["status"], "active": queries.is_active(experiment["status"]), "html": html})

    @app.get("/experiments/{experiment_id}/judged", response_class=HTMLResponse)
    def judged_part(request: Request, experiment_id: int, metric: str = DEFAULT_METRIC) -> HTMLResponse:
        with reading() as connection:
            experiment = _experiment_or_404(connection, experiment_id)
            key = queries.report_key(connection, experiment_id)
        board = slow.judged(experiment_id, key, metric)
        return render(request, "judged.html", title=f"Judged board of experiment {experiment_id}", experiment=experiment, judged=board, metric=metric, resamples=slow.resamples)

    @app.get("/experiments/{experiment_id}/report", response_class=HTMLResponse)
    def report_part(request: Request, experiment_id: int) -> Response:
        with reading() as connection:
            _experiment_or_404(connection, experiment_id)
            key = queries.report_key(connection, experiment_id)
        try:
            return HTMLResponse(slow.report_page(experiment_id, key))
        except InputError as exc:  # nothing scored yet: said in the frame, not as a failure
            return render(request, "error.html", status_code=409, title="No report yet", message=exc.message)

    @app.get("/experiments/{experiment_id}/stages/{stage_id}/log", response_class=HTMLResponse)
    def stage_log(request: Request, experiment_id: int, stage_id: int) -> HTMLResponse:
        with reading() as connection:
            experiment = _experiment_or_404(connection, experiment_id)
            stage = queries.stage_of(connection, experiment_id, stage_id)
            if stage is None:
                raise PageNotFound(f"experiment {experiment_id} has no stage {stage_id}")
            lines = queries.stage_events(connection, stage_id)
        return render(request, "log.html", title=f"Log of {stage['label']}", experiment=experiment, stage=stage, lines=lines)

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(
        request: Request, a: int | None = None, b: int | None = None, metric: str = DEFAULT_METRIC, by: str = "", task: str = ""
    ) -> HTMLResponse:
        from relctl_evaluator.stats import RESAMPLED

        if a is None or b is None:
            raise InputError("say which two runs to compare: /compare?a=RUN&b=RUN (run ids are on the leaderboard)")
        if a == b:  # said at once, not after a build
            raise InputError("compare two different runs")
        if by not in ("", "language"):
            raise InputError(f"by must be language, got {by!r}", path="by")
        if metric not in RESAMPLED:
            raise InputError(f"cannot compare on {metric!r}; valid: {', '.join(RESAMPLED)}", path="metric")
        with reading() as connection:
            found = {row.id: row for row in connection.execute(select(runs.c.id, runs.c.experiment_id).where(runs.c.id.in_([a, b])))}
            missing = [str(run) for run in (a, b) if run not in found]
            if missing:
                raise PageNotFound(f"no run {' or '.join(missing)} in the run database")
            keys = (queries.report_key(connection, found[a].experiment_id), queries.report_key(connection, found[b].experiment_id))
        compared = slow.comparison(a, b, keys, metric=metric, task=task, by=by)
        overall, *per_language = (result for _, result in compared["results"])
        languages = [language for language, _ in compared["results"][1:]]
        return render(
            request, "compare.html", title=f"Run {a} vs run {b}", a=compared["a"], b=compared["b"], experiments={k: v.experiment_id for k, v in found.items()},
            overall=overall, per_language=list(zip(languages, per_language, strict=True)), metric=metric, metrics=RESAMPLED, by=by, task=task,
        )  # fmt: skip

    return app


def _parameter(path: str) -> str:
    """A CLI option named in an error (--metric) as the page's query parameter (metric)."""
    return path.removeprefix("--")


def _experiment_or_404(connection: Connection, experiment_id: int) -> dict[str, Any]:
    experiment = queries.experiment_of(connection, experiment_id)
    if experiment is None:
        raise PageNotFound(f"no experiment {experiment_id} in the run database")
    return experiment


def _best_of_tasks(rows: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The top row of each task (and language) on the board as ranked: what each row may be compared with."""
    best: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in rows:
        best.setdefault((row["task"], row["language"]), row)
    return best


def _better_baselines(rows: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The better-scoring baseline of each task (and language) of one experiment's board."""
    better: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in rows:  # best first within each task
        if row["kind"] == "baseline":
            better.setdefault((row["task"], row["language"]), row)
    return better


def baseline_links(rows: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """(model run, its task's better baseline, task) of each model row of an experiment's board: the
    comparisons its page links to ("vs better baseline", by language, on the default metric)."""
    better = _better_baselines(rows)
    return [
        (row["run_id"], baseline["run_id"], row["task"].lower())
        for row in rows
        if row["kind"] != "baseline" and (baseline := better.get((row["task"], row["language"]))) is not None
    ]


def _sorted_rows(rows: list[dict[str, Any]], column: str, *, descending: bool) -> list[dict[str, Any]]:
    """Rows by one column, rows without a value last either way."""
    present = [r for r in rows if r.get(column) is not None and r.get(column) == r.get(column)]
    absent = [r for r in rows if r not in present]
    return sorted(present, key=lambda r: r[column], reverse=descending) + absent


def _sweep_keys(sweep: list[dict[str, Any]]) -> list[str]:
    return [key for key in sweep[0] if key not in ("task", "run_id", "run", "mean", "low", "high")] if sweep else []

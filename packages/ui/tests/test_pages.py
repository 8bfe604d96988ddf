"""The web app's pages over a seeded run database: the values they show are the database's, user text is
escaped, filters and sorting work in the query string, and bad input is a page with status 400 or 404."""

from __future__ import annotations

import re
import sqlite3
import time
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from relctl_core.engine import connection_scope
from relctl_core.leaderboard import leaderboard

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _interval(row: dict[str, Any]) -> str:
    return f"{row['mean']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def _message(html: str) -> str:
    start = html.index('id="error-message">') + len('id="error-message">')
    return unescape(html[start : html.index("</div>", start)])


def test_the_list_shows_the_experiments_newest_first_with_their_counts(client: Any, seeded: Any, tables_of: Any) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    rows = tables_of(answer.text)["experiments"]
    assert [r.attrs["data-experiment-id"] for r in rows] == [str(seeded.running), str(seeded.hostile), str(seeded.finished)]
    with sqlite3.connect(seeded.database) as conn:
        expected = conn.execute(
            "select e.id, e.name, e.status, (select count(*) from runs r where r.experiment_id = e.id),"
            " (select count(*) from stages s where s.experiment_id = e.id and s.status = 'done'),"
            " (select count(*) from stages s where s.experiment_id = e.id) from experiments e order by e.id desc"
        ).fetchall()
    shown = [(int(r.cells[0]), r.cells[1], r.cells[2], int(r.cells[3]), r.cells[4]) for r in rows]
    assert shown == [(i, name, status, count, f"{done}/{stages}") for i, name, status, count, done, stages in expected]
    assert f"/experiments/{seeded.finished}" in rows[2].links


def test_the_list_filters_by_name_and_status_and_pages(client: Any, seeded: Any, tables_of: Any) -> None:
    by_name = tables_of(client.get("/", params={"name": "THI"}).text)["experiments"]
    assert [r.cells[1] for r in by_name] == ["third"]
    running = tables_of(client.get("/", params={"status": "running"}).text)["experiments"]
    assert [int(r.cells[0]) for r in running] == [seeded.running]
    # LIKE's wildcards in a name are matched as themselves.
    assert "experiments" not in tables_of(client.get("/", params={"name": "%"}).text)
    bad = client.get("/", params={"status": "sleeping"})
    assert bad.status_code == 400 and "unknown status 'sleeping'" in _message(bad.text)

    with sqlite3.connect(seeded.database) as conn:
        conn.executemany(
            "insert into experiments (name, status, spec_path, spec_text, spec, created_at) values (?, 'done', '', '', '{}', '2026-01-01')",
            [(f"bulk-{i:03d}",) for i in range(120)],
        )
    first = client.get("/")
    assert len(tables_of(first.text)["experiments"]) == 50 and "page 1 of 3" in first.text
    last = tables_of(client.get("/", params={"page": 3}).text)["experiments"]
    assert [r.cells[1] for r in last] == [f"bulk-{i:03d}" for i in range(19, -1, -1)] + ["third", HOSTILE, "first"]
    filtered = client.get("/", params={"name": "bulk-00", "page": 1})
    assert [r.cells[1] for r in tables_of(filtered.text)["experiments"]] == [f"bulk-00{i}" for i in range(9, -1, -1)]


def test_the_leaderboard_shows_the_database_means_and_intervals(client: Any, seeded: Any, tables_of: Any) -> None:
    with connection_scope(seeded.url) as connection:
        board = leaderboard(connection, metric="f1@oof")
    answer = client.get("/leaderboard")
    assert answer.status_code == 200
    rows = tables_of(answer.text)["leaderboard"]
    assert [int(r.attrs["data-run-id"]) for r in rows] == [r["run_id"] for r in board.rows]
    for shown, expected in zip(rows, board.rows, strict=True):
        interval = next(a for a in shown.cell_attrs if "data-mean" in a)
        assert float(interval["data-mean"]) == expected["mean"] and float(interval["data-low"]) == expected["low"]
        assert _interval(expected) in shown.cells
        assert f"/experiments/{expected['experiment_id']}" in shown.links
    # Every row but the best of its task links to a comparison with that best.
    best = {r["task"]: r["run_id"] for r in reversed(board.rows)}
    for shown in rows:
        compare = [link for link in shown.links if link.startswith("/compare")]
        if int(shown.attrs["data-run-id"]) == best[shown.attrs["data-task"]]:
            assert not compare
        elif compare:
            assert parse_qs(urlsplit(compare[0]).query)["b"] == [str(best[shown.attrs["data-task"]])]
    # The valid metrics are offered.
    assert '<option value="roc_auc"' in answer.text and '<option value="f1@oof" selected' in answer.text


def test_the_leaderboard_filters_by_task_metric_and_language_and_sorts(client: Any, seeded: Any, tables_of: Any) -> None:
    qi = tables_of(client.get("/leaderboard", params={"task": "qi", "metric": "roc_auc"}).text)["leaderboard"]
    with connection_scope(seeded.url) as connection:
        board = leaderboard(connection, task="qi", metric="roc_auc")
        by_language = leaderboard(connection, metric="f1@oof", by_language=True)
    assert [int(r.attrs["data-run-id"]) for r in qi] == [r["run_id"] for r in board.rows]
    assert {r.attrs["data-task"] for r in qi} == {"QI"}

    spanish = tables_of(client.get("/leaderboard", params={"language": "es"}).text)["leaderboard"]
    expected = [r for r in by_language.rows if r["language"] == "es"]
    assert [(int(r.attrs["data-run-id"]), r.attrs["data-language"]) for r in spanish] == [(r["run_id"], "es") for r in expected]
    assert [_interval(r) for r in expected] == [next(c for c in s.cells if "[" in c) for s in spanish]

    ascending = tables_of(client.get("/leaderboard", params={"sort": "mean", "order": "asc"}).text)["leaderboard"]
    means = [float(next(a for a in r.cell_attrs if "data-mean" in a)["data-mean"]) for r in ascending]
    assert means == sorted(means)

    unknown = client.get("/leaderboard", params={"metric": "auc"})
    assert unknown.status_code == 400 and "metric: unknown metric 'auc'; valid: f1@0.5" in _message(unknown.text)
    assert client.get("/leaderboard", params={"task": "both"}).status_code == 400
    assert client.get("/leaderboard", params={"language": "xx"}).status_code == 400
    assert client.get("/leaderboard", params={"sort": "colour"}).status_code == 400


def test_the_experiment_page_shows_its_stages_board_sweep_and_baseline_links(client: Any, seeded: Any, tables_of: Any) -> None:
    answer = client.get(f"/experiments/{seeded.finished}")
    assert answer.status_code == 200
    found = tables_of(answer.text)
    with sqlite3.connect(seeded.database) as conn:
        stages = conn.execute("select id, status from stages where experiment_id = ? order by id", (seeded.finished,)).fetchall()
    assert [(int(r.attrs["data-stage-id"]), r.attrs["data-status"]) for r in found["stages-table"]] == stages
    assert all(f"/experiments/{seeded.finished}/stages/{r.attrs['data-stage-id']}/log" in r.links for r in found["stages-table"])
    with connection_scope(seeded.url) as connection:
        board = leaderboard(connection, experiment_id=seeded.finished, limit=None)
    assert [int(r.attrs["data-run-id"]) for r in found["leaderboard"]] == [r["run_id"] for r in board.rows]
    assert [_interval(r) for r in board.rows] == [next(c for c in s.cells if "[" in c) for s in found["leaderboard"]]
    # A model links to a comparison with the better baseline of its task.
    better = {}
    for row in board.rows:
        if row["kind"] == "baseline":
            better.setdefault(row["task"], row["run_id"])
    for shown in found["leaderboard"]:
        compare = [link for link in shown.links if link.startswith("/compare")]
        if "baseline" in shown.attrs["class"]:
            assert not compare
        else:
            query = parse_qs(urlsplit(compare[0]).query)
            assert query["a"] == [shown.attrs["data-run-id"]] and query["b"] == [str(better[shown.attrs["data-task"]])]
    # The sweep: the models by LoRA rank, per task.
    assert [(r.cells[0], r.cells[1]) for r in found["sweep"]] == [("QC", "4"), ("QC", "8"), ("QI", "4"), ("QI", "8")]
    # Finished: no refresh; the slow parts load after the page.
    assert 'data-active="false"' in answer.text
    assert f'data-src="/experiments/{seeded.finished}/judged?metric=f1%40oof"' in answer.text
    assert f'data-src="/experiments/{seeded.finished}/report"' in answer.text


def test_a_running_experiment_shows_progress_and_refreshes(client: Any, seeded: Any, tables_of: Any) -> None:
    answer = client.get(f"/experiments/{seeded.running}")
    assert answer.status_code == 200 and 'data-active="true"' in answer.text
    training = next(r for r in tables_of(answer.text)["stages-table"] if r.attrs["data-stage-id"] == str(seeded.training_stage))
    progress = training.cells[6]
    # 30 of 100 steps in 60 s: 70 more take 140 s.
    assert progress == "epoch 1 step 30/100 loss 0.4321 · ETA 2m 20s"
    assert training.cells[5] == "gpu-1"
    fragment = client.get(f"/experiments/{seeded.running}/stages").json()
    assert fragment["status"] == "running" and fragment["active"] is True
    assert "epoch 1 step 30/100" in fragment["html"] and HOSTILE not in fragment["html"] and ESCAPED in fragment["html"]


def test_user_text_is_escaped_everywhere(client: Any, seeded: Any) -> None:
    pages = ["/", "/leaderboard", f"/experiments/{seeded.hostile}", f"/experiments/{seeded.running}", f"/experiments/{seeded.running}/stages/{seeded.training_stage}/log"]
    for url in pages:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert HOSTILE not in answer.text, url
        assert ESCAPED in answer.text, url


def test_a_stage_log_shows_its_events(client: Any, seeded: Any) -> None:
    answer = client.get(f"/experiments/{seeded.running}/stages/{seeded.training_stage}/log")
    assert answer.status_code == 200
    assert "started on cpu: 100 steps" in answer.text and "epoch 1 step 30/100 loss 0.4321" in answer.text
    assert answer.text.index("started on cpu") < answer.text.index("epoch 1 step 30/100 loss")
    assert 'class="level-warning"' in answer.text


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/experiments/999", 404, "no experiment 999 in the run database"),
        ("/experiments/999/judged", 404, "no experiment 999"),
        ("/experiments/999/report", 404, "no experiment 999"),
        ("/experiments/1/stages/99999/log", 404, "experiment 1 has no stage 99999"),
        ("/compare?a=1&b=99999", 404, "no run 99999 in the run database"),
        ("/nowhere", 404, "no page at /nowhere"),
        ("/experiments/first", 400, "experiment_id: Input should be a valid integer"),
        ("/compare", 400, "say which two runs to compare"),
        ("/compare?a=1&b=1", 400, "compare two different runs"),
        ("/compare?a=1&b=2&metric=rows", 400, "metric: cannot compare on 'rows'"),
    ],
)
def test_bad_input_is_a_page_that_says_what_is_wrong(client: Any, url: str, status: int, message: str) -> None:
    answer = client.get(url)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert message in _message(answer.text)
    assert "Traceback" not in answer.text


def test_a_comparison_that_cannot_be_made_is_bad_input(client: Any, seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from relctl_core.errors import InputError

    def other_folds(*_args: Any, **_kwargs: Any) -> Any:
        raise InputError("runs 1 and 9 do not share their folds: they were split differently")

    monkeypatch.setattr("relctl_evaluator.compare.compare_runs", other_folds)
    answer = client.get("/compare", params={"a": 1, "b": 9})
    assert answer.status_code == 400 and "do not share their folds" in _message(answer.text)


def test_a_comparison_is_computed_once_per_state_of_both_experiments(client: Any, seeded: Any, monkeypatch: pytest.MonkeyPatch, tables_of: Any) -> None:
    from relctl_evaluator.compare import RunRows
    from relctl_evaluator.stats import Comparison

    calls: list[tuple[int, int, str]] = []

    def compare_runs(_settings: Any, a: int, b: int, *, metric: str, by_language: bool, **_kwargs: Any) -> Any:
        calls.append((a, b, metric))
        rows = {run: RunRows(run, f"run {run}", "QC", (None,), [], [], [], [], [], []) for run in (a, b)}
        result = Comparison(metric, 0.8, 0.7, 0.1, 0.05, 0.15, 0.002, "A better", rows=40, queries=30, resamples=200)
        found = {None: result}
        if by_language:
            found["es"] = Comparison(metric, 0.6, 0.65, -0.05, -0.2, 0.1, 0.5, "no detectable difference", rows=10, queries=8, resamples=200)
        return rows[a], rows[b], found

    monkeypatch.setattr("relctl_evaluator.compare.compare_runs", compare_runs)
    first = client.get("/compare", params={"a": 1, "b": 2, "by": "language"})
    assert first.status_code == 200
    shown = tables_of(first.text)["comparison"]
    assert [row.attrs["data-language"] for row in shown] == ["all", "es"]
    assert [float(row.attrs["data-difference"]) for row in shown] == [0.1, -0.05]
    assert shown[0].cells[5] == "A better" and shown[1].cells[5] == "no detectable difference"
    # The second view reads the file the first one kept; another metric is another comparison.
    assert client.get("/compare", params={"a": 1, "b": 2, "by": "language"}).text == first.text and len(calls) == 1
    assert client.get("/compare", params={"a": 1, "b": 2, "metric": "roc_auc"}).status_code == 200 and len(calls) == 2
    assert len(list((seeded.settings.home / "ui-cache").glob("compare-1-2-*.json"))) == 2
    # A stage of either experiment that ends again makes the comparison anew, and the old file goes.
    with sqlite3.connect(seeded.database) as conn:
        conn.execute("update stages set finished_at = '2099-01-01 00:00:00.000000' where id = (select max(id) from stages where experiment_id = ?)", (seeded.finished,))
    assert client.get("/compare", params={"a": 1, "b": 2, "by": "language"}).status_code == 200 and len(calls) == 3
    assert len(list((seeded.settings.home / "ui-cache").glob("compare-1-2-*-language-*.json"))) == 1


def test_the_judged_part_says_how_runs_stand(client: Any, seeded: Any, monkeypatch: pytest.MonkeyPatch, tables_of: Any) -> None:
    calls: list[int] = []

    def judged(_session: Any, _settings: Any, experiment_id: int, metric: str = "f1@oof", **_kwargs: Any) -> list[dict[str, Any]]:
        calls.append(experiment_id)
        base = {"kind": "model", "baseline": None, "mode": None, "task": "QC", "group": 0, "metric": metric, "low": 0.7, "high": 0.8, "best_run_id": 1,
                "vs_best": None, "tied_with_best": False, "vs_baseline": None, "beats_baseline": None, "note": ""}  # fmt: skip
        return [
            {**base, "run_id": 1, "run": "r=4", "value": 0.75, "rank": 1, "best": True, "tied_with_best": True,
             "vs_baseline": {"run_id": 3, "comparable": True, "difference": 0.1, "low": 0.05, "high": 0.15, "verdict": "A better", "baseline": "lexical"},
             "note": "beats the better baseline (lexical): difference +0.100 [+0.050, +0.150]"},
            {**base, "run_id": 2, "run": HOSTILE, "value": 0.74, "rank": 2, "best": False, "tied_with_best": True,
             "vs_best": {"run_id": 1, "comparable": True, "difference": -0.01, "low": -0.03, "high": 0.01, "verdict": "no detectable difference"},
             "note": "has not beaten the better baseline (lexical): no detectable difference, difference +0.010 [-0.010, +0.030]"},
            {**base, "run_id": 3, "run": "baseline:lexical", "kind": "baseline", "baseline": "lexical", "value": 0.65, "rank": 3, "best": False,
             "vs_best": {"run_id": 1, "comparable": True, "difference": -0.1, "low": -0.15, "high": -0.05, "verdict": "B better"}},
        ]  # fmt: skip

    monkeypatch.setattr("relctl_evaluator.judged.judged_board", judged)
    answer = client.get(f"/experiments/{seeded.finished}/judged")
    assert answer.status_code == 200
    rows = tables_of(answer.text)["judged-table"]
    assert [r.attrs["data-tied"] for r in rows] == ["true", "true", "false"]
    assert "the best run" in rows[0].cells[5] and rows[0].cells[6].startswith("beats the better baseline (lexical)")
    assert rows[1].cells[5] == "not distinguishable from the best (difference -0.010 [-0.030, +0.010])"
    assert rows[1].cells[6].startswith("has not beaten the better baseline")
    assert rows[2].cells[5] == "worse than the best: difference -0.100 [-0.150, -0.050]"
    assert any(link.startswith("/compare?a=1&b=3") for link in rows[0].links)
    assert HOSTILE not in answer.text and ESCAPED in answer.text
    # Kept on disk: the second view builds nothing.
    assert client.get(f"/experiments/{seeded.finished}/judged").status_code == 200 and calls == [seeded.finished]


def test_the_report_is_built_once_per_state_of_the_experiment(client: Any, seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from relctl_core.errors import InputError

    built: list[list[int]] = []

    def build_report(_settings: Any, ids: list[int], **_kwargs: Any) -> dict[str, Any]:
        built.append(list(ids))
        return {"ids": list(ids)}

    monkeypatch.setattr("relctl_evaluator.report.build_report", build_report)
    monkeypatch.setattr("relctl_evaluator.report_html.render_page", lambda report: f"<html><body>report of {report['ids']}</body></html>")
    first = client.get(f"/experiments/{seeded.finished}/report")
    assert first.status_code == 200 and first.text == f"<html><body>report of [{seeded.finished}]</body></html>"
    assert client.get(f"/experiments/{seeded.finished}/report").text == first.text and len(built) == 1
    assert list((seeded.settings.home / "ui-cache").glob(f"report-{seeded.finished}-*.html"))
    # A stage that ends again (a retry) makes a new report.
    with sqlite3.connect(seeded.database) as conn:
        conn.execute("update stages set finished_at = '2099-01-01 00:00:00.000000' where id = (select max(id) from stages where experiment_id = ?)", (seeded.finished,))
    assert client.get(f"/experiments/{seeded.finished}/report").status_code == 200 and len(built) == 2
    assert len(list((seeded.settings.home / "ui-cache").glob(f"report-{seeded.finished}-*.html"))) == 1  # the earlier one is gone

    def nothing_scored(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise InputError("nothing to report: no run of experiment 3 has been scored yet")

    # Nothing scored yet: said in the frame, and not kept.
    monkeypatch.setattr("relctl_evaluator.report.build_report", nothing_scored)
    answer = client.get(f"/experiments/{seeded.running}/report")
    assert answer.status_code == 409 and "nothing to report" in _message(answer.text)


def test_a_part_not_built_in_time_is_said_to_be_building(seeded: Any, monkeypatch: pytest.MonkeyPatch, tables_of: Any) -> None:
    """A comparison, report or judged board that takes longer than the page's wait answers at once with
    202 and a page that says what is being built; the build goes on, joined by the requests that ask
    again, and the page that follows shows the part. A build that fails says so to the next request."""
    import threading

    from fastapi.testclient import TestClient
    from relctl_core.errors import InputError
    from relctl_evaluator.compare import RunRows
    from relctl_evaluator.stats import Comparison

    from relctl_ui.app import create_app

    release = threading.Event()
    calls: list[tuple[int, int]] = []

    def compare_runs(_settings: Any, a: int, b: int, *, metric: str, **_kwargs: Any) -> Any:
        calls.append((a, b))
        if b == 9:
            release.wait(60)
            raise InputError("runs 1 and 9 do not share their folds")
        release.wait(60)  # a bound on the test, not a speed check
        rows = {run: RunRows(run, f"run {run}", "QC", (None,), [], [], [], [], [], []) for run in (a, b)}
        return rows[a], rows[b], {None: Comparison(metric, 0.8, 0.7, 0.1, 0.05, 0.15, 0.002, "A better", rows=40, queries=30, resamples=200)}

    def judged_board(*_args: Any, **_kwargs: Any) -> list[dict[str, Any]]:
        release.wait(60)
        return []

    def build_report(_settings: Any, ids: list[int], **_kwargs: Any) -> dict[str, Any]:
        release.wait(60)
        return {"ids": list(ids)}

    monkeypatch.setattr("relctl_evaluator.compare.compare_runs", compare_runs)
    monkeypatch.setattr("relctl_evaluator.judged.judged_board", judged_board)
    monkeypatch.setattr("relctl_evaluator.report.build_report", build_report)
    monkeypatch.setattr("relctl_evaluator.report_html.render_page", lambda report: f"<html><body>report of {report['ids']}</body></html>")
    app = create_app(seeded.settings, resamples=200, answer_within=0.05)
    client = TestClient(app, raise_server_exceptions=False)
    pages = {
        "/compare?a=1&b=2": "the comparison of runs 1 and 2",
        "/compare?a=1&b=9": "the comparison of runs 1 and 9",
        f"/experiments/{seeded.finished}/judged": f"the judged board of experiment {seeded.finished}",
        f"/experiments/{seeded.finished}/report": f"the report of experiment {seeded.finished}",
    }
    for url, what in pages.items():
        for _ in range(2):  # asking again while it builds joins the build
            answer = client.get(url)
            assert answer.status_code == 202, url
            assert answer.headers["retry-after"] == "1" and answer.headers["cache-control"] == "no-store"
            assert what in unescape(answer.text) and 'id="building"' in answer.text
    assert sorted(calls) == [(1, 2), (1, 9)]
    release.set()
    deadline = time.monotonic() + 60  # a bound on the wait, not a speed check
    while not app.state.slow.settled() and time.monotonic() < deadline:
        time.sleep(0.02)
    shown = tables_of(client.get("/compare?a=1&b=2").text)["comparison"]
    assert [row.cells[5] for row in shown] == ["A better"]
    failed = client.get("/compare?a=1&b=9")
    assert failed.status_code == 400 and "do not share their folds" in _message(failed.text)
    assert client.get(f"/experiments/{seeded.finished}/judged").status_code == 200
    assert client.get(f"/experiments/{seeded.finished}/report").text == f"<html><body>report of [{seeded.finished}]</body></html>"
    assert sorted(calls) == [(1, 2), (1, 9)]  # each built once; the failure was said, not built again
    assert client.get("/compare?a=1&b=9").status_code in (202, 400) and len(calls) == 3  # then tried again


def test_recently_finished_experiments_are_built_before_their_first_view(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`relctl ui --prebuild N` builds the report and judged board of the N experiments that finished
    last, in a thread of its own: their first view reads a file. A running experiment is not built."""
    from fastapi.testclient import TestClient

    from relctl_ui.app import create_app

    reports: list[int] = []
    judged: list[int] = []

    def build_report(_settings: Any, ids: list[int], **_kwargs: Any) -> dict[str, Any]:
        reports.extend(ids)
        return {"ids": list(ids)}

    def judged_board(_session: Any, _settings: Any, experiment_id: int, **_kwargs: Any) -> list[dict[str, Any]]:
        judged.append(experiment_id)
        return []

    compared: list[tuple[int, int, str]] = []

    def compare_runs(_settings: Any, a: int, b: int, *, metric: str, task: str, by_language: bool, **_kwargs: Any):
        from types import SimpleNamespace

        from relctl_evaluator.stats import Comparison

        assert metric == "f1@oof" and by_language
        compared.append((a, b, task))
        result = Comparison(metric, 0.9, 0.8, 0.1, 0.05, 0.15, 0.01, "A better", 10, 5, 200)
        return SimpleNamespace(run_id=a, name=f"run {a}", task=task.upper()), SimpleNamespace(run_id=b, name=f"run {b}", task=task.upper()), {None: result}

    monkeypatch.setattr("relctl_evaluator.report.build_report", build_report)
    monkeypatch.setattr("relctl_evaluator.report_html.render_page", lambda report: f"<html><body>report of {report['ids']}</body></html>")
    monkeypatch.setattr("relctl_evaluator.judged.judged_board", judged_board)
    monkeypatch.setattr("relctl_evaluator.compare.compare_runs", compare_runs)
    app = create_app(seeded.settings, resamples=200, prebuild=1)
    prebuilder = app.state.prebuilder
    try:
        deadline = time.monotonic() + 120  # a bound on the wait, not a speed check
        while not prebuilder.built and time.monotonic() < deadline:
            time.sleep(0.05)
        # The last finished of the two finished experiments (same finish time: the higher id), only.
        last = max(seeded.finished, seeded.hostile)
        assert [key.split("-")[0] for key in prebuilder.built] == [str(last)]
        assert reports == [last] and judged == [last]
        client = TestClient(app, raise_server_exceptions=False)
        assert client.get(f"/experiments/{last}/report").text == f"<html><body>report of [{last}]</body></html>"
        assert client.get(f"/experiments/{last}/judged").status_code == 200
        assert reports == [last] and judged == [last]  # the first views read what was built
        # ... and so do the comparisons the experiment page links to: each model against its task's
        # better baseline.
        page = client.get(f"/experiments/{last}").text
        links = re.findall(r'class="compare-baseline" data-a="(\d+)" data-b="(\d+)" href="([^"]+)"', page)
        assert len(links) == 4 and sorted((int(a), int(b)) for a, b, _ in links) == sorted((a, b) for a, b, _ in compared)
        for _, _, href in links:
            answer = client.get(unescape(href))
            assert answer.status_code == 200 and "A better" in answer.text
        assert len(compared) == 4
        prebuilder.build_recent()  # another look: nothing new has finished
        assert reports == [last] and len(compared) == 4
    finally:
        prebuilder.stop()

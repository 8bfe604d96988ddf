"""`relctl report` on a finished experiment: one self-contained page whose sections show the run
database's numbers (leaderboard, curves, thresholds, languages, training, split audit, timeline,
inputs, spec), several experiments on one page, and bad input refused with exit status 2."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.finished import other_split_run
from tests.support import relctl

RESAMPLES = "200"
SECTIONS = ("leaderboard", "curves", "thresholds", "languages", "training", "split", "timeline", "examples", "spec")
INTERVAL = re.compile(r"^(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]$")


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts) + "".join(child.text for child in self.children)

    def iter(self, tag: str | None = None) -> list[Element]:
        found = [self] if tag in (None, self.tag) else []
        for child in self.children:
            found += child.iter(tag)
        return found

    def find_class(self, name: str) -> list[Element]:
        return [e for e in self.iter() if name in (e.attrs.get("class") or "").split()]


class Page(HTMLParser):
    """The page as a small element tree (standard library only)."""

    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("document", {}, None)
        self.current = self.root
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in self.VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.parts.append(data)

    def by_id(self, element_id: str) -> Element:
        [found] = [e for e in self.root.iter() if e.attrs.get("id") == element_id]
        return found


def figure(page: Page, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and layout a Plotly figure of the page draws, read from its newPlot call."""
    div_id = f"figure-{name}"
    page.by_id(div_id)
    for script in page.root.iter("script"):
        text = script.text
        call = text.find(f'Plotly.newPlot(                        "{div_id}",')
        if call == -1:
            call = text.find(f'Plotly.newPlot("{div_id}",')
        if call == -1:
            continue
        decoder = json.JSONDecoder()
        rest = text[text.index(",", call) + 1 :].lstrip()
        data, end = decoder.raw_decode(rest)
        rest = rest[end:].lstrip().removeprefix(",").lstrip()
        layout, _ = decoder.raw_decode(rest)
        return data, layout
    raise AssertionError(f"no figure {div_id} on the page")


def db(home: Path, query: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "relctl.db") as conn:
        return conn.execute(query, args).fetchall()


def oof_rows(home: Path, run_id: int) -> list[dict[str, Any]]:
    outputs = [json.loads(o) for (o,) in db(home, "select output from stages where run_id = ? and kind in ('train', 'baseline')", run_id)]
    return [json.loads(line) for output in outputs for line in (home / "artifacts" / output["artifacts"]["oof"]).read_text().splitlines()]


def write_report(env: dict[str, str], out: Path, *experiments: int) -> Page:
    done = relctl("report", *map(str, experiments), "--output", str(out), "--resamples", RESAMPLES, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"wrote {out}" in done.stdout
    return Page(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def report_page(finished_sweep: tuple[dict[str, str], dict[str, int], Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Page, str, int]:
    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    [(experiment_id,)] = db(home, "select experiment_id from runs where id = ?", run_ids["r=2"])
    out = tmp_path_factory.mktemp("report") / "report.html"
    page = write_report(env, out, experiment_id)
    return page, out.read_text(encoding="utf-8"), experiment_id


def test_every_section_is_there(report_page: tuple[Page, str, int]) -> None:
    page, _, experiment = report_page
    section = page.by_id(f"experiment-{experiment}")
    for name in SECTIONS:
        assert page.by_id(f"{name}-{experiment}").parent is section, name
    assert "missing" not in {c for e in section.iter() for c in (e.attrs.get("class") or "").split()}
    ids = [e.attrs["id"] for e in page.root.iter() if e.attrs.get("id")]
    assert len(ids) == len(set(ids))
    # Every link on the page is to a place on it.
    assert all(a.attrs["href"].removeprefix("#") in ids for a in page.root.iter("a"))


def test_the_leaderboard_shows_the_run_databases_scores_with_intervals_and_marks(finished_sweep, report_page) -> None:
    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    page, _, experiment = report_page
    board = page.by_id(f"leaderboard-{experiment}")
    runs = {run_id for (run_id,) in db(home, "select id from runs where experiment_id = ? and status = 'done'", experiment)}
    for metric in ("f1@oof", "roc_auc"):
        rows = [tr for tr in board.iter("tr") if tr.attrs.get("data-metric") == metric]
        assert {int(tr.attrs["data-run-id"]) for tr in rows} == runs, metric
        shown = []
        for tr in rows:
            run_id = int(tr.attrs["data-run-id"])
            [(expected,)] = db(home, "select value from metrics where run_id = ? and name = ? and fold is null and language is null", run_id, metric)
            value, low, high = (float(tr.attrs[f"data-{k}"]) for k in ("value", "low", "high"))
            assert value == pytest.approx(expected, abs=1e-12), (metric, run_id)
            assert low <= high
            [cell] = tr.find_class("interval")
            match = INTERVAL.match(cell.text.strip())
            assert match, cell.text
            assert [float(x) for x in match.groups()] == [round(value, 3), round(low, 3), round(high, 3)]
            shown.append(value)
        assert shown == sorted(shown, reverse=True), metric  # best first
        best = [tr for tr in rows if "best" in tr.attrs["class"].split()]
        assert len(best) == 1 and best[0].attrs["data-value"] == rows[0].attrs["data-value"]

    # The marks agree with `relctl compare` on the same resamples (the same seed, no permutations).
    rows = {int(tr.attrs["data-run-id"]): tr for tr in board.iter("tr") if tr.attrs.get("data-metric") == "f1@oof"}
    best_id = int(next(tr for tr in rows.values() if "best" in tr.attrs["class"].split()).attrs["data-run-id"])
    baselines = {run_ids["baseline:all-relevant"], run_ids["baseline:lexical"]}
    better_baseline = max(baselines, key=lambda run_id: float(rows[run_id].attrs["data-value"]))

    def compared(a: int, b: int) -> dict[str, Any]:
        done = relctl("compare", str(a), str(b), "--json", "--resamples", RESAMPLES, "--permutations", "0", env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    for run_id, tr in rows.items():
        if run_id != best_id:
            against_best = compared(run_id, best_id)
            tied = against_best["low"] <= 0 <= against_best["high"]
            assert tr.attrs["data-tied"] == str(tied).lower(), run_id
            assert ("not distinguishable from the best" in tr.text) == tied
        if run_id in baselines:
            continue
        against = compared(run_id, better_baseline)
        beats = against["low"] > 0
        assert tr.attrs["data-beats-baseline"] == str(beats)
        name = "all relevant" if better_baseline == run_ids["baseline:all-relevant"] else "lexical"
        if not beats:
            assert f"has not beaten the better baseline ({name})" in tr.text
        else:
            assert f"beats the better baseline ({name})" in tr.text


def test_curves_thresholds_and_confusion_matrices_are_the_out_of_fold_rows(finished_sweep, report_page) -> None:
    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    page, _, experiment = report_page
    runs = {run_id for (run_id,) in db(home, "select id from runs where experiment_id = ? and status = 'done'", experiment)}
    for kind in ("roc", "pr"):
        traces, _ = figure(page, f"{kind}-{experiment}-QC")
        assert len(traces) == len(runs) and {t["meta"] for t in traces} == runs, kind
    roc, _ = figure(page, f"roc-{experiment}-QC")
    for trace in roc:
        assert (trace["x"][0], trace["y"][0], trace["x"][-1], trace["y"][-1]) == (0.0, 0.0, 1.0, 1.0)
        assert trace["x"] == sorted(trace["x"])

    models = [run_ids["r=2"], run_ids["r=4"]]
    tables = {int(t.attrs["data-run-id"]): t for t in page.by_id(f"thresholds-{experiment}").find_class("confusion")}
    assert set(tables) == set(models)
    for run_id in models:
        [(pooled,)] = db(home, "select value from metrics where run_id = ? and name = 'threshold@oof.pooled' and fold is null", run_id)
        table = tables[run_id]
        threshold = float(table.attrs["data-threshold"])
        assert threshold == pytest.approx(pooled, abs=1e-12)
        # Each row at the threshold tuned on the other half of its fold (alternate rows), as F1@oof.
        from relctl_evaluator.metrics import best_f1_threshold

        outputs = [json.loads(o) for (o,) in db(home, "select output from stages where run_id = ? and kind in ('train', 'baseline')", run_id)]
        by_fold = {o["fold"]: [json.loads(line) for line in (home / "artifacts" / o["artifacts"]["oof"]).read_text().splitlines()] for o in outputs}
        predicted, f1_of_fold = [], []
        for fold in sorted(by_fold):
            in_fold = by_fold[fold]
            halves = [in_fold[0::2], in_fold[1::2]]
            tuned = [best_f1_threshold([r["label"] for r in half], [r["prob"] for r in half]) for half in halves]
            scored = [(r, r["prob"] >= tuned[1 - position % 2]) for position, r in enumerate(in_fold)]
            tp = sum(1 for r, yes in scored if r["label"] == 1 and yes)
            f1_of_fold.append(2 * tp / (sum(1 for _, yes in scored if yes) + sum(r["label"] for r, _ in scored)))
            predicted += scored
        expected = {
            "tp": sum(1 for r, yes in predicted if r["label"] == 1 and yes),
            "fp": sum(1 for r, yes in predicted if r["label"] == 0 and yes),
            "fn": sum(1 for r, yes in predicted if r["label"] == 1 and not yes),
            "tn": sum(1 for r, yes in predicted if r["label"] == 0 and not yes),
        }
        assert {k: int(table.attrs[f"data-{k}"]) for k in expected} == expected
        # ... whose F1, per fold, is the run's F1@oof of that fold in the run database.
        f1_per_fold = [v for (v,) in db(home, "select value from metrics where run_id = ? and name = 'f1@oof' and fold is not null and language is null order by fold", run_id)]
        assert f1_per_fold == pytest.approx(f1_of_fold, abs=1e-12)
        traces, layout = figure(page, f"threshold-{experiment}-QC-{run_id}")
        assert max(traces[0]["y"]) <= 1.0 and len(traces[0]["x"]) == len(traces[0]["y"])
        marked = [shape["x0"] for shape in layout["shapes"]]
        assert marked[0] == pytest.approx(pooled, abs=1e-12)
        folds = [v for (v,) in db(home, "select value from metrics where run_id = ? and name = 'threshold@oof' and fold is not null and language is null order by fold", run_id)]
        assert marked[1:] == pytest.approx(folds, abs=1e-12)


def test_per_language_scores_are_the_run_databases(finished_sweep, report_page) -> None:
    env, _, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    page, _, experiment = report_page
    section = page.by_id(f"languages-{experiment}")
    rows = [tr for tr in section.iter("tr") if tr.attrs.get("data-language")]
    expected = db(
        home,
        "select m.run_id, m.language, m.value from metrics m join runs r on r.id = m.run_id where r.experiment_id = ? "
        "and m.name = 'f1@oof' and m.fold is null and m.language is not null",
        experiment,
    )
    assert len(rows) == len(expected)
    shown = {(int(tr.attrs["data-run-id"]), tr.attrs["data-language"]): float(tr.attrs["data-f1"]) for tr in rows}
    for run_id, language, value in expected:
        assert shown[(run_id, language)] == pytest.approx(value, abs=1e-12), (run_id, language)
    traces, _ = figure(page, f"languages-{experiment}-QC-f1@oof")
    assert len(traces) == len({run_id for run_id, _, _ in expected})
    # No translator ran: the chrF scatter says it does not apply.
    [note] = section.find_class("chrf-na")
    assert "Does not apply" in note.text


def test_training_curves_split_audit_and_timeline_are_the_run_databases(finished_sweep, report_page) -> None:
    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    page, _, experiment = report_page
    for name in ("r=2", "r=4"):
        run_id = run_ids[name]
        traces, _ = figure(page, f"training-{experiment}-{run_id}")
        outputs = [json.loads(o) for (o,) in db(home, "select output from stages where run_id = ? and kind = 'train' order by id", run_id)]
        for output in outputs:
            fold = output["fold"]
            [f1] = [t for t in traces if t["name"] == f"fold {fold} validation F1@0.5"]
            assert f1["x"][-1] == output["epochs_run"] and f1["y"][-1] == pytest.approx(output["val"]["f1"], abs=1e-12)
            [loss] = [t for t in traces if t["name"] == f"fold {fold} training loss"]
            assert all(value > 0 for value in loss["y"])

    [(output,)] = db(home, "select output from stages where experiment_id = ? and kind = 'split'", experiment)
    folds_file = home / "artifacts" / json.loads(output)["artifacts"]["folds"]
    fold_of_row = json.loads(folds_file.read_text())
    sizes = {fold: list(fold_of_row.values()).count(fold) for fold in set(fold_of_row.values())}
    [table] = page.by_id(f"split-{experiment}").find_class("split-audit")
    shown = {int(tr.attrs["data-fold"]): int(tr.attrs["data-rows"]) for tr in table.iter("tr") if tr.attrs.get("data-fold")}
    assert shown == sizes
    recorded = {fold: int(v) for fold, v in db(home, "select fold, value from metrics where experiment_id = ? and name = 'split.rows'", experiment)}
    assert shown == recorded

    stages = {stage_id for (stage_id,) in db(home, "select id from stages where experiment_id = ?", experiment)}
    traces, _ = figure(page, f"timeline-{experiment}")
    ran = [t for t in traces if t["name"].startswith("run on ")]
    drawn = [row[0] for t in ran for row in t["customdata"]]
    assert sorted(drawn) == sorted(stages)
    hosts = {host for (host,) in db(home, "select distinct worker_host from stages where experiment_id = ?", experiment)}
    assert {t["name"].removeprefix("run on ") for t in ran} == hosts
    [wait] = [t for t in traces if t["name"] == "queue wait"]
    assert len(wait["customdata"]) == len(stages) and all(ms >= 0 for ms in wait["x"])


def test_example_inputs_and_the_resolved_spec(finished_sweep, report_page) -> None:
    env, _, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    page, _, experiment = report_page
    [table] = page.by_id(f"examples-{experiment}").find_class("examples")
    cells = [[td.text for td in tr.iter("td")] for tr in table.iter("tr") if tr.iter("td")]
    [(cache_key,)] = db(home, "select cache_key from stages where experiment_id = ? and kind = 'train' order by id limit 1", experiment)
    written = [json.loads(line) for line in (home / "artifacts" / "train" / cache_key / "inputs" / "train.jsonl").read_text().splitlines()[: len(cells)]]
    assert len(cells) == 5
    for row, shown in zip(written, cells, strict=True):
        assert shown[0] == str(row["id"]) and row["query_text"] in shown and row["target_text"] in shown
    [spec] = page.by_id(f"spec-{experiment}").find_class("spec-json")
    [(stored,)] = db(home, "select spec from experiments where id = ?", experiment)
    assert json.loads(spec.text) == json.loads(stored)


def test_the_page_opens_offline(report_page) -> None:
    from plotly.offline import get_plotlyjs

    page, html, _ = report_page
    for element in page.root.iter():
        for name in ("src", "href", "action", "data"):
            value = (element.attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (element.tag, name, value)
    assert not page.root.iter("link") and not page.root.iter("iframe") and not page.root.iter("img")
    # The plot library is inside the page, once; no script is loaded from anywhere.
    assert all("src" not in script.attrs for script in page.root.iter("script"))
    bundle = get_plotlyjs()
    assert html.count(bundle) == 1
    # Outside the library's own code (whose strings name map-tile servers it never calls here), no URL at all.
    rest = html.replace(bundle, "")
    assert not re.search(r"https?://", rest) and "//cdn" not in rest


def test_several_experiments_on_one_page_with_a_combined_board(finished_sweep, tmp_path: Path) -> None:
    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    other_run = other_split_run(finished_sweep)
    [(first,)] = db(home, "select experiment_id from runs where id = ?", run_ids["r=2"])
    [(second,)] = db(home, "select experiment_id from runs where id = ?", other_run)
    page = write_report(env, tmp_path / "both.html", first, second)
    for experiment in (first, second):
        for name in SECTIONS:
            page.by_id(f"{name}-{experiment}")
    combined = page.by_id("combined")
    rows = [tr for tr in combined.iter("tr") if tr.attrs.get("data-run-id")]
    expected = {run_id for (run_id,) in db(home, "select id from runs where experiment_id in (?, ?) and status = 'done'", first, second)}
    assert {int(tr.attrs["data-run-id"]) for tr in rows} == expected
    values = [float(tr.attrs["data-value"]) for tr in rows]
    assert values == sorted(values, reverse=True)


def test_an_unfinished_experiment_is_reported_as_far_as_it_got(finished_sweep, tmp_path: Path) -> None:
    """A copy of the finished run database with one run set back to running (its stages too), and a
    name that must be escaped."""
    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    copy_home = tmp_path / "home"
    copy_home.mkdir()
    with sqlite3.connect(home / "relctl.db") as source, sqlite3.connect(copy_home / "relctl.db") as target:
        source.backup(target)
    running = run_ids["r=4"]
    with sqlite3.connect(copy_home / "relctl.db") as conn:
        [(experiment,)] = conn.execute("select experiment_id from runs where id = ?", (running,)).fetchall()
        conn.execute("update runs set status = 'running', finished_at = null where id = ?", (running,))
        conn.execute("update stages set status = 'running', finished_at = null where run_id = ? and kind = 'evaluate'", (running,))
        conn.execute("update experiments set status = 'running', finished_at = null, name = '<script>alert(1)</script>' where id = ?", (experiment,))
    copy_env = {**env, "RELCTL_HOME": str(copy_home), "RELCTL_ARTIFACT_ROOT": str(home / "artifacts")}
    out = tmp_path / "partial.html"
    page = write_report(copy_env, out, experiment)
    missing = page.by_id(f"missing-{experiment}").text
    assert f"experiment {experiment} is running" in missing and f"run {running} (r=4) is running" in missing
    on_board = {int(tr.attrs["data-run-id"]) for tr in page.by_id(f"leaderboard-{experiment}").iter("tr") if tr.attrs.get("data-run-id")}
    assert running not in on_board and run_ids["r=2"] in on_board
    html = out.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_bad_input_exits_2_and_writes_nothing(finished_sweep, tmp_path: Path) -> None:
    env, run_ids, work = finished_sweep
    home = Path(env["RELCTL_HOME"])
    [(experiment,)] = db(home, "select experiment_id from runs where id = ?", run_ids["r=2"])
    out = tmp_path / "report.html"
    (tmp_path / "folder.html").mkdir()
    for args, message in [
        (["999", "--output", str(out)], "no experiment 999"),
        ([str(experiment), "--output", str(tmp_path / "nowhere" / "report.html")], "does not exist"),
        ([str(experiment), "--output", str(tmp_path / "folder.html")], "is a folder"),
        ([str(experiment), "--output", str(out), "--metric", "threshold@oof"], "threshold@oof"),
    ]:
        done = relctl("report", *args, env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.html"]  # no temporary file left behind

    # An experiment submitted but not yet run has nothing scored: exit 2, and it says so.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copytree(work / "data", fresh / "data")
    shutil.copy(work / "experiment.yaml", fresh / "experiment.yaml")
    fresh_env = {**env, "RELCTL_HOME": str(fresh / "home")}
    submitted = relctl("submit", "experiment.yaml", "--json", env=fresh_env, cwd=fresh)
    assert submitted.returncode == 0, submitted.stderr
    pending = json.loads(submitted.stdout)["experiment_id"]
    done = relctl("report", str(pending), "--output", str(out), env=fresh_env)
    assert done.returncode == 2 and "nothing to report" in done.stderr, done.stderr
    assert not out.exists()


def test_help_ends_with_an_example() -> None:
    done = relctl("report", "--help")
    assert done.returncode == 0
    # The help's text ends with its examples (the options follow it).
    text = [line.strip() for line in done.stdout.split("Options:")[0].splitlines() if line.strip()]
    assert text[-3] == "Examples:" and all(line.startswith("relctl report ") for line in text[-2:])


TRANSLATED = """\
name: translated
data:
  qc: {{train: data/qc_train.jsonl, max_rows: 200}}
split: {{strategy: category-aware, folds: 4, train_folds: [0, 1], seed: 42}}
translation: {{enabled: true, backend: identity}}
model: {{backbone: {backbone}}}
train: {{epochs: 2, batch_size: 16, max_length: 32, lr: 1.0e-3}}
sweep: {{translation.mode: [orig, orig+en]}}
"""


def test_translation_quality_beside_the_scores_and_against_the_gain(finished_sweep, tmp_path: Path) -> None:
    """An experiment that translates (the identity backend, measured on the reference set like any
    other) and sweeps the mode: chrF per language beside the scores, and against the F1 gain of
    orig+en over orig."""
    env, _, work = finished_sweep
    shutil.copytree(work / "data", tmp_path / "data")
    (tmp_path / "experiment.yaml").write_text(TRANSLATED.format(backbone=work / "tiny"))
    translated_env = {**env, "RELCTL_HOME": str(tmp_path / "home")}
    done = relctl("run", "experiment.yaml", "--json", env=translated_env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    home = tmp_path / "home"
    runs = {name: run_id for run_id, name in db(home, "select id, name from runs where kind = 'model'")}
    page = write_report(translated_env, tmp_path / "translated.html", 1)

    chrf = {language: value for language, value in db(home, "select language, value from metrics where name = 'translation.chrf' and run_id is null")}
    assert chrf
    f1 = {(run_id, language): value for run_id, language, value in db(home, "select run_id, language, value from metrics where name = 'f1@oof' and fold is null and language is not null")}
    section = page.by_id("languages-1")
    for tr in section.iter("tr"):
        if tr.attrs.get("data-run-id") == str(runs["mode=orig+en"]):
            shown = tr.iter("td")[-1].text
            language = tr.attrs["data-language"]
            assert shown == (f"{chrf[language]:.1f}" if chrf.get(language) is not None else "n/a"), language
    traces, _ = figure(page, "chrf-gain-1-QC")
    [points] = traces
    assert points["meta"] == runs["mode=orig+en"]
    expected = {
        language: (value, f1[(runs["mode=orig+en"], language)] - f1[(runs["mode=orig"], language)])
        for language, value in chrf.items()
        if value is not None and (runs["mode=orig"], language) in f1 and (runs["mode=orig+en"], language) in f1
    }
    assert sorted(points["text"]) == sorted(expected)
    for language, x, y in zip(points["text"], points["x"], points["y"], strict=True):
        assert (x, y) == pytest.approx(expected[language], abs=1e-12), language

    # The inputs of mode orig+en show each query's English beside the model's input.
    [(output,)] = db(home, "select output from stages where kind = 'translate'")
    english = json.loads((home / "artifacts" / json.loads(output)["artifacts"]["english"]).read_text())
    tables = page.by_id("examples-1").find_class("examples")
    assert len(tables) == 2
    header = [th.text for th in tables[1].iter("th")]
    assert "English" in header
    for tr in tables[1].iter("tr")[1:]:
        cells = [td.text for td in tr.iter("td")]
        assert cells[header.index("English")] == english[cells[header.index("query")]]
    # Two epochs: two validation points per fold.
    traces, _ = figure(page, f"training-1-{runs['mode=orig']}")
    assert all(len(t["x"]) == 2 for t in traces if "validation" in t["name"])


def test_the_judged_intervals_are_the_leaderboards(finished_sweep) -> None:
    """With the evaluator's resamples and seed, judged_board's interval of each run is the one the
    evaluator stored for the leaderboard: the same bootstrap of the same rows."""
    from relctl_core.db import session_scope
    from relctl_core.settings import load_settings
    from relctl_evaluator.judged import judged_board

    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    [(experiment,)] = db(home, "select experiment_id from runs where id = ?", run_ids["r=2"])
    settings = load_settings(env)
    with session_scope(settings.database_url) as session:
        board = judged_board(session, settings, experiment, "f1@oof")
    assert {row["run_id"] for row in board} == set(run_ids.values())
    for row in board:
        [(value, low, high)] = db(home, "select value, low, high from metrics where run_id = ? and name = 'f1@oof' and fold is null and language is null", row["run_id"])
        assert (row["value"], row["low"], row["high"]) == pytest.approx((value, low, high), abs=1e-12), row["run"]

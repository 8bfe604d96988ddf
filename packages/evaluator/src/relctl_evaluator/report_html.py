"""`relctl report`'s page: Plotly figures of the gathered data (report.py), rendered into one
self-contained HTML file with Jinja2 (the plot library inlined once; no external URL)."""

from __future__ import annotations

import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from relctl_core.errors import InputError

# No link to the plot library's site on the mode bar: the page opens offline and stays there.
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
LAYOUT = {"template": "plotly_white", "height": 420, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
# The parts of an experiment's section, in page order: the element id's prefix and the link's words.
SECTIONS = (
    ("leaderboard", "leaderboard"), ("curves", "ROC and PR"), ("thresholds", "thresholds"), ("languages", "languages"),
    ("training", "training"), ("split", "split audit"), ("timeline", "timeline"), ("examples", "inputs"), ("spec", "spec"),
)  # fmt: skip
HOST_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")


def _fixed(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _signed(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}"


def _figure_html(figure: Any, name: str) -> str:
    """A figure's element (id ``figure-NAME``) and the call that draws it; the plot library is on the page once."""
    return str(figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{name}", config=FIGURE_CONFIG))


def _layout(figure: Any, title: str, **extra: Any) -> None:
    figure.update_layout(**{**LAYOUT, "title": {"text": title}, **extra})


def _run_line(kind: str) -> dict[str, Any]:
    return {"dash": "dash", "width": 1.5} if kind == "baseline" else {"width": 2}


def curve_figures(experiment_id: int, task: dict[str, Any]) -> dict[str, str]:
    """ROC and precision-recall curves of a task's runs, baselines on the same axes."""
    import plotly.graph_objects as go

    roc, pr = go.Figure(), go.Figure()
    for curve in task["curves"]:
        name = f"{curve['run']} (run {curve['run_id']})"
        if curve["roc"] is not None:
            roc.add_trace(
                go.Scatter(
                    x=curve["roc"]["fpr"], y=curve["roc"]["tpr"], customdata=curve["roc"]["threshold"], mode="lines", name=name,
                    line=_run_line(curve["kind"]), meta=curve["run_id"],
                    hovertemplate="%{fullData.name}<br>FPR %{x:.3f}<br>TPR %{y:.3f}<br>threshold %{customdata:.3f}<extra></extra>",
                )
            )  # fmt: skip
        if curve["pr"] is not None:
            pr.add_trace(
                go.Scatter(
                    x=curve["pr"]["recall"], y=curve["pr"]["precision"], customdata=curve["pr"]["threshold"], mode="lines", name=name,
                    line=_run_line(curve["kind"]), meta=curve["run_id"],
                    hovertemplate="%{fullData.name}<br>recall %{x:.3f}<br>precision %{y:.3f}<br>threshold %{customdata:.3f}<extra></extra>",
                )
            )  # fmt: skip
    roc.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"color": "#bbb", "dash": "dot"})
    _layout(roc, f"{task['task']}: ROC curves", xaxis={"title": {"text": "false positive rate"}, "range": [0, 1]}, yaxis={"title": {"text": "true positive rate"}, "range": [0, 1.02]})
    _layout(pr, f"{task['task']}: precision-recall curves", xaxis={"title": {"text": "recall"}, "range": [0, 1]}, yaxis={"title": {"text": "precision"}, "range": [0, 1.02]})
    prefix = f"{experiment_id}-{task['task']}"
    return {f"roc-{prefix}": _figure_html(roc, f"roc-{prefix}"), f"pr-{prefix}": _figure_html(pr, f"pr-{prefix}")}


def threshold_figures(experiment_id: int, task: dict[str, Any]) -> dict[str, str]:
    """F1 against the threshold per model run, the tuned thresholds marked."""
    import plotly.graph_objects as go

    found = {}
    for view in task["thresholds"]:
        figure = go.Figure(
            go.Scatter(
                x=view["curve"]["threshold"], y=view["curve"]["f1"], mode="lines", name="F1 (pooled out-of-fold rows)",
                hovertemplate="threshold %{x:.3f}<br>F1 %{y:.3f}<extra></extra>",
            )
        )  # fmt: skip
        figure.add_vline(x=view["threshold"], line={"color": "#d62728", "width": 2}, annotation_text=f"out-of-fold threshold {view['threshold']:.3f}")
        for fold, value in view["fold_thresholds"].items():
            figure.add_vline(x=value, line={"color": "#999", "dash": "dot"}, annotation_text=f"fold {fold}", annotation_position="bottom right")
        _layout(figure, f"{task['task']}: F1 against the threshold, {view['run']}", xaxis={"title": {"text": "threshold"}, "range": [0, 1]}, yaxis={"title": {"text": "F1"}})
        div = f"threshold-{experiment_id}-{task['task']}-{view['run_id']}"
        found[div] = _figure_html(figure, div)
    return found


def language_figures(experiment_id: int, task: dict[str, Any]) -> dict[str, str]:
    """Per language, each run's F1@oof and ROC-AUC with their intervals; chrF against the F1 gain."""
    import plotly.graph_objects as go

    languages = task["languages"]["languages"]
    found = {}
    for metric in ("f1@oof", "roc_auc"):
        figure = go.Figure()
        for run in task["languages"]["runs"]:
            scores = [run["metrics"][metric].get(language) or {} for language in languages]
            values = [s.get("value") for s in scores]
            above = [None if s.get("value") is None or s.get("high") is None else s["high"] - s["value"] for s in scores]
            below = [None if s.get("value") is None or s.get("low") is None else s["value"] - s["low"] for s in scores]
            figure.add_trace(
                go.Bar(
                    x=languages, y=values, name=run["run"], meta=run["run_id"],
                    error_y={"type": "data", "symmetric": False, "array": above, "arrayminus": below},
                    hovertemplate="%{fullData.name}<br>%{x}: %{y:.3f}<extra></extra>",
                )
            )  # fmt: skip
        _layout(figure, f"{task['task']}: {metric} per language (95 % intervals)", barmode="group", yaxis={"title": {"text": metric}})
        div = f"languages-{experiment_id}-{task['task']}-{metric}"
        found[div] = _figure_html(figure, div)
    if task["gains"]:
        figure = go.Figure()
        for run_id in sorted({p["run_id"] for p in task["gains"]}):
            points = [p for p in task["gains"] if p["run_id"] == run_id]
            figure.add_trace(
                go.Scatter(
                    x=[p["chrf"] for p in points], y=[p["gain"] for p in points], text=[p["language"] for p in points],
                    mode="markers+text", textposition="top center", meta=run_id,
                    name=f"{points[0]['run']} ({points[0]['mode']}) over {points[0]['orig_run']}",
                    hovertemplate="%{text}: chrF %{x:.1f}, F1 gain %{y:+.3f}<extra>%{fullData.name}</extra>",
                )
            )  # fmt: skip
        figure.add_hline(y=0, line={"color": "#bbb"})
        _layout(figure, f"{task['task']}: chrF of the translator against the F1@oof gain over mode orig", xaxis={"title": {"text": "chrF"}}, yaxis={"title": {"text": "F1@oof gain"}})
        div = f"chrf-gain-{experiment_id}-{task['task']}"
        found[div] = _figure_html(figure, div)
    return found


def training_figure(experiment_id: int, run: dict[str, Any]) -> dict[str, str]:
    """A model run's training loss and validation scores per epoch, a line per fold."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation score"))
    for fold in run["folds"]:
        if fold["steps"]:
            figure.add_trace(
                go.Scatter(
                    x=[p["x"] for p in fold["steps"]], y=[p["loss"] for p in fold["steps"]], mode="lines+markers",
                    name=f"fold {fold['fold']} training loss", hovertemplate="epoch %{x:.2f}: loss %{y:.4f}<extra>%{fullData.name}</extra>",
                ),
                row=1, col=1,
            )  # fmt: skip
        epochs = [p["epoch"] for p in fold["validation"]]
        if epochs:
            figure.add_trace(
                go.Scatter(
                    x=epochs, y=[p.get("loss") for p in fold["validation"]], mode="lines+markers", line={"dash": "dash"},
                    name=f"fold {fold['fold']} validation loss", hovertemplate="epoch %{x}: loss %{y:.4f}<extra>%{fullData.name}</extra>",
                ),
                row=1, col=1,
            )  # fmt: skip
            for key, label in (("f1", "validation F1@0.5"), ("roc_auc", "validation ROC-AUC")):
                figure.add_trace(
                    go.Scatter(
                        x=epochs, y=[p.get(key) for p in fold["validation"]], mode="lines+markers",
                        name=f"fold {fold['fold']} {label}", hovertemplate="epoch %{x}: %{y:.4f}<extra>%{fullData.name}</extra>",
                    ),
                    row=1, col=2,
                )  # fmt: skip
    _layout(figure, f"{run['run']}: training (per fold)")
    figure.update_xaxes(title_text="epoch")
    div = f"training-{experiment_id}-{run['run_id']}"
    return {div: _figure_html(figure, div)}


def split_figure(experiment_id: int, split: dict[str, Any]) -> dict[str, str]:
    """Rows of each language per fold, stacked, with each fold's positive rate on hover."""
    import plotly.graph_objects as go

    folds = [f"fold {f['fold']}" for f in split["folds"]]
    figure = go.Figure()
    for language in split["languages"]:
        figure.add_trace(
            go.Bar(
                x=folds, y=[f["languages"].get(language, 0) for f in split["folds"]], name=language,
                customdata=[f["positive_rate"] for f in split["folds"]],
                hovertemplate="%{x}, %{fullData.name}: %{y} rows (fold positive rate %{customdata:.3f})<extra></extra>",
            )
        )  # fmt: skip
    _layout(figure, f"{split['label']}: rows per fold and language", barmode="stack", yaxis={"title": {"text": "rows"}})
    div = f"split-{experiment_id}-{split['stage_id']}"
    return {div: _figure_html(figure, div)}


def _milliseconds(start: str, end: str) -> float:
    import datetime as dt

    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds() * 1000.0


def timeline_figure(experiment_id: int, timeline: dict[str, Any], now: str) -> dict[str, str]:
    """A Gantt chart of the stages: queue wait in grey, run time coloured by worker host."""
    import plotly.graph_objects as go

    stages = timeline["stages"]
    names = [f"#{s['stage_id']} {s['label']}" for s in stages]
    figure = go.Figure()
    waited = [(name, s) for name, s in zip(names, stages, strict=True) if s["queued_at"] and s["started_at"]]
    if waited:
        figure.add_trace(
            go.Bar(
                y=[n for n, _ in waited], base=[s["queued_at"] for _, s in waited], x=[_milliseconds(s["queued_at"], s["started_at"]) for _, s in waited],
                orientation="h", name="queue wait", marker={"color": "#cccccc"}, customdata=[s["stage_id"] for _, s in waited],
                hovertemplate="%{y}<br>queued %{base}<br>waited %{x:,.0f} ms<extra>queue wait</extra>",
            )
        )  # fmt: skip
    hosts = sorted({s["host"] for s in stages})
    for number, host in enumerate(hosts):
        ran = [(name, s) for name, s in zip(names, stages, strict=True) if s["host"] == host]
        figure.add_trace(
            go.Bar(
                y=[n for n, _ in ran], base=[s["started_at"] for _, s in ran], x=[_milliseconds(s["started_at"], s["finished_at"] or now) for _, s in ran],
                orientation="h", name=f"run on {host}", marker={"color": HOST_COLOURS[number % len(HOST_COLOURS)]},
                customdata=[[s["stage_id"], s["status"], s["attempts"], "cached" if s["cached"] else ""] for _, s in ran],
                hovertemplate="%{y}<br>started %{base}<br>ran %{x:,.0f} ms, %{customdata[1]}, attempts %{customdata[2]} %{customdata[3]}<extra>%{fullData.name}</extra>",
            )
        )  # fmt: skip
    _layout(
        figure, "stages: queue wait and run time", barmode="overlay", height=max(300, 26 * len(names) + 120),
        xaxis={"type": "date", "title": {"text": "time (UTC)"}}, yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": names},
    )  # fmt: skip
    div = f"timeline-{experiment_id}"
    return {div: _figure_html(figure, div)}


def figures_of(report: dict[str, Any]) -> dict[str, str]:
    """Every figure of the page, by its element id."""
    found: dict[str, str] = {}
    for section in report["experiments"]:
        experiment_id = section["id"]
        for task in section["tasks"]:
            found.update(curve_figures(experiment_id, task))
            found.update(threshold_figures(experiment_id, task))
            found.update(language_figures(experiment_id, task))
        for run in section["training"]:
            found.update(training_figure(experiment_id, run))
        for split in section["splits"]:
            found.update(split_figure(experiment_id, split))
        if section["timeline"]["stages"]:
            found.update(timeline_figure(experiment_id, section["timeline"], report["generated_at"]))
    return found


def render_page(report: dict[str, Any]) -> str:
    """The report as one HTML page that opens offline."""
    from jinja2 import Environment, StrictUndefined
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    from relctl_evaluator.report_template import PAGE

    environment = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["fixed"] = _fixed
    environment.filters["signed"] = _signed
    figures = {div: Markup(html) for div, html in figures_of(report).items()}  # Plotly's output: its data as JSON with < and / escaped
    title = ", ".join(f"{s['id']} {s['name']}" for s in report["experiments"])
    return environment.from_string(PAGE).render(
        report=report, figures=figures, plotly_js=Markup(get_plotlyjs()), title=title, sections=SECTIONS
    )


def check_writable(output: Path) -> None:
    """Bad input (exit 2) when ``output`` cannot be written, before any work is done."""
    parent = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise InputError("is a folder, not a file", path=f"--output {output}")
    if not parent.is_dir():
        raise InputError(f"cannot write the report: folder {parent} does not exist", path=f"--output {output}")
    if not os.access(parent, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise InputError(f"cannot write the report: no permission to write in {parent}", path=f"--output {output}")


def _file_mode(output: Path) -> int:
    """The mode the page gets: the replaced file's, or a new file's under the umask (mkstemp's is 0600)."""
    if output.exists():
        return stat.S_IMODE(output.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_page(output: Path, page: str) -> None:
    """Write the page through a temporary file beside it, so that a failed write leaves no half page."""
    check_writable(output)
    parent = output.parent if str(output.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        os.chmod(temporary, _file_mode(output))
        os.replace(temporary, output)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"cannot write the report: {exc.strerror or exc}", path=f"--output {output}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""One renderer for people (rich tables, states in colour) and scripts (--json)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (CI logs, `| less`) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 160)
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

STATE_STYLE = {"pending": "dim", "queued": "cyan", "running": "yellow", "done": "green", "failed": "bold red", "cancelled": "magenta"}


def state(text: str) -> str:
    return f"[{STATE_STYLE.get(text, 'white')}]{text}[/]"


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, states: str | None = None) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column, justify="right" if column in {"mean", "std", "folds", "id", "F1avg"} else "left")
    for row in rows:
        cells = [fmt(v) for v in row]
        if states is not None:
            index = list(columns).index(states)
            cells[index] = state(cells[index])
        out.add_row(*cells)
    return out

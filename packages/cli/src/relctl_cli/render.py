"""One renderer for people (rich tables, states in colour) and scripts (--json)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


class _ConsoleOnFirstUse:
    """A rich Console made when first used: a command that prints only JSON never imports rich."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Piped output (CI logs, `| less`) gets wide tables instead of rich's 80-column default.
            width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or 160)
            object.__setattr__(self, "_console", Console(width=width, **self._options))
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._made(), name, value)


console: Console = _ConsoleOnFirstUse()  # type: ignore[assignment]
err_console: Console = _ConsoleOnFirstUse(stderr=True)  # type: ignore[assignment]

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


def with_interval(mean: Any, low: Any, high: Any) -> str:
    """A mean and its 95 % interval as a leaderboard shows them: 0.8070 [0.7990, 0.8150]."""
    if low is None or high is None:
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


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
    from rich.table import Table

    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column, justify="right" if column in {"mean", "mean [95 % interval]", "std", "folds", "id", "F1avg"} else "left")
    for row in rows:
        cells = [fmt(v) for v in row]
        if states is not None:
            index = list(columns).index(states)
            cells[index] = state(cells[index])
        out.add_row(*cells)
    return out

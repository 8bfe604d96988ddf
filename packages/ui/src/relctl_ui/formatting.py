"""How the pages write numbers, intervals and times (Jinja2 filters)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from jinja2 import Environment


def fixed(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def signed(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}"


def with_interval(mean: Any, low: Any, high: Any, digits: int = 3) -> str:
    """0.807 [0.799, 0.815]; the mean alone where no interval was computed."""
    if low is None or high is None:
        return fixed(mean, digits)
    return f"{fixed(mean, digits)} [{fixed(low, digits)}, {fixed(high, digits)}]"


def signed_interval(difference: Any, low: Any, high: Any, digits: int = 3) -> str:
    return f"{signed(difference, digits)} [{signed(low, digits)}, {signed(high, digits)}]"


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def exact(value: Any) -> str:
    """A number in full, for a data- attribute that scripts and tests read ("" where undefined)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def install(environment: Environment) -> None:
    environment.filters.update(fixed=fixed, signed=signed, when=when, exact=exact, seconds=seconds)
    environment.globals.update(with_interval=with_interval, signed_interval=signed_interval)

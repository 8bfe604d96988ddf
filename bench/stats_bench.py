"""Benchmark: the query-grouped bootstrap and the paired permutation test (relctl_evaluator.stats) against
the implementation of an older commit, side by side in one run, on the same rows.

`comparisons()` is what `relctl compare` and the UI's compare page compute (2,000 resamples and 1,000
permutations), `metric_intervals()` what an evaluate stage and the report compute (every resampled
metric from the same 2,000 resamples). Rows are synthetic, shaped like the demo's and the QC sample's
out-of-fold rows: about 4 rows a query, 6 languages, 70 % relevant, probs with 3 decimals (ties).
Both implementations must give the same figures (the largest difference is printed); the ratio is the
older one's time over this one's.

    .venv/bin/python bench/stats_bench.py --old e995e3c [--rows 2000,8000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STATS = "packages/evaluator/src/relctl_evaluator/stats.py"
LANGUAGES = np.array(["en", "de", "fr", "es", "ja", "ar"])


def module_at(revision: str) -> ModuleType:
    """relctl_evaluator.stats as it was at ``revision``, imported under a name of its own."""
    source = subprocess.run(["git", "show", f"{revision}:{STATS}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="stats-old-")) / "stats_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("stats_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stats_old"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def rows(n: int, folds: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    queries = rng.integers(0, max(1, n // 4), n)
    labels = rng.random(n) < 0.7
    prob_a = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1).round(3)
    prob_b = np.clip(labels * 0.25 + rng.random(n) * 0.75, 0, 1).round(3)
    return labels.astype(int), queries % folds, queries, LANGUAGES[queries % LANGUAGES.size], prob_a, prob_b


def timed(call, repeats: int) -> tuple[float, float, object]:
    """(median wall, median CPU seconds, the last result)."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def figures(result: dict) -> list[float]:
    """Every number of a comparisons() or metric_intervals() result, in a fixed order."""
    found: list[float] = []
    for key in sorted(result, key=str):
        value = result[key]
        if isinstance(value, dict):
            found += figures(value)
        else:  # an Interval or a Comparison: its float fields
            found += [float(getattr(value, name)) for name in value.__dataclass_fields__ if isinstance(getattr(value, name), float)]
    return found


def largest_difference(a: dict, b: dict) -> float:
    x, y = figures(a), figures(b)
    assert len(x) == len(y)
    return max((abs(u - v) for u, v in zip(x, y, strict=True) if not (math.isnan(u) and math.isnan(v))), default=0.0)


def cases(labels, folds, queries, languages, prob_a, prob_b) -> list[tuple[str, Callable[[ModuleType], dict]]]:
    """(name, call of a stats module) of what is timed."""

    def scored(module: ModuleType):
        return module.ScoredRows.of(labels, folds, queries, languages)

    found: list[tuple[str, Callable[[ModuleType], dict]]] = [
        (f"comparisons {metric}", lambda module, metric=metric: module.comparisons(metric, scored(module), prob_a, prob_b, by_language=True))
        for metric in ("f1@oof", "roc_auc", "f1@0.5")
    ]
    found.append(("metric_intervals, all 8 metrics", lambda module: module.metric_intervals(list(module.RESAMPLED), scored(module), prob_a, by_language=True)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the commit whose stats.py is the baseline")
    parser.add_argument("--rows", default="2000,8000", help="scored rows, comma-separated")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "packages/evaluator/src"))
    from relctl_evaluator import stats as new

    old = module_at(args.old)
    print(f"relctl_evaluator.stats now against {args.old}; {args.folds} folds, by language, medians of {args.repeats}")
    print("| rows | call | before (CPU s) | now (CPU s) | ratio | now (wall s) | largest difference |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.rows.split(",")):
        for name, call in cases(*rows(n, args.folds)):
            _, before_cpu, before = timed(lambda call=call: call(old), args.repeats)
            now_wall, now_cpu, now = timed(lambda call=call: call(new), args.repeats)
            print(f"| {n:,} | {name} | {before_cpu:.2f} | {now_cpu:.2f} | {before_cpu / now_cpu:.1f}x | {now_wall:.2f} | {largest_difference(before, now):.1e} |", flush=True)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

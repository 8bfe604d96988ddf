"""Benchmark: relctl's category-aware split against scikit-learn's StratifiedGroupKFold and GroupKFold.

Synthetic QC- and QI-like rows (bench/split_data.py: about 5 rows a query, 10 languages, 68% relevant,
category paths of 2 to 5 levels whose groups queries link as on the real QC sample) at each size, and
on the same rows in the same run:

- relctl: `assign_folds(strategy="category-aware")`; for QC at each `--depths` (the default depth 2);
- relctl@COMMIT (with `--before COMMIT`): the same, with folds.py of that commit;
- StratifiedGroupKFold: groups = queries, classes = language x label (what relctl's QI split
  stratifies by), shuffled with the same seed;
- GroupKFold: groups = queries;
- for QC also StratifiedGroupKFold with groups = category groups, the other half of what relctl keeps.

Each split runs in a fresh Python process that builds the rows first: wall and CPU time of the split
alone, and its peak memory (the high-water mark of resident memory, reset after the rows are built,
less the memory held before the split). Each is audited with `relctl_splitter.audit.audit_split`:
fold sizes, positive-rate range, query leakage and, for QC, category-group leakage. Then the real QC
sample (../shared/data/qc-sample), queries as in the file and as relctl's ingest cleans them, at
depths 2 and 3: the audit at seed 42 and query leakage over `--sample-seeds` seeds, for relctl and,
with `--before`, for the code of that commit. Prints Markdown tables (timings with the ratio to
StratifiedGroupKFold); raw figures go to bench/split_bench.last.json.

    .venv/bin/python bench/split_bench.py
    .venv/bin/python bench/split_bench.py --depths 2,3 --repeats 3,1 --before e3b9bf0 --before-depths 2
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SAMPLE = REPO.parent / "shared" / "data" / "qc-sample" / "train_QC.jsonl"
FOLDS_FILE = "packages/splitter/src/relctl_splitter/folds.py"
N_FOLDS = 5
SEED = 42
SGKF = "StratifiedGroupKFold"

Rows = dict[str, list]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="100000,1000000", help="synthetic sizes, comma-separated")
    parser.add_argument("--tasks", default="QC,QI")
    parser.add_argument("--depths", default="2", help="QC category depths of relctl's split")
    parser.add_argument(
        "--repeats",
        default="1",
        help="fresh processes per split: one number, or one per size; the median is shown",
    )
    parser.add_argument("--before", help="also run folds.py of this commit (e.g. e3b9bf0)")
    parser.add_argument("--before-rows", help="sizes for --before (default: all of --rows)")
    parser.add_argument("--before-depths", help="QC depths for --before (default: --depths)")
    parser.add_argument(
        "--sample-seeds", type=int, default=10, help="seeds for the QC sample's leakage spread"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return 0

    before_file = extract_folds(args.before) if args.before else None
    before_rows = {int(n) for n in (args.before_rows or args.rows).split(",")}
    depths = [int(d) for d in args.depths.split(",")]
    before_depths = [int(d) for d in (args.before_depths or args.depths).split(",")]
    sizes = [int(n) for n in args.rows.split(",")]
    repeats = [int(r) for r in args.repeats.split(",")]
    if len(repeats) != len(sizes):
        repeats = repeats[:1] * len(sizes)
    repeats_of_size = dict(zip(sizes, repeats, strict=True))
    results: list[dict[str, Any]] = []
    for n_rows in sizes:
        for task in args.tasks.split(","):
            methods: list[tuple[str, int, str | None]] = [
                ("relctl", depth, None) for depth in (depths if task == "QC" else [2])
            ]
            if before_file and n_rows in before_rows:
                methods += [
                    (f"relctl@{args.before}", depth, before_file)
                    for depth in (before_depths if task == "QC" else [2])
                ]
            methods += [(SGKF, 2, None), ("GroupKFold", 2, None)]
            if task == "QC":
                methods.append((f"{SGKF} by category group", 2, None))
            for method, depth, folds_file in methods:
                spec = {
                    "task": task,
                    "rows": n_rows,
                    "method": method,
                    "depth": depth,
                    "folds_file": folds_file,
                }
                runs = [run_worker(spec) for _ in range(repeats_of_size[n_rows])]
                results.append(
                    {
                        **runs[0],
                        "wall": [r["wall"] for r in runs],
                        "cpu": [r["cpu"] for r in runs],
                        "peak_mb": [r["peak_mb"] for r in runs],
                    }
                )
                print(
                    f"  {task} {n_rows:>9,} {method} depth {depth}: {statistics.median(results[-1]['wall']):.2f} s",
                    file=sys.stderr,
                    flush=True,
                )

    sample: list[dict[str, Any]] = []
    if SAMPLE.exists():
        codes = [("relctl", None)] + ([(f"relctl@{args.before}", before_file)] if before_file else [])
        for queries in ("raw", "cleaned"):
            for depth in (2, 3):
                for method, folds_file in codes:
                    spec = {
                        "sample": queries,
                        "method": method,
                        "depth": depth,
                        "folds_file": folds_file,
                        "seeds": args.sample_seeds,
                    }
                    sample.append(run_worker(spec))

    print_tables(results, sample)
    (BENCH / "split_bench.last.json").write_text(
        json.dumps({"synthetic": results, "sample": sample}, indent=2)
    )
    return 0


def extract_folds(commit: str) -> str:
    """folds.py as it was at ``commit``, in a temporary file (the module needs nothing but numpy)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:{FOLDS_FILE}"], capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="relctl-split-bench-")) / f"folds_{commit}.py"
    path.write_text(source)
    return str(path)


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- inside one fresh process ---------------------------------------------------------------------


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the rows, then time one split and audit it (the QC sample: over several seeds)."""
    from relctl_splitter.audit import audit_split

    if "sample" in spec:
        return measure_sample(spec)
    sys.path.insert(0, str(BENCH))
    from split_data import make_rows

    task, depth = spec["task"], spec["depth"]
    rows = make_rows(task, spec["rows"], seed=0)
    split = splitter(spec["method"], task, depth, spec.get("folds_file"))
    gc.collect()
    held = memory_kib("VmRSS")
    reset_peak_memory()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    fold_of_row = split(rows)
    wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    peak_mb = (memory_kib("VmHWM") - held) / 1024
    report = audit_split(task=task, folds=fold_of_row, category_depth=depth, **rows)
    return {
        "task": task,
        "rows": len(rows["queries"]),
        "queries": len(set(rows["queries"])),
        "method": spec["method"],
        "depth": depth,
        "wall": wall,
        "cpu": cpu,
        "peak_mb": peak_mb,
        **balance(report),
    }


def measure_sample(spec: dict[str, Any]) -> dict[str, Any]:
    from relctl_core.data import clean_examples, load_examples
    from relctl_splitter.audit import audit_split

    examples = load_examples(SAMPLE, "QC", require_label=True)
    if spec["sample"] == "cleaned":
        examples, _ = clean_examples(examples)
    rows = {
        "queries": [e.query for e in examples],
        "targets": [e.target for e in examples],
        "labels": [int(e.label or 0) for e in examples],
        "languages": [e.language for e in examples],
    }
    split = splitter(spec["method"], "QC", spec["depth"], spec.get("folds_file"))
    leakage, walls = [], []
    for seed in [SEED, *(s for s in range(spec["seeds"]) if s != SEED)][: spec["seeds"]]:
        started = time.perf_counter()
        fold_of_row = split(rows, seed)
        walls.append(time.perf_counter() - started)
        report = audit_split(task="QC", folds=fold_of_row, category_depth=spec["depth"], **rows)
        leakage.append(report["query_leakage"])
        if seed == SEED:
            at_seed = balance(report)
    return {
        "sample": spec["sample"],
        "method": spec["method"],
        "depth": spec["depth"],
        "rows": len(examples),
        **at_seed,
        "leakage_over_seeds": leakage,
        "wall_median": statistics.median(walls),
    }


def splitter(method: str, task: str, depth: int, folds_file: str | None) -> Callable[..., np.ndarray]:
    """A function of (rows, seed) giving each row's fold, for one method."""
    if method.startswith("relctl"):
        module = load_module(folds_file) if folds_file else importlib.import_module("relctl_splitter.folds")

        def relctl(rows: Rows, seed: int = SEED) -> np.ndarray:
            return module.assign_folds(
                task=task, strategy="category-aware", n_folds=N_FOLDS, category_depth=depth, seed=seed, **rows
            )

        return relctl

    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    def sklearn_folds(rows: Rows, seed: int = SEED) -> np.ndarray:
        n_rows = len(rows["queries"])
        features = np.zeros((n_rows, 1))
        if method == "GroupKFold":
            splits = GroupKFold(n_splits=N_FOLDS).split(features, groups=rows["queries"])
        else:
            from relctl_splitter.folds import category_group

            if method == SGKF:
                groups = rows["queries"]
            else:
                groups = [category_group(path, depth) for path in rows["targets"]]
            strata = [
                f"{language}:{label}"
                for language, label in zip(rows["languages"], rows["labels"], strict=True)
            ]
            stratified = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
            splits = stratified.split(features, strata, groups)
        fold_of_row = np.empty(n_rows, dtype=np.int64)
        for fold, (_, validation) in enumerate(splits):
            fold_of_row[validation] = fold
        return fold_of_row

    return sklearn_folds


def load_module(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def balance(report: dict[str, Any]) -> dict[str, Any]:
    """Fold sizes, positive rates, the largest deviation of a fold's positive or negative row count
    from its target (the band of CLASS_COUNT_TOLERANCE bounds it for relctl's QC split), leakage."""
    sizes = np.array([fold["rows"] for fold in report["folds"]])
    rates = np.array([fold["positive_rate"] for fold in report["folds"]])
    positives = np.rint(sizes * rates)
    classes = np.stack([positives, sizes - positives])
    off_target = np.abs(classes / classes.mean(axis=1, keepdims=True) - 1).max()
    return {
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        "positive_min": float(rates.min()),
        "positive_max": float(rates.max()),
        "class_off_target": float(off_target),
        "query_leakage": report["query_leakage"],
        "group_leakage": report["group_leakage"],
    }


def memory_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: its high-water mark)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+)", status, re.MULTILINE).group(1))


def reset_peak_memory() -> None:
    # Linux: writing 5 to clear_refs resets the high-water mark to the memory resident now
    Path("/proc/self/clear_refs").write_text("5")


# --- tables ---------------------------------------------------------------------------------------


def print_tables(results: list[dict[str, Any]], sample: list[dict[str, Any]]) -> None:
    print(
        "| task | rows | split | wall s | CPU s | peak MB | fold sizes | positive rate | class counts off "
        "target | query leakage | group leakage | wall / SGKF |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        reference = next(
            r
            for r in results
            if r["task"] == result["task"] and r["rows"] == result["rows"] and r["method"] == SGKF
        )
        wall = statistics.median(result["wall"])
        method = result["method"] + (
            f" (depth {result['depth']})"
            if result["method"].startswith("relctl") and result["task"] == "QC"
            else ""
        )
        group = "–" if result["group_leakage"] is None else f"{result['group_leakage']:.1%}"
        print(
            f"| {result['task']} | {result['rows']:,} | {method} | {wall:.2f} | {statistics.median(result['cpu']):.2f} "
            f"| {statistics.median(result['peak_mb']):.0f} | {result['size_min']:,}–{result['size_max']:,} "
            f"| {result['positive_min']:.1%}–{result['positive_max']:.1%} | {result['class_off_target']:.1%} "
            f"| {result['query_leakage']:.1%} | {group} "
            f"| {wall / statistics.median(reference['wall']):.2f} |"
        )
    if not sample:
        return
    seeds = len(sample[0]["leakage_over_seeds"])
    print(
        f"\n| QC sample queries | depth | code | query leakage (seed {SEED}) | group leakage | fold sizes "
        f"| positive rate | class counts off target | query leakage over {seeds} seeds: mean (min–max) "
        "| wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for entry in sample:
        over = entry["leakage_over_seeds"]
        print(
            f"| {entry['sample']} | {entry['depth']} | {entry['method']} | {entry['query_leakage']:.2%} "
            f"| {entry['group_leakage']:.1%} | {entry['size_min']:,}–{entry['size_max']:,} "
            f"| {entry['positive_min']:.1%}–{entry['positive_max']:.1%} | {entry['class_off_target']:.1%} "
            f"| {statistics.mean(over):.2%} ({min(over):.2%}–{max(over):.2%}) | {entry['wall_median']:.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())

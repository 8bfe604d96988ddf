"""Benchmark: relctl's model against both baselines on the real QC sample, same folds, one run.

Runs `relctl run bench/qc_sample.yaml` in a fresh RELCTL_HOME (or `--home DIR`), then prints F1 at
0.5, F1 at the out-of-fold threshold and ROC-AUC of the model beside the lexical and "all relevant"
baselines, with the margins, as a Markdown table for bench/RESULTS.md, each mean with its 95 %
interval (resampled by query); then `relctl compare` of the model against each baseline, so that every
margin comes with its paired interval, p-value and verdict. The raw leaderboard rows and comparisons go
to bench/qc_sample.last.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SPEC = BENCH / "qc_sample.yaml"
RELCTL = str(Path(sys.executable).with_name("relctl"))
METRICS = ("f1@0.5", "f1@oof", "roc_auc", "pr_auc")


def main() -> int:
    # --home DIR re-uses a state folder: stages already computed there are served from the cache.
    home = Path(sys.argv[sys.argv.index("--home") + 1]) if "--home" in sys.argv else Path(tempfile.mkdtemp(prefix="relctl-bench-"))
    env = {**os.environ, "RELCTL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.setdefault("RELCTL_MODEL_STORE", str(BENCH.parent / ".relctl" / "models"))
    started = time.monotonic()
    done = subprocess.run([RELCTL, "run", str(SPEC), "--json"], env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        return done.returncode
    board = json.loads(done.stdout)
    rows = {r["run"]: r for r in board["rows"]}
    model = next(r for r in board["rows"] if r["kind"] == "model")
    lexical, everything = rows["baseline:lexical"], rows["baseline:all-relevant"]
    def interval(row: dict[str, object]) -> str:
        return f" [{row['low']:.4f}, {row['high']:.4f}]" if row.get("low") is not None else ""

    lines = [
        f"| {name} | {r['f1@0.5']:.4f} | {r['f1@oof']:.4f}{interval(r)} ± {r['std']:.4f} | {r['roc_auc']:.4f} | {r['pr_auc']:.4f} |"
        for name, r in (("multilingual-e5-small + LoRA", model), ("lexical (TF-IDF + LR)", lexical), ("all relevant", everything))
    ]
    comparisons = []
    for other, metric in ((everything, "f1@oof"), (lexical, "f1@oof"), (lexical, "roc_auc"), (everything, "roc_auc")):
        compared = subprocess.run(
            [RELCTL, "compare", str(model["run_id"]), str(other["run_id"]), "--metric", metric, "--by", "language", "--json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if compared.returncode != 0:
            print(compared.stderr[-2000:])
            return compared.returncode
        comparisons.append(json.loads(compared.stdout))
    verdict = (
        f"ROC-AUC margin over lexical: {model['roc_auc'] - lexical['roc_auc']:+.4f}; "
        f"F1@oof margin over all relevant: {model['f1@oof'] - everything['f1@oof']:+.4f}; "
        f"folds: {model['folds']}; wall time: {wall / 60:.1f} min"
    )
    print("| run | F1@0.5 | F1@oof (mean ± std) | ROC-AUC | PR-AUC |\n|---|---|---|---|---|")
    print("\n".join(lines))
    print(verdict)
    print("\n| model minus | metric | difference [95 % interval] | p | verdict |\n|---|---|---|---|---|")
    for c in comparisons:
        print(f"| {c['b']['run']} | {c['metric']} | {c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] | {c['p_value']:.3f} | {c['verdict']} |")
    result = {"rows": [model, lexical, everything], "comparisons": comparisons, "wall_seconds": wall}
    (BENCH / "qc_sample.last.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

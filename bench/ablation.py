"""The method's ablations on the real QC sample: `relctl run bench/ablation.yaml`, then one table.

Each arm's F1@0.5, F1@oof and ROC-AUC (CV means over the trained folds, each with its 95 % interval
resampled by query), and for every arm on the base run's folds its paired difference from the base
(`relctl compare ARM BASE`: query-grouped paired bootstrap and permutation p-value). The split arms
are on other folds, so they are set beside the base with their own intervals: how much each CV
estimate moves with the split. Then, on the holdout fold, one fold model against the mean of the fold
models (the ensemble arm: every fold model predicts rows none trained or validated on). Then chrF per language of the translator beside the F1@oof gain of
`orig+en` over `orig` in that language. Markdown for bench/RESULTS.md; raw numbers to
bench/ablation.last.json.

    .venv/bin/python bench/ablation.py [--home DIR] [--spec FILE]   (DIR re-uses computed stages)
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
SPEC = BENCH / "ablation.yaml"
RELCTL = str(Path(sys.executable).with_name("relctl"))
METRICS = ("f1@0.5", "f1@oof", "roc_auc")
SAME_FOLDS = ("base", "mode=en", "mode=orig+en", "target_form=leaf-first")


def relctl(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([RELCTL, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"relctl {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> int:
    home = Path(sys.argv[sys.argv.index("--home") + 1]) if "--home" in sys.argv else Path(tempfile.mkdtemp(prefix="relctl-ablation-"))
    spec = Path(sys.argv[sys.argv.index("--spec") + 1]) if "--spec" in sys.argv else SPEC
    env = {**os.environ, "RELCTL_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.setdefault("RELCTL_MODEL_STORE", str(BENCH.parent / ".relctl" / "models"))
    started = time.monotonic()
    board = relctl(env, "run", str(spec), "--json")
    wall = time.monotonic() - started
    experiment = board["rows"][0]["experiment_id"]
    scores: dict[str, dict[str, dict]] = {}
    for metric in METRICS:
        ranked = relctl(env, "leaderboard", "--experiment", str(experiment), "--metric", metric, "--json", "--no-marks")
        for row in ranked["rows"]:
            if row["language"] is None:
                scores.setdefault(row["run"], {})[metric] = row
    run_id = {name: rows["f1@oof"]["run_id"] for name, rows in scores.items()}
    compared = {
        (arm, metric): relctl(env, "compare", str(run_id[arm]), str(run_id["base"]), "--metric", metric, "--by", "language", "--json")
        for arm in SAME_FOLDS[1:] if arm in run_id for metric in METRICS
    }  # fmt: skip

    def cell(row: dict) -> str:
        return f"{row['mean']:.4f} [{row['low']:.4f}, {row['high']:.4f}]" if row.get("low") is not None else f"{row['mean']:.4f}"

    print(f"| arm | {' | '.join(METRICS)} |\n|---|" + "---|" * len(METRICS))
    for name in sorted(scores, key=lambda n: (not n.startswith("baseline"), n != "base", n)):
        print(f"| {name} | " + " | ".join(cell(scores[name][m]) for m in METRICS) + " |")
    print(f"\n| arm − base | {' | '.join(METRICS)} |\n|---|" + "---|" * len(METRICS))
    for arm in SAME_FOLDS[1:]:
        if arm in run_id:
            cells = [compared[(arm, m)] for m in METRICS]
            print(f"| {arm} | " + " | ".join(f"{c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] {c['verdict']}" for c in cells) + " |")
    holdout: dict[str, dict[str, dict]] = {}
    for metric in METRICS:
        for part in ("single", "ensemble", "ensemble-single"):
            ranked = relctl(env, "leaderboard", "--experiment", str(experiment), "--metric", f"holdout.{part}.{metric}", "--json", "--no-marks")
            for row in ranked["rows"]:
                if row["language"] is None and row["run"] == "base":
                    holdout.setdefault(part, {})[metric] = row
    if holdout:
        print(f"\n| base run on the holdout fold | {' | '.join(METRICS)} |\n|---|" + "---|" * len(METRICS))
        for part, label in (("single", "one fold model (mean of the 3)"), ("ensemble", "mean of the 3 fold models"), ("ensemble-single", "ensemble − one fold model")):
            if part in holdout:
                print(f"| {label} | " + " | ".join(cell(holdout[part][m]) if m in holdout[part] else "-" for m in METRICS) + " |")
    shown = relctl(env, "show", str(experiment), "--json")
    chrf = next((t["chrf"] for t in shown["translations"] if t.get("chrf")), {})
    gain = compared.get(("mode=orig+en", "f1@oof"), {}).get("languages", {})
    if chrf and gain:
        print("\n| language | chrF | F1@oof gain of orig+en over orig [95 % interval] |\n|---|---|---|")
        for language in sorted(gain):
            g = gain[language]
            print(f"| {language} | {chrf.get(language, float('nan')):.1f} | {g['difference']:+.4f} [{g['low']:+.4f}, {g['high']:+.4f}] |")
    print(f"\nwall time: {wall / 60:.1f} min, home {home}")
    (BENCH / "ablation.last.json").write_text(json.dumps({"scores": scores, "holdout": holdout, "compared": {f"{a} {m}": c for (a, m), c in compared.items()}, "chrf": chrf, "wall_seconds": wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: `relctl leaderboard` and `relctl list` on run databases of 100 to 10,000 experiments.

For each size, a fresh PostgreSQL database gets the schema from `relctl db upgrade`, then experiments
seeded the way relctl writes them: about 6 runs each (a LoRA-rank sweep of one task, a sweep over both
tasks, or both tasks beside one model for both, each with its two baselines per task), and per scored
task what the evaluator writes: every metric per trained fold (2 of 5) and as a CV aggregate (mean,
std, folds), overall and for each of 10 languages, plus the pooled threshold: 364 rows per run and
task, so 10,000 experiments hold about 23 million metric rows (the database behind the scale issue
held 19 million for 8,500). A third of the experiments read translated queries and store chrF per
language from their translate stage; one run in twenty is not done. Experiments, runs and stages go in
by COPY, metric rows are generated inside the database with the indexes dropped and rebuilt after, the
way a bulk load is done, then VACUUM ANALYZE brings the table to its steady state.

Then each command runs as a whole process (the real `relctl` with RELCTL_DATABASE_URL), several
times, beside its floor: a hand-written SQL query for the same rows, run by the smallest process that
can (python, psycopg, print the rows as JSON). It prints p50 wall time and peak RSS of each, and the
ratio to the floor, as a Markdown table; raw figures go to bench/leaderboard_bench.last.json.

    .venv/bin/python bench/leaderboard_bench.py                  # 100, 1,000 and 10,000 experiments
    .venv/bin/python bench/leaderboard_bench.py --old e3b9bf0    # also the Python ranking it replaced, up to 1,000
    .venv/bin/python bench/leaderboard_bench.py --experiments 1000 --keep   # keep the database to look at
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RELCTL = str(Path(sys.executable).with_name("relctl"))
SERVER = os.environ.get("RELCTL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")

LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pl", "pt")
REFERENCE_LANGUAGES = ("ar", "de", "es", "fr", "it", "ja", "ko", "pl", "pt")  # the translator's reference set
TRAINED_FOLDS = (0, 1)
# What score_out_of_fold writes per fold and group, in its order; the pooled threshold comes once per task.
METRICS = (
    "f1@0.5", "precision@0.5", "recall@0.5", "f1@oof", "precision@oof", "recall@oof",
    "threshold@oof", "roc_auc", "pr_auc", "positive_rate", "rows",
)  # fmt: skip
POOLED = "threshold@oof.pooled"
LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": None}
TRAIN = {
    "epochs": 2, "lr": 1.0e-4, "batch_size": 32, "grad_accum": 1, "scheduler": "linear", "warmup_ratio": 0.1,
    "weight_decay": 0.01, "max_length": 64, "precision": "auto", "seed": 42, "max_steps": None,
    "checkpoint_steps": 200, "tapt": None,
}  # fmt: skip
SPEC_TEXT = """\
name: {name}
task: {task}
data:
  qc: {{train: data/train_QC.txt, test: data/test_QC.txt}}
  qi: {{train: data/train_QI.txt}}
translation: {{enabled: {translated}, mode: {mode}, backend: causal-lm}}
split: {{strategy: category-aware, folds: 5, train_folds: [0, 1]}}
model: {{backbone: multilingual-e5-small, lora: {{r: 8, alpha: 16}}}}
train: {{epochs: 2, lr: 1.0e-4, batch_size: 32}}
sweep: {sweep}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=9, help="runs of each command; p50 of these")
    parser.add_argument("--old", default=None, help="a commit whose leaderboard.py is timed too (its Python ranking)")
    parser.add_argument("--old-max", type=int, default=1000, help="time --old up to this many experiments (it needs GBs beyond)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (their URLs are printed)")
    parser.add_argument("--url", default=None, help="time an already seeded database instead of seeding one")
    args = parser.parse_args()
    results = []
    for experiments in args.experiments:
        url = args.url or create_database(experiments)
        try:
            if not args.url:
                started = time.monotonic()
                counts = seed(url, experiments)
                counts["seed_s"] = round(time.monotonic() - started, 1)
                print(f"seeded {experiments:,} experiments in {counts['seed_s']} s: {counts}", file=sys.stderr)
            load = os.getloadavg()[0]
            figures = time_commands(url, args.repeats, args.old if experiments <= args.old_max else None)
            results.append({"experiments": experiments, "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1), **figures})
        finally:
            if args.keep or args.url:
                print(f"kept {url}", file=sys.stderr)
            else:
                drop_database(url)
    print(markdown(results))
    (BENCH / "leaderboard_bench.last.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


# --- the database -----------------------------------------------------------------------------------


def plain(url: str) -> str:
    """The URL as psycopg takes it (without SQLAlchemy's driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database(experiments: int) -> str:
    import psycopg

    name = f"relctl_bench_{experiments}_{secrets.token_hex(3)}"
    with psycopg.connect(plain(SERVER) + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    done = subprocess.run([RELCTL, "db", "upgrade"], env={**os.environ, "RELCTL_DATABASE_URL": url}, capture_output=True, text=True)
    if done.returncode != 0:
        drop_database(url)
        raise SystemExit(f"relctl db upgrade failed: {done.stderr}")
    return url


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(plain(SERVER) + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, experiments: int, *, seed_value: int = 7) -> dict[str, int]:
    """Write `experiments` experiments with their runs, evaluate and translate stages and metric rows."""
    import psycopg

    rng = random.Random(seed_value)
    plan = list(plan_experiments(experiments, rng))
    scored = [(stage_id, e[0], run_id, task, profile, skill) for e, _, stages in plan for stage_id, run_id, task, profile, skill in stages if run_id]
    phases: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        phases[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    with psycopg.connect(plain(url)) as conn:
        # A bulk load: foreign keys are right by construction, and indexes are rebuilt once at the end.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = [row[0] for row in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'metrics' AND indexname <> 'metrics_pkey'")]
        for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'metrics' AND indexname <> 'metrics_pkey'").fetchall():
            conn.execute(f'DROP INDEX "{name}"')
        with conn.cursor() as cur:
            copy_rows(cur, "experiments", ("id", "name", "status", "spec_path", "spec_text", "spec", "created_at", "finished_at"), (e for e, _, _ in plan))
            copy_rows(cur, "runs", ("id", "experiment_id", "name", "kind", "task", "config", "status", "created_at", "finished_at"), (r for _, runs, _ in plan for r in runs))
            copy_rows(cur, "stages", STAGE_COLUMNS, (stage_row(e, s) for e, _, stages in plan for s in stages))
            cur.execute("CREATE TEMPORARY TABLE scored (stage_id int, experiment_id int, run_id int, task text, profile text, skill float8)")
            copy_rows(cur, "scored", ("stage_id", "experiment_id", "run_id", "task", "profile", "skill"), iter(scored))
            phase("copy_s")
            cur.execute("SELECT setseed(0.42)")
            cur.execute(METRIC_ROWS, {"folds": list(TRAINED_FOLDS), "languages": list(LANGUAGES), "names": list(METRICS), "pooled": POOLED})
            cur.execute(CHRF_ROWS, {"languages": list(REFERENCE_LANGUAGES)})
            phase("metrics_s")
            for table in ("experiments", "runs", "stages", "metrics"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        for definition in indexes:
            conn.execute(definition)
        conn.commit()
        phase("indexes_s")
    # The F1avg pairs, as relctl writes them with the metrics they average (the same statement).
    from relctl_core.engine import get_engine
    from relctl_core.pairs import refresh_pairs

    with get_engine(url).begin() as connection:
        refresh_pairs(connection, None)
    get_engine(url).dispose()
    phase("pairs_s")
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        phase("vacuum_s")
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("experiments", "runs", "stages", "metrics", "pairs")}
    return {**counts, **phases}


STAGE_COLUMNS = ("id", "experiment_id", "run_id", "kind", "key", "label", "task_name", "queue", "config", "depends_on", "status", "attempts", "started_at", "finished_at")

# Per scored stage: each metric per trained fold and as the CV aggregate, overall and per language, then
# the pooled threshold. A run's level is its skill; "all relevant" scores the same everywhere (ties).
METRIC_ROWS = """
INSERT INTO metrics (experiment_id, run_id, stage_id, task, fold, language, name, value, std, n)
SELECT s.experiment_id, s.run_id, s.stage_id, s.task, f.fold, l.language, m.name,
       CASE
         WHEN s.profile = 'all-relevant' THEN CASE WHEN m.name IN ('roc_auc', 'pr_auc') THEN 0.5 ELSE 0.81 END
         WHEN f.fold IS NULL AND l.language = 'ko' AND m.name = 'roc_auc' AND random() < 0.02 THEN NULL
         ELSE s.skill + (random() - 0.5) * 0.1
       END,
       CASE WHEN f.fold IS NULL THEN random() * 0.05 END,
       CASE WHEN f.fold IS NULL THEN 2 END
FROM scored s
CROSS JOIN (SELECT unnest(%(folds)s::int[]) UNION ALL SELECT NULL) AS f(fold)
CROSS JOIN (SELECT NULL::text UNION ALL SELECT unnest(%(languages)s::text[])) AS l(language)
CROSS JOIN unnest(%(names)s::text[]) AS m(name)
UNION ALL
SELECT s.experiment_id, s.run_id, s.stage_id, s.task, NULL, NULL, %(pooled)s, 0.3 + random() * 0.4, NULL, 1000
FROM scored s
"""

# chrF of each translate stage on the reference set, per language (run_id NULL: a stage's, not a run's).
CHRF_ROWS = """
INSERT INTO metrics (experiment_id, run_id, stage_id, task, fold, language, name, value, std, n)
SELECT st.experiment_id, NULL, st.id, st.config->>'task', NULL, l.language, 'translation.chrf', 20 + random() * 40, NULL, 24
FROM stages st CROSS JOIN unnest(%(languages)s::text[]) AS l(language)
WHERE st.kind = 'translate'
"""


def copy_rows(cur, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def stage_row(experiment: tuple, stage: tuple) -> tuple:
    stage_id, run_id, task, profile, _skill = stage
    e_id, created = experiment[0], experiment[6]
    if run_id is None:
        config = {"task": task, "backend": "causal-lm", "model": None, "file": None, "batch_size": 64}
        return (stage_id, e_id, None, "translate", f"translate:{task}", f"translate {task} (causal-lm)", "relctl.translator.translate", "translate", json.dumps(config), "[]", "done", 1, created, created)
    config = {"task": task, "folds": list(TRAINED_FOLDS), "combine": "mean"}
    return (stage_id, e_id, run_id, "evaluate", f"evaluate:{run_id}:{task}", f"evaluate {profile} {task}", "relctl.evaluator.evaluate", "cpu", json.dumps(config), "[]", "done", 1, created, created)


def plan_experiments(count: int, rng: random.Random) -> Iterator[tuple]:
    """(experiment row, run rows, stages) per experiment; a stage is (id, run id or None, task, profile, skill)."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    run_id = stage_id = 0
    for e in range(1, count + 1):
        layout = rng.choices(("lora", "tasks", "both"), weights=(2, 2, 1))[0]
        translated = rng.random() < 1 / 3
        mode = "orig+en" if translated else "orig"
        task = rng.choice(("qc", "qi")) if layout == "lora" else "qc"
        name = f"{layout}-{e}"
        if layout == "lora":
            sweep = {"model.lora.r": [4, 8, 16, 32]}
            models = [(f"r={r}", task.upper(), {"model.lora.r": r}) for r in sweep["model.lora.r"]]
        else:
            sweep = {"task": ["qc", "qi"] + (["both"] if layout == "both" else [])}
            models = [(f"task={t}", t.upper(), {"task": t}) for t in sweep["task"]]
        created = start + dt.timedelta(minutes=e)
        spec = {"name": name, "task": task, "translation": {"enabled": translated, "mode": mode, "backend": "causal-lm"},
                "split": {"strategy": "category-aware", "folds": 5, "train_folds": list(TRAINED_FOLDS)},
                "model": {"backbone": "multilingual-e5-small", "lora": LORA}, "train": TRAIN, "sweep": sweep}  # fmt: skip
        text = SPEC_TEXT.format(name=name, task=task, translated=str(translated).lower(), mode=mode, sweep=json.dumps(sweep))
        experiment = (e, name, "done", f"/experiments/{name}.yaml", text, json.dumps(spec), created, created + dt.timedelta(hours=3))
        runs, stages = [], []
        tasks = sorted({t for _, t, _ in models if t != "BOTH"} | ({"QC", "QI"} if layout == "both" else set()))
        for task_code in tasks if translated else []:
            stage_id += 1
            stages.append((stage_id, None, task_code, "translate", 0.0))
        for run_name, run_task, overrides in models:
            run_id += 1
            config = {"overrides": overrides, "task": run_task, "mode": mode, "model": {"backbone": "multilingual-e5-small", "pooling": "auto",
                      "lora": {**LORA, "r": overrides.get("model.lora.r", 8)}, "train_embeddings": False, "routing": "heads"},
                      "train": TRAIN, "resources": {"gpu": "a100", "gpus": 1}}  # fmt: skip
            if run_task == "BOTH":
                config["tasks"] = ["QC", "QI"]
            status = "done" if rng.random() < 0.95 else rng.choice(("failed", "running"))
            runs.append((run_id, e, run_name, "model", run_task, json.dumps(config), status, created, created + dt.timedelta(hours=2)))
            skill = rng.uniform(0.6, 0.9)
            for scored_task in (("QC", "QI") if run_task == "BOTH" else (run_task,)):
                stage_id += 1
                stages.append((stage_id, run_id, scored_task, "model", skill))
        for task_code in tasks:
            for baseline, skill in (("all-relevant", 0.81), ("lexical", 0.6)):
                run_id += 1
                config = {"baseline": baseline, "task": task_code}
                runs.append((run_id, e, f"baseline:{baseline}", "baseline", task_code, json.dumps(config), "done", created, created + dt.timedelta(hours=1)))
                stage_id += 1
                stages.append((stage_id, run_id, task_code, baseline, skill))
        yield experiment, runs, stages


# --- timing --------------------------------------------------------------------------------------------

# The floors: what the fastest hand-written PostgreSQL gets for the same rows, in one statement that
# builds the JSON itself, run by the smallest process there is (python, psycopg, print). Same indexes,
# same plan shapes as relctl's (each group's top read off the ranking index, unfinished runs filtered by
# a hashed subplan, the rows shown looked up by key), so that the ratio is relctl's overhead alone.
TOP_OF = """
  (SELECT run_id, task, language, value FROM metrics
   WHERE name = 'f1@oof' AND fold IS NULL AND {language} AND task = g.task AND value IS NOT NULL
     AND run_id NOT IN (SELECT id FROM unfinished)
   ORDER BY language, task, value DESC, run_id LIMIT 50)
  UNION ALL
  (SELECT run_id, task, language, value FROM metrics
   WHERE name = 'f1@oof' AND fold IS NULL AND {language} AND task = g.task AND value IS NULL
     AND run_id NOT IN (SELECT id FROM unfinished)
   ORDER BY language, task, value DESC, run_id LIMIT 50)
"""
ROW_JSON = """
  json_build_object('experiment_id', r.experiment_id, 'experiment', e.name, 'run_id', t.run_id, 'run', r.name,
    'kind', r.kind, 'task', t.task, 'language', t.language, 'metric', 'f1@oof', 'mean', t.value,
    'std', (SELECT std FROM metrics s WHERE s.run_id = t.run_id AND s.name = 'f1@oof' AND s.fold IS NULL AND {shown_language} AND s.task = t.task),
    'folds', (SELECT n FROM metrics s WHERE s.run_id = t.run_id AND s.name = 'f1@oof' AND s.fold IS NULL AND {shown_language} AND s.task = t.task))::jsonb
  || coalesce((SELECT jsonb_object_agg(s.name, s.value) FROM metrics s WHERE s.run_id = t.run_id
       AND s.name IN ('f1@oof', 'f1@0.5', 'roc_auc', 'pr_auc') AND s.fold IS NULL AND {shown_language} AND s.task = t.task), '{{}}'::jsonb)
"""
FLOOR_BOARD = """
WITH RECURSIVE unfinished AS MATERIALIZED (SELECT id FROM runs WHERE status <> 'done'),
groups AS (
  (SELECT task FROM metrics WHERE name = 'f1@oof' AND fold IS NULL AND language IS NULL ORDER BY language, task LIMIT 1)
  UNION ALL
  SELECT n.task FROM groups g CROSS JOIN LATERAL (
    SELECT task FROM metrics WHERE name = 'f1@oof' AND fold IS NULL AND language IS NULL AND task > g.task
    ORDER BY language, task LIMIT 1) n),
top AS (SELECT t.*, row_number() OVER (PARTITION BY t.task ORDER BY t.value IS NULL, t.value DESC, t.run_id) AS place
        FROM groups g CROSS JOIN LATERAL (""" + TOP_OF.format(language="language IS NULL") + """) t),
pairs_shown AS (SELECT p.experiment_id, p.both, p.value AS f1avg, p.qc, p.qc_run_id FROM pairs p
                JOIN runs a ON a.id = p.qc_run_id JOIN runs b ON b.id = p.qi_run_id
                WHERE p.metric = 'f1@oof' AND a.status = 'done' AND b.status = 'done'
                ORDER BY p.metric, p.value DESC, p.qc DESC, p.qc_run_id LIMIT 50)
SELECT json_build_object(
  'metric', 'f1@oof',
  'rows', (SELECT json_agg(""" + ROW_JSON.format(shown_language="s.language IS NULL") + """ ORDER BY t.task, t.place)
           FROM top t JOIN runs r ON r.id = t.run_id JOIN experiments e ON e.id = r.experiment_id WHERE t.place <= 50),
  'f1avg', (SELECT json_agg(json_build_object('experiment_id', p.experiment_id,
              'run', CASE WHEN p.both THEN r.name ELSE coalesce(nullif(array_to_string(ARRAY(
                SELECT part FROM unnest(string_to_array(r.name, ',')) WITH ORDINALITY AS u(part, i) WHERE part NOT LIKE 'task=%' ORDER BY i), ','), ''), e.name) END,
              'metric', 'f1@oof', 'f1avg', p.f1avg) ORDER BY p.f1avg DESC, p.qc DESC, p.qc_run_id)
            FROM pairs_shown p JOIN runs r ON r.id = p.qc_run_id JOIN experiments e ON e.id = p.experiment_id))::text
"""
FLOOR_BY_LANGUAGE = """
WITH RECURSIVE unfinished AS MATERIALIZED (SELECT id FROM runs WHERE status <> 'done'),
groups AS (
  (SELECT language, task FROM metrics WHERE name = 'f1@oof' AND fold IS NULL AND language IS NOT NULL ORDER BY language, task LIMIT 1)
  UNION ALL
  SELECT n.language, n.task FROM groups g CROSS JOIN LATERAL (
    SELECT language, task FROM metrics WHERE name = 'f1@oof' AND fold IS NULL AND language IS NOT NULL
      AND (language, task) > (g.language, g.task) ORDER BY language, task LIMIT 1) n),
top AS (SELECT t.*, row_number() OVER (PARTITION BY t.task, t.language ORDER BY t.value IS NULL, t.value DESC, t.run_id) AS place
        FROM groups g CROSS JOIN LATERAL (""" + TOP_OF.format(language="language = g.language") + """) t)
SELECT json_build_object(
  'metric', 'f1@oof',
  'rows', (SELECT json_agg(""" + ROW_JSON.format(shown_language="s.language = t.language") + """
             || CASE WHEN r.kind = 'model' AND coalesce(r.config ->> 'mode', 'orig') <> 'orig' THEN coalesce((
                  SELECT CASE WHEN c.value IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('chrf', c.value) END
                  FROM metrics c WHERE c.experiment_id = r.experiment_id AND c.name = 'translation.chrf'
                    AND c.run_id IS NULL AND c.language = t.language AND upper(c.task) = t.task
                  ORDER BY c.id DESC LIMIT 1), '{}'::jsonb) ELSE '{}'::jsonb END
             ORDER BY t.task COLLATE "C", t.language COLLATE "C", t.place)
           FROM top t JOIN runs r ON r.id = t.run_id JOIN experiments e ON e.id = r.experiment_id WHERE t.place <= 50),
  'f1avg', '[]'::json)::text
"""
FLOOR_LIST = """
SELECT json_build_object('experiments', (SELECT json_agg(x ORDER BY x.id DESC) FROM (
    SELECT e.id, e.name, e.status, (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id) AS runs, e.created_at AS created, e.finished_at AS finished
    FROM experiments e ORDER BY e.id DESC LIMIT 50) x),
  'total', (SELECT count(*) FROM experiments))::text
"""
FLOOR_SCRIPT = "import os, psycopg, sys; print(psycopg.connect(os.environ['FLOOR_URL']).execute(sys.argv[1]).fetchone()[0])"

# The Python ranking this replaces, as `relctl leaderboard --json` ran it: leaderboard() and f1avg() of
# the old module over a session, the JSON printed (no CLI around it: that CLI refuses the newer schema).
OLD_SCRIPT = """
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("old_leaderboard", sys.argv[1])
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
from relctl_core.db import session_scope
with session_scope(os.environ["RELCTL_DATABASE_URL"]) as session:
    rows = old.leaderboard(session, by_language=sys.argv[2] == "language")
    averages = old.f1avg(rows, session)
print(json.dumps({"metric": "f1@oof", "rows": rows, "f1avg": averages}))
"""

COMMANDS = {
    "leaderboard --json": (["leaderboard", "--json"], FLOOR_BOARD, ""),
    "leaderboard --by language --json": (["leaderboard", "--by", "language", "--json"], FLOOR_BY_LANGUAGE, "language"),
    "list --json": (["list", "--json"], FLOOR_LIST, None),
}


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS KiB, stdout) of one whole process.

    Started through /usr/bin/time, which reports the peak RSS: a child forked from this (larger)
    process would report this process's size as its own peak."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as usage:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-o", usage.name, "-f", "%U %S %M", *argv], env=env, stdout=out, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode()
        user, system, rss = usage.read().split()[-3:]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed ({done.returncode})")
    return wall, float(user) + float(system), int(rss), text


def time_commands(url: str, repeats: int, old: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # an installed relctl has its bytecode
    # A home of its own: its first call of each command compiles the statements (timed apart), the
    # later ones run the kept text on psycopg (relctl_core.reads).
    env.update(RELCTL_DATABASE_URL=url, FLOOR_URL=plain(url), COLUMNS="160", RELCTL_HOME=tempfile.mkdtemp(prefix="relctl-bench-home-"))
    old_file = None
    if old:
        old_file = Path(tempfile.mkdtemp(prefix="relctl-old-")) / "leaderboard.py"
        old_file.write_text(subprocess.run(["git", "show", f"{old}:packages/core/src/relctl_core/leaderboard.py"], cwd=REPO, capture_output=True, text=True, check=True).stdout)
    figures = {}
    for name, (args, floor_sql, old_mode) in COMMANDS.items():
        runners = {"relctl": [RELCTL, *args], "floor": [sys.executable, "-c", FLOOR_SCRIPT, floor_sql]}
        if old_file is not None and old_mode is not None:
            runners["old"] = [sys.executable, "-c", OLD_SCRIPT, str(old_file), old_mode]
        samples: dict[str, list[tuple[float, float, int]]] = {who: [] for who in runners}
        first = {who: run_timed(argv, env) for who, argv in runners.items()}  # warm-up, and the rows to compare
        check_same_rows(name, {who: found[3] for who, found in first.items()})
        for _ in range(repeats):  # interleaved, so that both see the same load
            for who, argv in runners.items():
                if who == "old" and len(samples["old"]) >= 3:
                    continue  # seconds a run: three are enough for the record
                wall, cpu, rss, _ = run_timed(argv, env)
                samples[who].append((wall, cpu, rss))
        figures[name] = {
            who: {
                "p50_ms": round(1000 * statistics.median(w for w, _, _ in runs), 1),
                "cpu_ms": round(1000 * statistics.median(c for _, c, _ in runs), 1),
                "peak_rss_mb": round(max(r for _, _, r in runs) / 1024, 1),
                "runs": len(runs),
            }
            for who, runs in samples.items()
        }
        figures[name]["relctl"]["first_ms"] = round(1000 * first["relctl"][0], 1)
    return figures


def check_same_rows(name: str, outputs: dict[str, str]) -> None:
    """The floor must return what relctl shows, or the ratio compares different work."""
    relctl, floor = json.loads(outputs["relctl"]), json.loads(outputs["floor"])
    if name.startswith("list"):
        same = [e["id"] for e in relctl] == [e["id"] for e in floor["experiments"]] and [e["runs"] for e in relctl] == [e["runs"] for e in floor["experiments"]]
    else:
        def keys(board: dict) -> list:
            return [(r["run_id"], r["task"], r["language"], r["mean"], r.get("roc_auc"), r.get("chrf")) for r in board["rows"]]

        same = keys(relctl) == keys(floor) and [(a["run"], a["f1avg"]) for a in relctl["f1avg"]] == [(a["run"], a["f1avg"]) for a in floor["f1avg"] or []]
    if not same:
        raise SystemExit(f"{name}: the floor query returns other rows than relctl")


def markdown(results: list[dict]) -> str:
    lines = [
        "| experiments | command | relctl p50 | floor p50 | ratio | relctl CPU | relctl peak RSS | floor peak RSS | relctl first call | old p50 | old peak RSS |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for name in COMMANDS:
            f = result[name]
            old = f.get("old")
            lines.append(
                f"| {result['experiments']:,} | `relctl {name}` | {f['relctl']['p50_ms']:.0f} ms | {f['floor']['p50_ms']:.0f} ms "
                f"| {f['relctl']['p50_ms'] / f['floor']['p50_ms']:.2f}x | {f['relctl']['cpu_ms']:.0f} ms | {f['relctl']['peak_rss_mb']:.0f} MB "
                f"| {f['floor']['peak_rss_mb']:.0f} MB | {f['relctl'].get('first_ms', float('nan')):.0f} ms | " + (f"{old['p50_ms'] / 1000:.1f} s | {old['peak_rss_mb']:.0f} MB |" if old else "- | - |")
            )
    loads = ", ".join(f"{r['experiments']:,}: {r['load_before']}-{r['load_after']}" for r in results)
    lines.append(f"\nHost load average (1 min) while timing, by size: {loads} (on {os.cpu_count()} cores).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""`relctl predict` reads its rows as the run read its own: cleaned, with their queries' English by the run's
own translator (from the translation cache, or translated now and cached), scored at the threshold the run
tuned (said on stderr), each written with its id and query as the input has them.

With a tiny random Gemma-3 translating (causal-lm) and with the file backend; with the embedded default (the
translator runs inside the command) and over Redis and PostgreSQL (it runs on a translate worker)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import Workers, relctl, relctl_json
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: {name}
data:
  qc: {{train: {data}/qc_train.jsonl, max_rows: {rows}}}
task: qc
translation: {{enabled: true, mode: {mode}, backend: {backend}}}
split: {{strategy: category-aware, folds: 3, train_folds: [0]}}
model: {{backbone: {backbone}}}
train: {{epochs: 1, batch_size: 16, max_length: 32}}
baselines: false
"""

# What a person should never see from `relctl predict`: the libraries' notes to their own developers.
LIBRARY_NOISE = ("LOAD REPORT", "MISSING", "Warning", "warnings.warn", "Loading weights", "deprecated")


def experiment(tmp_path: Path, *, mode: str, backend: str, rows: int) -> Path:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl", work / "data" / "translations.tsv"])
    spec = SPEC.format(name=f"predict-{mode.replace('+', '-')}", data=work / "data", rows=rows, mode=mode, backend=backend, backbone=work / "tiny")
    (work / "experiment.yaml").write_text(spec)
    return work


def stages(database_url: str, run_id: int) -> dict[str, Any]:
    """The run's finished translate stage (output, config) and the model folders of its fold stages."""
    from relctl_core.db import Stage, session_scope
    from relctl_core.settings import load_settings
    from sqlalchemy import select

    root = load_settings().artifact_root
    with session_scope(database_url) as session:
        trains = session.scalars(select(Stage).where(Stage.run_id == run_id, Stage.kind == "train")).all()
        translate = session.scalars(select(Stage).where(Stage.kind == "translate", Stage.id.in_(trains[0].depends_on))).one()
        return {
            "translate": translate.output,
            "translate_config": translate.config,
            "models": [str(root / s.output["artifacts"]["model"]) for s in trains],
            "train_inputs": root / "train" / trains[0].cache_key / "inputs" / "train.jsonl",
        }


def cleaned(rows: list[dict]) -> list[dict]:
    """The rows as the run's default cleaning leaves them (spaces collapsed, stripped, lower-cased)."""
    return [{**r, "origin_query": " ".join(r["origin_query"].split()).lower(), "category_path": " ".join(r["category_path"].split()).lower()} for r in rows]


def foreign_queries(rows: list[dict]) -> dict[str, str]:
    """query -> language of the rows' queries that are not English (first language met, as the stage takes it)."""
    language_of: dict[str, str] = {}
    for row in cleaned(rows):
        language_of.setdefault(row["origin_query"], row["language"])
    return {q: lang for q, lang in language_of.items() if lang != "en"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def model_inputs(rows: list[dict], english: dict[str, str], mode: str) -> list[dict]:
    from relctl_trainer.inputs import build_query_text

    return [
        {"query_text": build_query_text(r["origin_query"], english.get(r["origin_query"]), mode), "target_text": r["category_path"], "task": "QC"}
        for r in cleaned(rows)
    ]


def ingested_rows(env: dict[str, str]) -> list[dict]:
    """The rows the run's ingest stage kept (cleaned, sampled): the rows of its folds."""
    root = Path(env.get("RELCTL_ARTIFACT_ROOT") or Path(env["RELCTL_HOME"]) / "artifacts")
    (train,) = root.glob("ingest/*/train.jsonl")
    return read_jsonl(train)


def model_run(board_stdout: str) -> int:
    return next(r["run_id"] for r in json.loads(board_stdout)["rows"] if r["kind"] == "model")


def test_a_run_on_translated_queries_has_unseen_queries_translated_by_its_own_causal_lm(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    """The done-when test: a tiny orig+en model, predicting rows whose queries were never translated."""
    from relctl_core.translation_cache import lookup
    from relctl_trainer.inputs import build_query_text
    from relctl_trainer.predict import predict_probs
    from relctl_translator.testing import build_tiny_causal_lm

    work = experiment(tmp_path, mode="orig+en", backend="causal-lm, model: {lm}", rows=90)
    build_tiny_causal_lm(directory=work / "tiny-lm")
    spec = work / "experiment.yaml"
    spec.write_text(spec.read_text().replace("{lm}", str(work / "tiny-lm")))
    done = relctl("run", "experiment.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_id = model_run(done.stdout)
    database = f"sqlite:///{Path(relctl_env['RELCTL_HOME']) / 'relctl.db'}"
    found = stages(database, run_id)

    # The stage says where its translations are: the tiny model's folder and weights, and the prompt.
    key = found["translate"]["cache"]["model"]
    assert found["translate"]["cache"]["backend"] == "causal-lm"
    assert key.startswith("tiny-lm@") and "|prompt@" in key
    test_rows = read_jsonl(work / "data" / "qc_test.jsonl")
    foreign = foreign_queries(test_rows)
    ingested = ingested_rows(relctl_env)
    # The translate stage also translates the reference set, to score chrF: a query in it is not unseen.
    from relctl_translator.reference import load_reference

    reference = {query for _, query, _ in load_reference()}
    unseen = [q for q in foreign if q not in {r["query"] for r in ingested} and q not in reference]
    assert len(unseen) >= 20
    assert lookup(database, "causal-lm", key, unseen) == {}, "these rows' queries were never translated"

    out = tmp_path / "predictions.jsonl"
    predicted = relctl("predict", str(run_id), "--input", str(work / "data" / "qc_test.jsonl"), "--output", str(out), env=relctl_env)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout == ""  # results go to the file, what happens to stderr
    assert not [noise for noise in LIBRARY_NOISE if noise in predicted.stderr], predicted.stderr

    # Translated by the run's translator and stored under the stage's key: the cache holds every one now.
    english = lookup(database, "causal-lm", key, foreign)
    assert sorted(english) == sorted(foreign)
    assert f"{len(foreign)} queries to translate (causal-lm): {len(foreign) - len(unseen)} in the translation cache, {len(unseen)} not" in predicted.stderr

    # The model read the English: its probabilities are those of the orig+en rows, not of the rows as written.
    probs = np.array([row["prob"] for row in read_jsonl(out)])
    np.testing.assert_allclose(probs, predict_probs(found["models"], model_inputs(test_rows, english, "orig+en")), atol=2e-6)
    untranslated = predict_probs(found["models"], model_inputs(test_rows, {}, "orig+en"))
    differs = np.abs(untranslated - probs) > 1e-4
    foreign_rows = np.array([r["language"] != "en" for r in test_rows])
    assert differs[foreign_rows].mean() > 0.9 and not differs[~foreign_rows].any()
    # ...as training read its own rows, from the same cache: "q_orig - q_en".
    query_of = {r["id"]: r["query"] for r in ingested}
    trained = read_jsonl(found["train_inputs"])
    trained_english = lookup(database, "causal-lm", key, {query_of[r["id"]] for r in trained})
    assert trained_english and all(
        r["query_text"] == build_query_text(query_of[r["id"]], trained_english.get(query_of[r["id"]]), "orig+en") for r in trained
    )

    # Each row as the input has it: integer ids stay integers, queries as written (not cleaned, not English).
    written = read_jsonl(out)
    assert [(r["id"], r["query"], r["target"]) for r in written] == [(r["id"], r["origin_query"], r["category_path"]) for r in test_rows]
    assert all(type(r["id"]) is int for r in written)

    # The threshold: said on stderr, and the one `relctl show` and `leaderboard --json` carry.
    shown = json.loads(relctl("show", "1", "--json", env=relctl_env).stdout)
    threshold = next(r["threshold"]["QC"] for r in shown["runs"] if r["id"] == run_id)
    assert 0.0 < threshold < 1.0
    assert f"threshold {threshold:.4f}: the pooled out-of-fold F1 threshold of run {run_id}" in predicted.stderr
    assert [r["prediction"] for r in written] == [int(p >= threshold) for p in probs]
    board = relctl_json("leaderboard", env=relctl_env)
    assert next(r["threshold"] for r in board["rows"] if r["run_id"] == run_id) == threshold  # type: ignore[index]
    assert "threshold" in relctl("show", "1", env=relctl_env).stdout

    # Again: every query comes from the cache, and nothing is translated.
    again = relctl("predict", str(run_id), "--input", str(work / "data" / "qc_test.jsonl"), "--output", str(out), env=relctl_env)
    assert again.returncode == 0, again.stderr
    assert f"{len(foreign)} in the translation cache, 0 not" in again.stderr and "translating" not in again.stderr
    assert [r["prob"] for r in read_jsonl(out)] == probs.tolist()


def written_loosely(query: str) -> str:
    """The query as a person might type it, which the run's cleaning turns back into ``query``."""
    spaced = "  " + "   ".join(query.split()) + " "
    return spaced.upper() if query.isascii() else spaced


@pytest.fixture
def file_run(tmp_path: Path, relctl_env: dict[str, str]) -> dict[str, Any]:
    """A finished `en` run translated by the file backend (the demo's translations of every demo query)."""
    work = experiment(tmp_path, mode="en", backend="file, path: data/translations.tsv", rows=120)
    done = relctl("run", "experiment.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    database = f"sqlite:///{Path(relctl_env['RELCTL_HOME']) / 'relctl.db'}"
    run_id = model_run(done.stdout)
    return {"work": work, "run": run_id, "database": database, "env": relctl_env, **stages(database, run_id)}


def test_the_file_backend_serves_the_runs_translations_and_translates_the_rest(file_run: dict[str, Any], tmp_path: Path) -> None:
    from relctl_core.translation_cache import lookup, model_key
    from relctl_trainer.predict import predict_probs

    work, env, database = file_run["work"], file_run["env"], file_run["database"]
    key = file_run["translate"]["cache"]["model"]
    assert key == model_key("file", None, file_run["translate_config"]["file"])
    # Rows of training (their queries translated by the stage) and rows it never saw, ids of both kinds,
    # and queries written as people write them.
    trained = {r["query"] for r in ingested_rows(env)}
    train_rows = [r for r in cleaned(read_jsonl(work / "data" / "qc_train.jsonl")) if r["origin_query"] in trained][:30]
    test_rows = read_jsonl(work / "data" / "qc_test.jsonl")[:40]
    rows = [{**r, "id": f"train-{r['id']}", "origin_query": written_loosely(r["origin_query"])} for r in train_rows] + test_rows
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    foreign = foreign_queries(rows)
    seen = [q for q in foreign if q in trained]
    assert seen and len(seen) < len(foreign)
    assert sorted(lookup(database, "file", key, foreign)) == sorted(seen), "the stage cached its own queries, and only those"

    out = tmp_path / "predictions.jsonl"
    done = relctl("predict", str(file_run["run"]), "--input", str(source), "--output", str(out), env=env)
    assert done.returncode == 0, done.stderr
    # The stage's translations are found where it stored them; the others are translated by its backend.
    assert f"{len(foreign)} queries to translate (file): {len(seen)} in the translation cache, {len(foreign) - len(seen)} not" in done.stderr
    english = lookup(database, "file", key, foreign)
    assert sorted(english) == sorted(foreign)
    written = read_jsonl(out)
    assert [(r["id"], r["query"]) for r in written] == [(r["id"], r["origin_query"]) for r in rows]
    assert [type(r["id"]) for r in written] == [str] * len(train_rows) + [int] * len(test_rows)
    probs = np.array([r["prob"] for r in written])
    np.testing.assert_allclose(probs, predict_probs(file_run["models"], model_inputs(rows, english, "en")), atol=2e-6)

    # CSV has no types: ids come out as the text they were.
    as_csv = tmp_path / "rows.csv"
    with as_csv.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["id", "language", "origin_query", "category_path"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(test_rows)
    done = relctl("predict", str(file_run["run"]), "--input", str(as_csv), "--output", str(tmp_path / "p.csv"), env=env)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "p.csv").open(encoding="utf-8") as f:
        assert [(r["id"], r["query"]) for r in csv.DictReader(f)] == [(str(r["id"]), r["origin_query"]) for r in test_rows]

    # A translations file edited since training would give other English than the run read: refused.
    extra = {**test_rows[0], "id": 99999, "origin_query": "zapatillas nunca vistas", "language": "es"}
    source.write_text(json.dumps(extra, ensure_ascii=False) + "\n", encoding="utf-8")
    with (work / "data" / "translations.tsv").open("a", encoding="utf-8") as f:
        f.write("zapatillas nunca vistas\tsneakers never seen\n")
    refused = relctl("predict", str(file_run["run"]), "--input", str(source), "--output", str(tmp_path / "x.jsonl"), env=env)
    assert refused.returncode == 2, refused.stderr
    assert "translations.tsv translation.path: changed since the run's translate stage read it" in " ".join(refused.stderr.split())
    assert not (tmp_path / "x.jsonl").exists()


def test_no_tuned_threshold_is_refused_and_a_given_one_is_said(file_run: dict[str, Any], tmp_path: Path) -> None:
    from relctl_core.db import Stage, session_scope
    from sqlalchemy import select, update

    env, run_id, database = file_run["env"], file_run["run"], file_run["database"]
    rows = file_run["work"] / "data" / "qc_test.jsonl"
    out = tmp_path / "p.jsonl"
    with session_scope(database) as session:
        evaluate = session.scalars(select(Stage).where(Stage.run_id == run_id, Stage.kind == "evaluate")).one()
        session.execute(update(Stage).where(Stage.id == evaluate.id).values(status="running"))

    refused = relctl("predict", str(run_id), "--input", str(rows), "--output", str(out), env=env)
    assert refused.returncode == 2, refused.stderr
    message = " ".join(refused.stderr.split())
    assert f"--threshold: run {run_id} has no tuned threshold yet: its evaluate stage (evaluate predict-en) is running" in message
    assert not out.exists()

    given = relctl("predict", str(run_id), "--input", str(rows), "--output", str(out), "--threshold", "0.25", env=env)
    assert given.returncode == 0, given.stderr
    assert "threshold 0.2500: given with --threshold" in given.stderr
    assert all(r["prediction"] == int(r["prob"] >= 0.25) for r in read_jsonl(out))

    bad = relctl("predict", str(run_id), "--input", str(rows), "--output", str(out), "--threshold", "1.5", env=env)
    assert bad.returncode == 2 and "--threshold: must be between 0 and 1, got 1.5" in bad.stderr


@pytest.mark.services
def test_over_redis_the_runs_translator_works_on_a_translate_worker(tmp_path: Path, distributed_env: dict[str, str], workers: Workers) -> None:
    from relctl_core.translation_cache import lookup

    workers.start("cpu,translate")
    workers.start("train.cpu")
    work = experiment(tmp_path, mode="orig+en", backend="file, path: data/translations.tsv", rows=90)
    submitted = relctl("submit", str(work / "experiment.yaml"), "--wait", env=distributed_env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr + workers.logs()
    board = relctl_json("leaderboard", env=distributed_env)
    run_id = next(r["run_id"] for r in board["rows"] if r["kind"] == "model")  # type: ignore[index]
    database = distributed_env["RELCTL_DATABASE_URL"]
    found = stages(database, run_id)
    key = found["translate"]["cache"]["model"]
    test_rows = read_jsonl(work / "data" / "qc_test.jsonl")
    foreign = foreign_queries(test_rows)
    before = lookup(database, "file", key, foreign)

    out = tmp_path / "predictions.jsonl"
    done = relctl("predict", str(run_id), "--input", str(work / "data" / "qc_test.jsonl"), "--output", str(out), env=distributed_env)
    assert done.returncode == 0, done.stderr + workers.logs()
    missing = len(foreign) - len(before)
    assert missing > 0
    assert f"sent {missing} queries to the translate queue" in done.stderr
    assert "relctl.translator.translate_texts" in workers.logs()  # the worker of the translate queue did it
    assert sorted(lookup(database, "file", key, foreign)) == sorted(foreign)
    assert len(read_jsonl(out)) == len(test_rows)
    replies = Path(distributed_env["RELCTL_ARTIFACT_ROOT"]) / "translate-requests"
    assert replies.is_dir() and not list(replies.iterdir()), "the answer is removed once read"

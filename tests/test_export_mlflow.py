"""`relctl export mlflow` on a finished experiment, into a real MLflow tracking store (SQLite): every run
becomes one MLflow run whose params are its resolved config and whose metrics are the run database's,
with its out-of-fold rows as artifacts; exporting again duplicates nothing; bad input exits 2."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support import relctl


@pytest.fixture(scope="module")
def mlflow_client(skip_or_fail) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        skip_or_fail("MLflow is not installed (pip install -e 'packages/evaluator[mlflow]')")
    return MlflowClient


def _runs(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "relctl.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("select id, experiment_id, name, kind, task, status, config from runs where experiment_id = 1 order by id")]


def _metric_rows(home: Path, run_id: int) -> list[sqlite3.Row]:
    with sqlite3.connect(home / "relctl.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("select task, fold, language, name, value, std from metrics where run_id = ?", (run_id,)).fetchall()


def _oof_rows(home: Path, run_id: int) -> dict[tuple[int, str], dict[str, Any]]:
    """The run's out-of-fold rows by (fold, id), read from its fold stages' prediction files."""
    with sqlite3.connect(home / "relctl.db") as conn:
        outputs = [json.loads(o) for (o,) in conn.execute("select output from stages where run_id = ? and kind in ('train', 'baseline')", (run_id,))]
    return {
        (output["fold"], str(row["id"])): row
        for output in outputs
        for row in map(json.loads, (home / "artifacts" / output["artifacts"]["oof"]).read_text().splitlines())
    }


def _leaves(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            found.update(_leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _key(task: str, name: str, language: str | None) -> str:
    return f"{task}/{name.replace('@', '_at_')}" + (f".lang.{language}" if language else "")


def _export(env: dict[str, str], tracking: str, *args: str) -> dict[str, Any]:
    done = relctl("export", "mlflow", "1", "--tracking-uri", tracking, *args, "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _histories(client: Any, run_id: str) -> dict[str, list[tuple[int, float]]]:
    run = client.get_run(run_id)
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in run.data.metrics}


def test_export_writes_each_run_once_with_its_config_metrics_and_rows(finished_sweep, mlflow_client, tmp_path: Path) -> None:
    from mlflow.entities import ViewType

    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    first = _export(env, tracking, "--artifact-location", str(tmp_path / "artifacts"))
    client = mlflow_client(tracking_uri=tracking)

    [experiment] = first["experiments"]
    found = client.get_experiment_by_name("relctl/members#1")
    assert found is not None and found.experiment_id == experiment["mlflow_experiment_id"] and experiment["created"]
    assert found.tags["relctl.experiment_id"] == "1"
    relctl_runs = _runs(home)
    assert {run["name"]: run["id"] for run in relctl_runs} == run_ids
    mlflow_runs = client.search_runs([found.experiment_id], run_view_type=ViewType.ALL)
    assert len(mlflow_runs) == len(relctl_runs)
    by_relctl_id = {int(run.data.tags["relctl.run_id"]): run for run in mlflow_runs}
    assert set(by_relctl_id) == set(run_ids.values())

    for relctl_run in relctl_runs:
        run = by_relctl_id[relctl_run["id"]]
        assert run.info.run_name == relctl_run["name"] and run.info.status == "FINISHED"
        assert run.data.tags["relctl.experiment_id"] == "1" and run.data.tags["relctl.status"] == "done"

        # Params: every leaf of the resolved config under its dotted key, plus kind, task and experiment id.
        config = json.loads(relctl_run["config"])
        expected = {key: value if isinstance(value, str) else json.dumps(value) for key, value in _leaves(config).items()}
        expected.update(kind=relctl_run["kind"], task=relctl_run["task"], experiment_id="1")
        assert run.data.params == expected
        if relctl_run["kind"] == "model":
            assert run.data.params["model.lora.r"] == str(config["model"]["lora"]["r"]) == relctl_run["name"].removeprefix("r=")
            assert float(run.data.params["train.lr"]) == config["train"]["lr"]

        # Metrics: each CV mean and std, overall and per language, and each fold's value at step = fold.
        history = _histories(client, run.info.run_id)
        expected_keys = set()
        for row in _metric_rows(home, relctl_run["id"]):
            if row["value"] is None:
                continue
            key = _key(row["task"], row["name"], row["language"])
            if row["fold"] is None:
                expected_keys.add(key)
                assert history[key] == [(0, pytest.approx(row["value"], abs=1e-12))], key
                if row["std"] is not None:
                    expected_keys.add(f"{key}.std")
                    assert history[f"{key}.std"] == [(0, pytest.approx(row["std"], abs=1e-12))], key
            else:
                expected_keys.add(f"{key}.fold")
                assert (row["fold"], pytest.approx(row["value"], abs=1e-12)) in history[f"{key}.fold"], key
        assert set(history) == expected_keys
        assert history["QC/f1_at_oof.fold"] == sorted(history["QC/f1_at_oof.fold"]) and [s for s, _ in history["QC/f1_at_oof.fold"]] == [0, 1]
        assert "QC/f1_at_oof.lang.de" in history and "QC/threshold_at_oof.pooled" in history

        # Artifacts: the out-of-fold rows the run was scored on, and the summary of its metrics.
        names = {item.path for item in client.list_artifacts(run.info.run_id)} | {
            item.path for item in client.list_artifacts(run.info.run_id, "oof_predictions")
        }
        assert {"oof_predictions/QC.csv", "relctl_summary.json", "report.html"} <= names
        local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "download" / str(relctl_run["id"]))))
        assert str(local).startswith(str(tmp_path))
        with (local / "oof_predictions" / "QC.csv").open(encoding="utf-8") as rows:
            exported = {(int(row["fold"]), row["id"]): row for row in csv.DictReader(rows)}
        oof = _oof_rows(home, relctl_run["id"])
        assert set(exported) == set(oof) and len(exported) > 0
        for where, row in oof.items():
            assert math.isclose(float(exported[where]["prob"]), row["prob"], abs_tol=1e-12)
            assert int(exported[where]["label"]) == row["label"] and exported[where]["language"] == row["language"]
        assert "members" in (local / "report.html").read_text(encoding="utf-8")  # the experiment's `relctl report` page
        summary = json.loads((local / "relctl_summary.json").read_text(encoding="utf-8"))
        assert summary["run"]["id"] == relctl_run["id"] and summary["config"] == config
        assert len(summary["metrics"]) == len(_metric_rows(home, relctl_run["id"]))
    assert (tmp_path / "artifacts").is_dir()

    # Again: the same MLflow runs, nothing logged twice, every history as long as before.
    before = {run_id: _histories(client, run.info.run_id) for run_id, run in by_relctl_id.items()}
    second = _export(env, tracking)
    assert not second["experiments"][0]["created"]
    assert len(client.search_runs([found.experiment_id], run_view_type=ViewType.ALL)) == len(relctl_runs)
    for result in second["experiments"][0]["runs"]:
        assert not result["created"] and result["mlflow_run_id"] == by_relctl_id[result["run_id"]].info.run_id
        assert result["params_logged"] == 0 and result["metrics_logged"] == 0 and result["changed_params"] == {}
        assert _histories(client, result["mlflow_run_id"]) == before[result["run_id"]]
    assert len(client.search_experiments(filter_string="name = 'relctl/members#1'")) == 1


def test_an_mlflow_run_of_the_same_relctl_run_is_updated_and_a_changed_param_kept_as_a_tag(finished_sweep, mlflow_client, tmp_path: Path) -> None:
    env, run_ids, _ = finished_sweep
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow_client(tracking_uri=tracking)
    experiment_id = client.create_experiment("relctl/members#1", artifact_location=str(tmp_path / "artifacts"))
    model = run_ids["r=2"]
    held = client.create_run(experiment_id, tags={"relctl.run_id": str(model)}, run_name="old name")
    client.log_param(held.info.run_id, "train.lr", "0.5")
    client.log_metric(held.info.run_id, "QC/f1_at_oof", 0.0, step=0)

    done = relctl("export", "mlflow", "1", "--tracking-uri", tracking, "--no-report", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "param train.lr" in done.stderr and "relctl.changed_param.train.lr" in done.stderr
    runs = client.search_runs([experiment_id], filter_string=f"tags.`relctl.run_id` = '{model}'")
    assert [run.info.run_id for run in runs] == [held.info.run_id]
    [run] = runs
    assert run.info.run_name == "r=2" and run.data.params["train.lr"] == "0.5"
    assert run.data.tags["relctl.changed_param.train.lr"] == "0.001"
    # The value the run database holds is logged after the stale one, and becomes the run's.
    with sqlite3.connect(Path(env["RELCTL_HOME"]) / "relctl.db") as conn:
        [(f1,)] = conn.execute("select value from metrics where run_id = ? and name = 'f1@oof' and fold is null and language is null", (model,)).fetchall()
    assert [m.value for m in client.get_metric_history(run.info.run_id, "QC/f1_at_oof")] == [0.0, pytest.approx(f1)]
    assert run.data.metrics["QC/f1_at_oof"] == pytest.approx(f1)


def test_bad_input_exits_2(finished_sweep, mlflow_client, tmp_path: Path) -> None:
    env, _, _ = finished_sweep
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "a-file").write_text("")
    # An experiment that is still running: a copy of the run database where it is.
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    with sqlite3.connect(Path(env["RELCTL_HOME"]) / "relctl.db") as source, sqlite3.connect(unfinished / "relctl.db") as copy:
        source.backup(copy)
        copy.execute("update experiments set status = 'running' where id = 1")
    for args, extra_env, message in [
        (["999", "--tracking-uri", tracking], {}, "no experiment 999"),
        (["1", "--tracking-uri", tracking], {"RELCTL_HOME": str(unfinished)}, "experiment 1 (members) is running"),
        (["1", "--tracking-uri", "http://127.0.0.1:9"], {}, "cannot reach the MLflow tracking server http://127.0.0.1:9"),
        (["1", "--tracking-uri", f"sqlite:///{tmp_path}/a-file/mlflow.db"], {}, "cannot use the MLflow tracking store"),
    ]:
        done = relctl("export", "mlflow", *args, env={**env, **extra_env})
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    assert not (tmp_path / "mlflow.db").exists()

    shown = relctl("export", "mlflow", "--help", env=env)
    # The help's text ends with an example (the options follow it).
    text = shown.stdout.split("\nOptions:")[0].rstrip().splitlines()
    assert shown.returncode == 0 and text[-3].strip() == "Example:" and text[-2].strip().startswith("relctl export mlflow 12")

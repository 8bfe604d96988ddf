"""Every class of bad input exits 2, names the file and line or the YAML path, and writes no rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import database_rows, experiment_rows, relctl

GOOD_ROWS = [
    {"id": 1, "language": "es", "origin_query": "zapatillas running", "category_path": "shoes,sports shoes", "label": 1},
    {"id": 2, "language": "fr", "origin_query": "coque iphone", "category_path": "phones,phone cases", "label": 1},
    {"id": 3, "language": "de", "origin_query": "handyhülle", "category_path": "shoes,boots", "label": 0},
]

SPEC = """\
name: bad-input
data:
  qc:
    train: train.jsonl
split:
  folds: 2
model:
  backbone: multilingual-e5-small
  lora:
    r: 8
"""


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def submit_fails(workdir: Path, env: dict[str, str], expected: str, *, spec_name: str = "experiment.yaml") -> str:
    done = relctl("submit", spec_name, env=env, cwd=workdir)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert expected in message, message
    assert "Traceback" not in done.stderr
    assert experiment_rows(Path(env["RELCTL_HOME"])) == 0
    return message


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir()
    write_rows(folder / "train.jsonl", GOOD_ROWS)
    (folder / "experiment.yaml").write_text(SPEC)
    return folder


def test_malformed_yaml(workdir: Path, relctl_env: dict[str, str]) -> None:
    (workdir / "experiment.yaml").write_text(SPEC.replace("  folds: 2", "  folds: [2"))
    submit_fails(workdir, relctl_env, "experiment.yaml:")


def test_unknown_key_names_its_path_and_line(workdir: Path, relctl_env: dict[str, str]) -> None:
    (workdir / "experiment.yaml").write_text(SPEC.replace("    r: 8", "    r: 8\n    rank: 4"))
    message = submit_fails(workdir, relctl_env, "experiment.yaml:11 model.lora.rank")
    assert "unknown key" in message


def test_out_of_range_value(workdir: Path, relctl_env: dict[str, str]) -> None:
    (workdir / "experiment.yaml").write_text(SPEC.replace("    r: 8", "    r: 0"))
    submit_fails(workdir, relctl_env, "experiment.yaml:10 model.lora.r: must be > 0")


def test_missing_data_file(workdir: Path, relctl_env: dict[str, str]) -> None:
    (workdir / "train.jsonl").unlink()
    message = submit_fails(workdir, relctl_env, "experiment.yaml:4 data.qc.train")
    assert "not found" in message


def test_missing_experiment_file(workdir: Path, relctl_env: dict[str, str]) -> None:
    submit_fails(workdir, relctl_env, "nope.yaml", spec_name="nope.yaml")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"id": 9, "language": "es", "origin_query": "x", "category_path": "a,b", "label": 2}\n', "train.jsonl:4: label must be 0 or 1"),
        ('{"id": 1, "language": "es", "origin_query": "x", "category_path": "a,b", "label": 1}\n', "train.jsonl:4: duplicate id '1' (first at line 1)"),
        ('{"id": 9, "language": "es", "origin_query": "x", "category_path": "a,b", "label": 1\n', "train.jsonl:4: malformed JSON"),
        ('{"id": 9, "language": "es", "origin_query": "x", "category_path": "", "label": 1}\n', "train.jsonl:4: empty category_path"),
        ('{"id": 9, "language": "es", "category_path": "a,b", "label": 1}\n', "train.jsonl:4: missing field 'origin_query'"),
    ],
)
def test_broken_data_row(workdir: Path, relctl_env: dict[str, str], content: str, expected: str) -> None:
    with (workdir / "train.jsonl").open("a", encoding="utf-8") as out:
        out.write(content)
    submit_fails(workdir, relctl_env, expected)


def test_non_utf8_data(workdir: Path, relctl_env: dict[str, str]) -> None:
    with (workdir / "train.jsonl").open("ab") as out:
        out.write(b'{"id": 9, "language": "es", "origin_query": "caf\xe9", "category_path": "a,b", "label": 1}\n')
    submit_fails(workdir, relctl_env, "train.jsonl:4: not valid UTF-8")


def test_dead_broker(workdir: Path, relctl_env: dict[str, str]) -> None:
    env = {**relctl_env, "RELCTL_BROKER_URL": "redis://:secret@127.0.0.1:1/0"}
    message = submit_fails(workdir, env, "RELCTL_BROKER_URL: cannot reach the broker redis://:***@127.0.0.1:1/0")
    assert "secret" not in message


def test_dead_database(workdir: Path, relctl_env: dict[str, str]) -> None:
    env = {**relctl_env, "RELCTL_DATABASE_URL": "postgresql+psycopg://relctl:hunter2@127.0.0.1:1/relctl"}
    done = relctl("submit", "experiment.yaml", env=env, cwd=workdir)
    assert done.returncode == 2, done.stderr
    assert "RELCTL_DATABASE_URL: cannot use the run database postgresql+psycopg://relctl:***@127.0.0.1:1/relctl" in " ".join(done.stderr.split())
    assert "hunter2" not in done.stderr


# Settings the trainer cannot train with, and splits the data cannot fill: each used to pass submit and
# fail in a worker after ingest (and split) had run.
UNTRAINABLE = [
    pytest.param(
        SPEC + "train:\n  warmup_ratio: 1\n", "experiment.yaml:12 train.warmup_ratio: must be < 1", id="warmup-over-every-step"
    ),
    pytest.param(
        SPEC.replace("    r: 8", "    r: 8\n    target_modules: []"),
        "experiment.yaml:11 model.lora.target_modules: must not be empty",
        id="no-lora-target-modules",
    ),
    pytest.param(
        SPEC.replace("    train: train.jsonl", "    train: train.jsonl\n    max_rows: 1"),
        "experiment.yaml:5 data.qc.max_rows: must be at least split.folds (2)",
        id="fewer-rows-than-folds",
    ),
    # Three category groups at depth 2 (and three queries): the split stage could not fill 4 folds.
    pytest.param(
        SPEC.replace("  folds: 2", "  folds: 4"),
        "experiment.yaml:6 split.folds: 4 folds need 4 category groups at split.category_depth 2, but data.qc.train has 3",
        id="fewer-category-groups-than-folds",
    ),
]


@pytest.mark.services
@pytest.mark.parametrize(("spec", "expected"), UNTRAINABLE)
def test_an_untrainable_spec_is_refused_by_submit_to_the_workers(
    workdir: Path, distributed_env: dict[str, str], spec: str, expected: str
) -> None:
    import redis

    (workdir / "experiment.yaml").write_text(spec)
    done = relctl("submit", "experiment.yaml", env=distributed_env, cwd=workdir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert database_rows(distributed_env["RELCTL_DATABASE_URL"]) == 0
    assert redis.Redis.from_url(distributed_env["RELCTL_BROKER_URL"]).dbsize() == 0, "nothing was enqueued"


@pytest.mark.parametrize(("spec", "expected"), UNTRAINABLE)
def test_an_untrainable_spec_is_refused_by_run_and_validate(workdir: Path, relctl_env: dict[str, str], spec: str, expected: str) -> None:
    (workdir / "experiment.yaml").write_text(spec)
    for command in ("run", "validate"):
        done = relctl(command, "experiment.yaml", env=relctl_env, cwd=workdir)
        assert done.returncode == 2, command + ": " + done.stdout + done.stderr
        assert expected in " ".join(done.stderr.split()), command
        assert "Traceback" not in done.stderr
    assert experiment_rows(Path(relctl_env["RELCTL_HOME"])) == 0


def test_validate_prints_the_resolved_spec(workdir: Path, relctl_env: dict[str, str]) -> None:
    done = relctl("validate", "experiment.yaml", "--json", env=relctl_env, cwd=workdir)
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)
    assert resolved["spec"]["train"]["lr"] > 0  # defaults filled in
    assert resolved["spec"]["data"]["qc"]["train"] == str(workdir / "train.jsonl")
    assert [r["kind"] for r in resolved["runs"]] == ["model", "baseline", "baseline"]
    assert experiment_rows(Path(relctl_env["RELCTL_HOME"])) == 0

"""Tests of the experiment spec: parsing, defaults, located errors and sweep expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from relctl_core import spec as spec_module
from relctl_core.errors import InputError
from relctl_core.spec import (
    ExperimentSpec,
    LoadedSpec,
    expand_runs,
    load_spec,
    resolved_dict,
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a QC data file, made the working directory so that errors name `experiment.yaml`."""
    (tmp_path / "qc.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    return Path.cwd()


def write_spec(text: str, name: str = "experiment.yaml") -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def load_error(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        load_spec(write_spec(text))
    return caught.value


MINIMAL = "name: demo\ndata:\n  qc:\n    train: qc.jsonl\n"


def test_full_spec_round_trips_with_defaults_filled(workdir: Path) -> None:
    (workdir / "qc_test.parquet").write_text("")
    (workdir / "en.tsv").write_text("")
    loaded = load_spec(
        write_spec(
            """\
name: e5-lora.v1
task: qc
data:
  qc:
    train: qc.jsonl
    test: qc_test.parquet
    max_rows: 2000
cleaning:
  lowercase: false
translation:
  enabled: true
  mode: orig+en
  backend: file
  path: en.tsv
split:
  strategy: random
  folds: 4
  train_folds: all
  category_depth: 3
model:
  pooling: mean
  lora: {r: 16, target_modules: [query, value]}
train:
  lr: 2.0e-5
  max_steps: 10
resources:
  gpu: A100
  gpus: 4
baselines: false
"""
        )
    )
    assert loaded.path == workdir / "experiment.yaml"
    assert loaded.text.startswith("name: e5-lora.v1\n")
    resolved = resolved_dict(loaded.spec)
    assert resolved == {
        "name": "e5-lora.v1",
        "task": "qc",
        "data": {
            "qc": {
                "train": str(workdir / "qc.jsonl"),
                "test": str(workdir / "qc_test.parquet"),
                "max_rows": 2000,
            },
            "qi": None,
        },
        "cleaning": {"collapse_spaces": True, "strip": True, "lowercase": False, "drop_empty": True},
        "translation": {
            "enabled": True,
            "mode": "orig+en",
            "backend": "file",
            "model": None,
            "path": str(workdir / "en.tsv"),
            "batch_size": 64,
        },
        "split": {"strategy": "random", "folds": 4, "train_folds": "all", "holdout_fold": None, "category_depth": 3, "seed": 42},
        "model": {
            "backbone": "multilingual-e5-small",
            "pooling": "mean",
            "lora": {"r": 16, "alpha": 16, "dropout": 0.1, "target_modules": ["query", "value"]},
            "train_embeddings": False,
            "routing": "heads",
            "private_layers": None,
            "target_form": None,
        },
        "train": {
            "epochs": 2,
            "lr": 2e-5,
            "batch_size": 32,
            "grad_accum": 1,
            "scheduler": "linear",
            "warmup_ratio": 0.1,
            "weight_decay": 0.01,
            "max_length": 64,
            "precision": "auto",
            "seed": 42,
            "max_steps": 10,
            "checkpoint_steps": 200,
            "tapt": None,
            "time_limit": None,
        },
        "resources": {"gpu": "a100", "gpus": 4, "launcher": None, "zero_stage": None},
        "ensemble": {"method": "mean"},
        "baselines": False,
        "sweep": {},
        "sweep_mode": "grid",
    }
    assert json.loads(json.dumps(resolved)) == resolved
    # A worker re-reads the stored dict without the file's folder at hand: it must give the same spec.
    assert ExperimentSpec.model_validate(resolved) == loaded.spec


def test_minimal_spec_takes_the_defaults(workdir: Path) -> None:
    spec = load_spec(write_spec(MINIMAL)).spec
    assert spec.task == "qc" and spec.tasks == ("qc",)
    assert spec.split.train_folds == [0] and spec.split.folds == 5
    assert spec.model.lora.r == 8 and spec.train.lr == 1e-4
    assert spec.resources.gpu == "cpu" and spec.baselines is True


def test_private_layers_train_under_deepspeed(workdir: Path) -> None:
    spec = load_spec(
        write_spec(
            "name: demo\ntask: both\ndata: {qc: {train: qc.jsonl}, qi: {train: qc.jsonl}}\nmodel: {routing: heads+private}\n"
            "resources: {gpu: h100, gpus: 2, launcher: deepspeed, zero_stage: 3}\n"
        )
    ).spec
    assert (spec.model.routing, spec.resources.launcher, spec.resources.zero_stage) == ("heads+private", "deepspeed", 3)


def test_relative_data_paths_resolve_against_the_spec_folder(workdir: Path) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "qi.csv").write_text("")
    (workdir / "exp").mkdir()
    spec = load_spec(
        write_spec("name: demo\ntask: qi\ndata:\n  qi: {train: ../data/qi.csv}\n", "exp/experiment.yaml")
    ).spec
    assert spec.data.qi is not None
    assert spec.data.qi.train == workdir / "data" / "qi.csv"
    assert spec.data.qi.train.is_absolute()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            MINIMAL + "baseline: false\n",
            "experiment.yaml:5 baseline: unknown key (did you mean 'baselines'?)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            MINIMAL + "model:\n  lora:\n    r: 4\n    alhpa: 8\n",
            "experiment.yaml:8 model.lora.alhpa: unknown key (did you mean 'alpha'?)",
            id="unknown-nested-key",
        ),
        pytest.param(
            MINIMAL + "train:\n  epochs: many\n",
            "experiment.yaml:6 train.epochs: must be an integer",
            id="wrong-type",
        ),
        pytest.param(
            MINIMAL + "model:\n  backbone: e5\n  lora:\n    r: 0\n",
            "experiment.yaml:8 model.lora.r: must be > 0",
            id="out-of-range",
        ),
        pytest.param(
            MINIMAL + "translation:\n  enabled: true\n  mode: english\n",
            "experiment.yaml:7 translation.mode: must be one of: orig, en, orig+en",
            id="bad-enum",
        ),
        pytest.param(
            "# no name\ntask: qc\ndata:\n  qc: {train: qc.jsonl}\n",
            "experiment.yaml:2 name: required",
            id="missing-name",
        ),
        pytest.param(
            "name: demo bad\n" + MINIMAL.split("\n", 1)[1],
            "experiment.yaml:1 name: must be 1-100 letters, digits, '-', '_' or '.'",
            id="bad-name",
        ),
        pytest.param(
            MINIMAL + "split:\n  folds: 3\n  train_folds: [0, 3]\n",
            "experiment.yaml:7 split.train_folds: fold 3 is out of range 0..2",
            id="train-folds-out-of-range",
        ),
        pytest.param(
            MINIMAL + "split:\n  train_folds: [0, 0]\n",
            "experiment.yaml:6 split.train_folds: each fold may appear only once",
            id="train-folds-repeated",
        ),
        pytest.param(
            MINIMAL + "split:\n  train_folds:\n    - 0\n    - one\n",
            "experiment.yaml:8 split.train_folds[1]: must be an integer",
            id="train-folds-item",
        ),
        pytest.param(
            MINIMAL + "split:\n  folds: 3\n  train_folds: all\n  holdout_fold: 3\n",
            "experiment.yaml:8 split.holdout_fold: fold 3 is out of range 0..2",
            id="holdout-fold-out-of-range",
        ),
        pytest.param(
            MINIMAL + "split:\n  train_folds: all\n  holdout_fold: -1\n",
            "experiment.yaml:7 split.holdout_fold: fold -1 is out of range 0..4",
            id="holdout-fold-negative",
        ),
        pytest.param(
            MINIMAL + "split:\n  holdout_fold: yes\n",
            "experiment.yaml:6 split.holdout_fold: must be a fold number, or null",
            id="holdout-fold-boolean",
        ),
        pytest.param(
            MINIMAL + "split:\n  holdout_fold: first\n",
            "experiment.yaml:6 split.holdout_fold: must be an integer",
            id="holdout-fold-not-a-number",
        ),
        pytest.param(
            # train_folds defaults to [0]: holding out fold 0 too would leave it both trained and held out.
            MINIMAL + "split:\n  holdout_fold: 0\n",
            "experiment.yaml:6 split.holdout_fold: fold 0 is also in split.train_folds: the held-out fold gets no "
            "fold model (leave it out of train_folds, or use train_folds: all)",
            id="holdout-fold-also-trained",
        ),
        pytest.param(
            MINIMAL + "split:\n  folds: 2\n  train_folds: all\n  holdout_fold: 1\n",
            "experiment.yaml:8 split.holdout_fold: needs split.folds of at least 3 (it is 2): a fold model trains "
            "on the folds other than its own and the holdout",
            id="holdout-fold-of-two-folds",
        ),
        pytest.param(
            MINIMAL + "translation:\n  mode: en\n",
            "experiment.yaml:6 translation.mode: 'en' needs translation.enabled: true",
            id="mode-without-translation",
        ),
        pytest.param(
            MINIMAL + "translation:\n  enabled: true\n  backend: file\n",
            "experiment.yaml:5 translation.path: required when backend is file",
            id="file-backend-without-path",
        ),
        pytest.param(
            MINIMAL + "model:\n  routing: heads\n  private_layers: 2\n",
            "experiment.yaml:7 model.private_layers: needs model.routing: heads+private (routing is heads)",
            id="private-layers-without-their-routing",
        ),
        pytest.param(
            MINIMAL + "resources: {gpu: h100, gpus: 2, zero_stage: 3}\n",
            "experiment.yaml:5 resources.zero_stage: needs resources.launcher: deepspeed",
            id="zero-stage-without-deepspeed",
        ),
        pytest.param(
            MINIMAL + "resources: {gpu: cpu, gpus: 2}\n",
            "experiment.yaml:5 resources.gpus: must be 1 when gpu is cpu",
            id="gpus-on-cpu",
        ),
        pytest.param(
            "name: demo\ntask: qi\ndata:\n  qc: {train: qc.jsonl}\n",
            "experiment.yaml:3 data.qi: required for task qi",
            id="no-data-for-task",
        ),
        # Settings the trainer could not train with: refused here, not in the worker after ingest and split.
        pytest.param(
            MINIMAL + "train:\n  warmup_ratio: 1\n",
            "experiment.yaml:6 train.warmup_ratio: must be < 1",
            id="warmup-over-every-step",
        ),
        pytest.param(
            MINIMAL + "model:\n  lora: {target_modules: []}\n",
            "experiment.yaml:6 model.lora.target_modules: must not be empty",
            id="no-lora-target-modules",
        ),
        pytest.param(
            MINIMAL + "model:\n  lora:\n    target_modules: [query, '']\n",
            "experiment.yaml:7 model.lora.target_modules[1]: must not be empty",
            id="empty-lora-target-module",
        ),
        pytest.param(
            MINIMAL + "    max_rows: 4\nsplit: {folds: 5}\n",
            "experiment.yaml:5 data.qc.max_rows: must be at least split.folds (5): every fold needs rows",
            id="fewer-rows-than-folds",
        ),
        pytest.param(
            "name: demo\ndata:\n  qc:\n    train: qc.xlsx\n",
            "experiment.yaml:4 data.qc.train: unsupported file type '.xlsx' (use .txt, .jsonl, .csv, .parquet)",
            id="wrong-suffix",
        ),
        pytest.param(
            "name: demo\ndata:\n  qc:\n    train: qc.jsonl\n  qc: {train: qc.jsonl}\n",
            "experiment.yaml:5 data.qc: duplicate key (first on line 3)",
            id="duplicate-key",
        ),
        pytest.param(
            "name: demo\ndata:\n  qc: {train: qc.jsonl\n",
            "experiment.yaml:4: invalid YAML: expected ',' or '}', but got '<stream end>'",
            id="malformed-yaml",
        ),
        pytest.param(
            "name: demo\n  task: qc\n",
            "experiment.yaml:2: invalid YAML: mapping values are not allowed here",
            id="bad-indentation",
        ),
        pytest.param(
            "- name: demo\n",
            "experiment.yaml:1: the top level must be a mapping of settings (name: ..., data: ...)",
            id="top-level-list",
        ),
        pytest.param(
            "# nothing here yet\n",
            "experiment.yaml: empty file: expected a mapping of settings (name: ..., data: ...)",
            id="empty-file",
        ),
    ],
)
def test_bad_spec_is_reported_at_its_file_line_and_path(workdir: Path, text: str, expected: str) -> None:
    error = load_error(text)
    assert str(error) == expected
    assert error.exit_code == 2


def test_missing_data_file_names_the_absolute_path(workdir: Path) -> None:
    error = load_error("name: demo\ndata:\n  qc:\n    train: qc.jsonl\n    test: held_out/qc.csv\n")
    assert str(error) == f"experiment.yaml:5 data.qc.test: file not found: {workdir / 'held_out' / 'qc.csv'}"
    assert (error.file, error.line, error.path) == ("experiment.yaml", 5, "data.qc.test")


def test_non_utf8_bytes_are_reported_at_their_line(workdir: Path) -> None:
    Path("experiment.yaml").write_bytes(b"name: demo\ndata:\n  qc: {train: caf\xe9.jsonl}\n")
    with pytest.raises(InputError) as caught:
        load_spec("experiment.yaml")
    assert str(caught.value) == "experiment.yaml:3: not valid UTF-8 (byte 0xe9 at byte 18 of the line)"


def test_missing_spec_file(workdir: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_spec("nowhere.yaml")
    assert str(caught.value) == "nowhere.yaml: file not found"


def test_every_problem_is_reported_together_first_one_in_the_fields(workdir: Path) -> None:
    error = load_error(MINIMAL + "train:\n  epochs: 0\nmodel:\n  lora: {r: -2}\n")
    assert str(error).splitlines() == [
        "experiment.yaml:6 train.epochs: must be > 0",
        "experiment.yaml:8 model.lora.r: must be > 0",
    ]
    assert (error.file, error.line, error.path) == ("experiment.yaml", 6, "train.epochs")


def test_yaml_tags_that_could_build_objects_are_refused(workdir: Path) -> None:
    error = load_error(MINIMAL + "model: !!python/object/apply:os.system [echo]\n")
    assert (
        str(error)
        == "experiment.yaml:5 model: unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system"
    )


SWEEP_2X2 = (
    MINIMAL
    + """\
sweep:
  train.lr: [1.0e-4, 3.0e-4]
  model.lora.r: [8, 16]
"""
)


def test_sweep_expands_to_the_cartesian_product_in_file_order(workdir: Path) -> None:
    loaded = load_spec(write_spec(SWEEP_2X2))
    assert loaded.spec.sweep == {"train.lr": [1e-4, 3e-4], "model.lora.r": [8, 16]}
    runs = expand_runs(loaded)
    assert [run.name for run in runs] == [
        "lr=0.0001,r=8",
        "lr=0.0001,r=16",
        "lr=0.0003,r=8",
        "lr=0.0003,r=16",
    ]
    assert [run.overrides for run in runs] == [
        {"train.lr": 1e-4, "model.lora.r": 8},
        {"train.lr": 1e-4, "model.lora.r": 16},
        {"train.lr": 3e-4, "model.lora.r": 8},
        {"train.lr": 3e-4, "model.lora.r": 16},
    ]
    for run in runs:
        assert run.spec.train.lr == run.overrides["train.lr"]
        assert run.spec.model.lora.r == run.overrides["model.lora.r"]
        assert run.spec.model.lora.alpha == 16
        assert run.spec.sweep == {}
        assert run.spec.name == "demo"
    assert [run.name for run in expand_runs(loaded)] == [run.name for run in runs]


def test_sweep_mode_each_varies_one_setting_at_a_time_from_the_files_own(workdir: Path) -> None:
    loaded = load_spec(
        write_spec(
            MINIMAL + "translation: {enabled: true, backend: identity}\nsweep_mode: each\nsweep:\n"
            "  translation.mode: [orig, en, orig+en]\n  split.strategy: [random, stratified]\n  train.lr: [0.0001]\n"
        )
    )
    runs = expand_runs(loaded)
    # translation.mode orig and train.lr 1e-4 are the file's own settings: they are the base run.
    assert [run.name for run in runs] == ["base", "mode=en", "mode=orig+en", "strategy=random", "strategy=stratified"]
    assert [run.overrides for run in runs] == [
        {}, {"translation.mode": "en"}, {"translation.mode": "orig+en"}, {"split.strategy": "random"}, {"split.strategy": "stratified"},
    ]  # fmt: skip
    base = runs[0].spec
    assert (base.translation.mode, base.split.strategy, base.sweep) == ("orig", "category-aware", {})
    for run in runs[1:]:
        (key, value), = run.overrides.items()
        section, name = key.split(".")
        assert getattr(getattr(run.spec, section), name) == value
        # Everything else is the base run's.
        others = {"translation": "mode", "split": "strategy"}
        other_section = next(s for s in others if s != section)
        assert getattr(run.spec, other_section) == getattr(base, other_section)
        assert run.spec.train == base.train


def test_sweep_mode_each_needs_a_sweep_and_checks_each_value(workdir: Path) -> None:
    assert str(load_error(MINIMAL + "sweep_mode: each\n")) == "experiment.yaml:5 sweep_mode: each needs a sweep: the settings to vary one at a time"
    error = load_error(MINIMAL + "sweep_mode: each\nsweep:\n  model.lora.r: [8, 0]\n")
    assert str(error) == "experiment.yaml:7 sweep.model.lora.r[1]: must be > 0"
    assert "sweep_mode" in str(load_error(MINIMAL + "sweep_mode: every\nsweep:\n  model.lora.r: [8]\n"))


def test_no_sweep_is_one_run_named_after_the_experiment(workdir: Path) -> None:
    loaded = load_spec(write_spec(MINIMAL))
    [run] = expand_runs(loaded)
    assert (run.name, run.overrides, run.spec) == ("demo", {}, loaded.spec)


def test_sweep_names_tell_keys_with_one_last_part_apart(workdir: Path) -> None:
    loaded = load_spec(
        write_spec(MINIMAL + "sweep:\n  train.seed: [1]\n  split.seed: [2, 3]\n  task: [qc]\n")
    )
    assert [run.name for run in expand_runs(loaded)] == [
        "train.seed=1,split.seed=2,task=qc",
        "train.seed=1,split.seed=3,task=qc",
    ]


def test_sweep_key_that_is_not_a_setting(workdir: Path) -> None:
    error = load_error(MINIMAL + "sweep:\n  train.lr: [0.1]\n  model.lora.rank: [4, 8]\n")
    assert (
        str(error)
        == "experiment.yaml:7 sweep.model.lora.rank: unknown setting (did you mean 'model.lora.r'?)"
    )


def test_sweep_value_that_fails_validation_names_its_key_and_line(workdir: Path) -> None:
    error = load_error(MINIMAL + "sweep:\n  train.lr: [0.1, 0.2]\n  model.lora.r:\n    - 8\n    - 0\n")
    assert str(error) == "experiment.yaml:9 sweep.model.lora.r[1]: must be > 0"


def test_sweep_problem_of_a_combination_says_which(workdir: Path) -> None:
    error = load_error(MINIMAL + "split:\n  train_folds: [0, 2]\nsweep:\n  split.folds: [3, 2]\n")
    assert str(error) == "experiment.yaml:6 split.train_folds: fold 2 is out of range 0..1 (when folds=2)"


def test_a_holdout_fold_swept_onto_a_trained_fold_is_placed_at_its_sweep_value(workdir: Path) -> None:
    error = load_error(MINIMAL + "split:\n  train_folds: [0, 1]\nsweep:\n  split.holdout_fold: [null, 3, 1]\n")
    assert str(error).startswith("experiment.yaml:8 sweep.split.holdout_fold[2]: fold 1 is also in split.train_folds")
    assert error.exit_code == 2


def test_a_holdout_fold_keeps_train_folds_all_off_itself(workdir: Path) -> None:
    from relctl_core.stages import plan_experiment

    text = MINIMAL + "split:\n  folds: 4\n  train_folds: all\n  holdout_fold: 2\n"
    loaded = load_spec(write_spec(text))
    assert loaded.spec.split.holdout_fold == 2
    files = {str(workdir / "qc.jsonl"): {"path": "qc.jsonl", "sha256": "0" * 64}}
    plan = plan_experiment(expand_runs(loaded), files)
    trains = [s.config for s in plan.stages.values() if s.kind == "train"]
    baselines = [s.config for s in plan.stages.values() if s.kind == "baseline"]
    evaluates = [s.config for s in plan.stages.values() if s.kind == "evaluate"]
    assert sorted(c["fold"] for c in trains) == [0, 1, 3]
    assert {c["holdout_fold"] for c in trains + baselines + evaluates} == {2}
    assert all(c["folds"] == [0, 1, 3] for c in evaluates)
    # The split is the split without a holdout: the same folds, shared with runs that hold none out.
    assert [s.config for s in plan.stages.values() if s.kind == "split"][0].get("holdout_fold") is None


def test_runs_with_and_without_a_holdout_get_their_own_baselines(workdir: Path) -> None:
    from relctl_core.stages import plan_experiment

    text = MINIMAL + "split:\n  folds: 4\n  train_folds: [0, 1]\nsweep:\n  split.holdout_fold: [null, 3]\n"
    files = {str(workdir / "qc.jsonl"): {"path": "qc.jsonl", "sha256": "0" * 64}}
    plan = plan_experiment(expand_runs(load_spec(write_spec(text))), files)
    assert sum(1 for s in plan.stages.values() if s.kind == "split") == 1
    baselines = [s.config for s in plan.stages.values() if s.kind == "baseline"]
    assert sorted((c["baseline"], c["fold"], c.get("holdout_fold", -1)) for c in baselines) == sorted(
        (b, f, h) for b in ("all-relevant", "lexical") for f in (0, 1) for h in (-1, 3)
    )
    assert [r.name for r in plan.runs] == [
        "holdout_fold=null", "baseline:all-relevant", "baseline:lexical", "holdout_fold=3", "baseline:all-relevant #2", "baseline:lexical #2"
    ]


def test_sweep_values_that_validate_alike_are_refused(workdir: Path) -> None:
    error = load_error(MINIMAL + "sweep:\n  model.lora.r: [8, 8.0]\n")
    assert str(error) == "experiment.yaml:6 sweep.model.lora.r[1]: repeats the value of [0]"


def test_expand_runs_validates_each_combination(workdir: Path) -> None:
    text = MINIMAL + "sweep:\n  model.lora.dropout:\n    - 0.1\n    - 1.5\n"
    path = workdir / write_spec(text)
    # A spec re-read from storage has its sweep values unchecked: expand_runs must catch the bad one.
    data = yaml.safe_load(text)
    data["data"]["qc"]["train"] = str(workdir / "qc.jsonl")
    loaded = LoadedSpec(path, text, ExperimentSpec.model_validate(data))
    with pytest.raises(InputError) as caught:
        expand_runs(loaded)
    assert str(caught.value) == f"{path}:8 sweep.model.lora.dropout[1]: must be < 1"


def test_a_problem_the_data_shows_is_placed_at_the_setting_of_its_run(workdir: Path) -> None:
    from relctl_core.spec import setting_error

    loaded = load_spec(write_spec(MINIMAL + "split:\n  folds: 3\nsweep:\n  model.lora.r: [4, 8]\n  split.folds: [2, 5]\n"))
    runs = expand_runs(loaded)
    by_name = {run.name: run for run in runs}
    # Swept, at the value the run takes; else at the file's own line for it.
    error = setting_error(loaded, by_name["r=4,folds=5"], ("split", "folds"), "too many folds", file="experiment.yaml")
    assert str(error) == "experiment.yaml:9 sweep.split.folds[1]: too many folds"
    error = setting_error(loaded, by_name["r=8,folds=2"], ("split", "category_depth"), "no groups", file="experiment.yaml")
    assert str(error) == "experiment.yaml:5 split.category_depth: no groups"
    assert (error.file, error.line, error.path) == ("experiment.yaml", 5, "split.category_depth")


def test_every_field_has_a_description_in_the_json_schema() -> None:
    schema = ExperimentSpec.model_json_schema()
    sections = [schema, *schema["$defs"].values()]
    assert {"DataSpec", "SplitSpec", "LoraSpec", "TrainSpec", "ResourcesSpec"} <= set(schema["$defs"])
    for section in sections:
        for name, field in section["properties"].items():
            assert field.get("description"), f"{section['title']}.{name} has no description"


def test_every_section_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        ExperimentSpec.model_validate({"name": "x", "data": {"qc": {"train": "a.jsonl"}}, "trian": {}})
    sections = [
        value
        for value in vars(spec_module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]
    assert len(sections) >= 10
    assert all(section.model_config.get("extra") == "forbid" for section in sections)


def test_sweep_value_inside_a_swept_section_is_located_within_it(workdir: Path) -> None:
    error = load_error(MINIMAL + "sweep:\n  model.lora:\n    - {r: 4}\n    - {alpah: 3}\n")
    assert str(error) == "experiment.yaml:8 sweep.model.lora[1].alpah: unknown key (did you mean 'alpha'?)"


def test_overlapping_sweep_keys_are_refused(workdir: Path) -> None:
    error = load_error(MINIMAL + "sweep:\n  model.lora.r: [4]\n  model.lora: [{r: 8}]\n")
    assert str(error) == "experiment.yaml:7 sweep.model.lora: overlaps the sweep key 'model.lora.r'"

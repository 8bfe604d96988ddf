"""The experiment spec: experiment.yaml as typed models, with errors located by file, line and YAML path, and sweeps."""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from relctl_core.errors import InputError
from relctl_core.files import read_utf8

Task = Literal["qc", "qi"]
ExperimentTask = Literal["qc", "qi", "both"]
# The tasks whose data, models and scores one value of `task` covers; a new value (e.g. "both") adds a row.
TASKS_OF: dict[str, tuple[str, ...]] = {"qc": ("qc",), "qi": ("qi",), "both": ("qc", "qi")}

DATA_SUFFIXES = (".txt", ".jsonl", ".csv", ".parquet")
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"
GPU_PATTERN = r"^[a-z0-9]+$"
_PATTERN_RULES = {
    NAME_PATTERN: "must be 1-100 letters, digits, '-', '_' or '.'",
    GPU_PATTERN: "must be a GPU type of letters and digits (like a100 or h100), or cpu",
}

# A cross-field rule that belongs at a deeper path than the validator that checks it.
_LOCATED = "located"


def _rule_error(at: tuple[str, ...], reason: str, *, prefix: str = "") -> PydanticCustomError:
    """An error at `at` below the validated model; `prefix` is the validated field's own path, for the text."""
    where = prefix + ".".join(at)
    return PydanticCustomError(_LOCATED, "{where}: {reason}", {"at": at, "where": where, "reason": reason})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_file(path: Path, info: ValidationInfo) -> Path:
    """Make a path absolute against the spec file's folder and check that the file is there.

    Only when the validation context names that folder (`load_spec` does): a spec built in code or
    re-read from the run database keeps its paths as they are, since the file may live on another host.
    """
    base_dir = (info.context or {}).get("base_dir")
    if base_dir is None:
        return path
    resolved = Path(os.path.abspath(Path(base_dir) / path.expanduser()))
    if not resolved.exists():
        raise ValueError(f"file not found: {resolved}")
    if not resolved.is_file():
        raise ValueError(f"not a file: {resolved}")
    return resolved


class DataSpec(_Section):
    """One task's labelled rows.

    Files: train, test. Size: max_rows.
    """

    train: Path = Field(
        description="Training rows: .txt (the competition's JSON lines), .jsonl, .csv or .parquet; "
        "relative to the spec file's folder."
    )
    test: Path | None = Field(None, description="Rows to predict after training, same formats; none to skip.")
    max_rows: int | None = Field(
        None,
        gt=0,
        description="Cap on training rows, a deterministic sample drawn with split.seed; none for all.",
    )

    @field_validator("train", "test")
    @classmethod
    def check_data_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(f"unsupported file type '{path.suffix}' (use {', '.join(DATA_SUFFIXES)})")
        return _resolve_file(path, info)


class DataSection(_Section):
    """The data of each task; the experiment's task(s) must have theirs.

    Tasks: qc (query -> category), qi (query -> item).
    """

    qc: DataSpec | None = Field(
        None, description="Query-category pairs (origin_query, category_path, label)."
    )
    qi: DataSpec | None = Field(None, description="Query-item pairs (origin_query, item_title, label).")


class CleaningSpec(_Section):
    """How queries are cleaned before anything else sees them; each step can be switched off.

    Steps, in order: collapse_spaces, strip, lowercase, drop_empty.
    """

    collapse_spaces: bool = Field(True, description="Collapse runs of whitespace into one space.")
    strip: bool = Field(True, description="Strip leading and trailing whitespace.")
    lowercase: bool = Field(True, description="Lower-case the query.")
    drop_empty: bool = Field(True, description="Drop rows whose query is empty after cleaning.")


# The model a neural translation backend uses when translation.model is not given (a model-store name).
DEFAULT_TRANSLATION_MODELS = {"causal-lm": "gemma-3-270m"}


class TranslationSpec(_Section):
    """Translation augmentation: what the model reads, and which backend translates queries to English.

    What: enabled, mode. Backend: backend, model, path, batch_size.
    """

    enabled: bool = Field(False, description="Translate queries to English.")
    mode: Literal["orig", "en", "orig+en"] = Field(
        "orig", description="Query text fed to the model: the original, the English, or 'orig - en'."
    )
    backend: Literal["identity", "file", "causal-lm", "seq2seq", "apertium"] = Field(
        "identity", description="Translation backend."
    )
    model: str | None = Field(
        None,
        validate_default=True,
        description="The backend's model: a model-store name, a local folder or a hub id "
        "(causal-lm: gemma-3-270m when not given; seq2seq: required).",
    )
    path: Path | None = Field(
        None,
        validate_default=True,
        description="The file backend's TSV or JSONL of query -> English; relative to the spec file's folder.",
    )
    batch_size: int = Field(64, gt=0, description="Queries per translation batch (a neural backend decodes them together).")

    @field_validator("mode")
    @classmethod
    def check_mode_needs_translation(cls, mode: str, info: ValidationInfo) -> str:
        if mode != "orig" and info.data.get("enabled") is False:
            raise ValueError(f"'{mode}' needs translation.enabled: true")
        return mode

    @field_validator("model")
    @classmethod
    def check_seq2seq_model(cls, model: str | None, info: ValidationInfo) -> str | None:
        if model is None and info.data.get("backend") == "seq2seq":
            raise ValueError("required when backend is seq2seq (a local folder or hub id, e.g. google/madlad400-3b-mt)")
        return model

    @field_validator("path")
    @classmethod
    def check_translation_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            if info.data.get("backend") == "file":
                raise ValueError("required when backend is file")
            return None
        return _resolve_file(path, info)


def _train_folds_kind(value: Any) -> str:
    return "all" if isinstance(value, str) else "list"


TrainFolds = Annotated[
    Annotated[list[int], Tag("list")] | Annotated[Literal["all"], Tag("all")],
    Discriminator(_train_folds_kind),
]


class SplitSpec(_Section):
    """K-fold validation split.

    How: strategy, category_depth, seed. How many: folds, train_folds. A test set: holdout_fold.
    """

    strategy: Literal["category-aware", "random", "stratified"] = Field(
        "category-aware",
        description="category-aware: every query (and, for QC, every category group) in one fold; "
        "random and stratified K-fold are the baselines it is compared with.",
    )
    folds: int = Field(5, ge=2, le=20, description="Number of folds (K).")
    train_folds: TrainFolds = Field(
        [0], description="Folds to hold out and train a model for, each in 0..folds-1, or 'all'."
    )
    holdout_fold: int | None = Field(
        None,
        description="A fold kept out of cross-validation as a labelled test set, in 0..folds-1 and not in "
        "train_folds ('all': every other fold): no fold model trains or validates on its rows, every one "
        "predicts them, and they score each fold model against the ensemble. None: no holdout.",
    )
    category_depth: int = Field(2, ge=1, description="Category levels that make a QC category group.")
    seed: int = Field(42, description="Seed for fold assignment and for the max_rows sample.")

    @field_validator("train_folds", mode="before")
    @classmethod
    def check_train_folds_shape(cls, value: Any) -> Any:
        if value == "all" or isinstance(value, list | tuple):
            return value
        raise ValueError("must be 'all' or a list of fold numbers")

    @field_validator("train_folds")
    @classmethod
    def check_train_folds_range(cls, train_folds: list[int] | str, info: ValidationInfo) -> list[int] | str:
        if train_folds == "all":
            return train_folds
        if not train_folds:
            raise ValueError("must name at least one fold")
        folds = info.data.get("folds")
        outside = [fold for fold in train_folds if folds is not None and not 0 <= fold < folds]
        if outside:
            raise ValueError(f"fold {outside[0]} is out of range 0..{folds - 1}")
        if len(set(train_folds)) != len(train_folds):
            raise ValueError("each fold may appear only once")
        return train_folds

    @field_validator("holdout_fold", mode="before")
    @classmethod
    def check_holdout_fold_is_a_number(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML's true would pass for fold 1
            raise ValueError("must be a fold number, or null")
        return value

    @field_validator("holdout_fold")
    @classmethod
    def check_holdout_fold(cls, holdout: int | None, info: ValidationInfo) -> int | None:
        folds = info.data.get("folds")
        if holdout is None or folds is None:
            return holdout
        if not 0 <= holdout < folds:
            raise ValueError(f"fold {holdout} is out of range 0..{folds - 1}")
        if folds < 3:
            raise ValueError(
                f"needs split.folds of at least 3 (it is {folds}): a fold model trains on the folds other than "
                "its own and the holdout"
            )
        train_folds = info.data.get("train_folds")
        if isinstance(train_folds, list) and holdout in train_folds:
            raise ValueError(
                f"fold {holdout} is also in split.train_folds: the held-out fold gets no fold model "
                "(leave it out of train_folds, or use train_folds: all)"
            )
        return holdout


class LoraSpec(_Section):
    """LoRA adapter (peft): r, alpha, dropout, target_modules."""

    r: int = Field(8, gt=0, description="Rank of the update matrices.")
    alpha: int = Field(16, gt=0, description="Scaling numerator (the update is scaled by alpha / r).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the adapter's input.")
    target_modules: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        min_length=1,
        description="Module names to adapt (at least one); none for the family's attention and MLP projections.",
    )


# model.routing heads+private without model.private_layers: the top two layers are private to each task.
DEFAULT_PRIVATE_LAYERS = 2


class ModelSpec(_Section):
    """The relevance model: a backbone with a pooled classification head, fine-tuned with LoRA.

    Backbone: backbone, pooling, train_embeddings. Adapter: lora. One model for both tasks: routing,
    private_layers.
    """

    backbone: str = Field(
        "multilingual-e5-small", min_length=1, description="A model-store name, a local folder or a hub id."
    )
    pooling: Literal["auto", "cls", "mean", "last"] = Field(
        "auto", description="Pooling for the head; auto: mean for encoders, last non-pad token for decoders."
    )
    lora: LoraSpec = Field(default_factory=LoraSpec, description="LoRA adapter settings.")
    train_embeddings: bool = Field(
        False, description="Also train the word embeddings (slow: a large dense matrix)."
    )
    routing: Literal["prefix", "heads", "heads+private"] = Field(
        "heads",
        description="task: both only. prefix: one head, a task tag before the query; heads: one head per task; "
        "heads+private: one head and the top private_layers layers of the backbone per task.",
    )
    private_layers: int | None = Field(
        None,
        gt=0,
        description="routing heads+private only: how many top layers each task has of its own (default 2).",
    )
    target_form: Literal["as-given", "leaf-first"] | None = Field(
        None,
        description="How the model reads a QC category path: none (or as-given) as in the data; leaf-first: "
        "the leaf, then the levels above it from the top, marked ('watchbands (in: watches > watches "
        "accessories)'). QI item titles are always read as given.",
    )

    @field_validator("target_form", mode="before")
    @classmethod
    def as_given_is_unset(cls, form: Any) -> Any:
        # Unset and as-given are one setting, so that a stage's config (its cache key) is the same for both.
        return None if form == "as-given" else form

    @field_validator("private_layers")
    @classmethod
    def check_private_layers_need_routing(cls, layers: int | None, info: ValidationInfo) -> int | None:
        routing = info.data.get("routing")
        if layers is not None and routing is not None and routing != "heads+private":
            raise ValueError(f"needs model.routing: heads+private (routing is {routing})")
        return layers


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def _seconds(value: Any) -> Any:
    """A duration: a number of seconds, or a text like 45s, 90m, 2h or 1h30m."""
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value)
    if not value.strip() or match is None or not any(match.groups()):
        raise ValueError(f"must be a number of seconds or a duration like 90m, 2h or 1h30m, got {value!r}")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class TaptSpec(_Section):
    """Task-adaptive pre-training: stage 1 trains the adapter and head on the auxiliary task's rows,
    stage 2 continues them on the target task. Fields: aux_task, epochs, lr, max_rows."""

    aux_task: Task = Field(description="The task whose labelled rows stage 1 trains on (the other task).")
    epochs: int = Field(1, gt=0, description="Passes of stage 1 over the auxiliary rows.")
    lr: float | None = Field(None, gt=0, description="Peak learning rate of stage 1; none: train.lr.")
    max_rows: int | None = Field(
        None, gt=0, description="Deterministic cap on stage 1's rows (sampled with split.seed); none: all."
    )


class TrainSpec(_Section):
    """Optimisation (AdamW).

    Length: epochs, max_steps. Resuming: checkpoint_steps. Two stages: tapt. Step: lr, batch_size, grad_accum, scheduler, warmup_ratio, weight_decay.
    Inputs and numerics: max_length, precision, seed.
    """

    epochs: int = Field(2, gt=0, description="Passes over the training folds.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate.")
    batch_size: int = Field(32, gt=0, description="Rows per forward pass.")
    grad_accum: int = Field(1, gt=0, description="Forward passes per optimiser step.")
    scheduler: Literal["linear", "constant"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1, description="Share of the steps spent warming up to the peak rate, below 1."
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    max_length: int = Field(64, ge=8, le=4096, description="Tokens per input; longer inputs are truncated.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on a GPU that supports it or a CPU with AVX-512 BF16 or AMX, else fp32."
    )
    seed: int = Field(42, description="Seed for initialisation and data order.")
    max_steps: int | None = Field(
        None, gt=0, description="Stop after this many optimiser steps; none for no cap."
    )
    checkpoint_steps: int | None = Field(
        200,
        gt=0,
        description="Checkpoint every this many optimiser steps (and at every epoch end); a training "
        "whose worker dies resumes from the last one. None: at epoch ends only.",
    )
    tapt: TaptSpec | None = Field(
        None, description="Task-adaptive pre-training on the other task's rows first; none to skip."
    )
    time_limit: Annotated[float | None, BeforeValidator(_seconds)] = Field(
        None,
        gt=0,
        description="Wall-clock limit of one attempt of each training, in seconds or as 90m, 2h, 1h30m: past "
        "it the training checkpoints and fails clearly (relctl retry resumes it). None: no limit.",
    )


# What resources.launcher and resources.zero_stage mean while unset.
DEFAULT_LAUNCHER = "torchrun"
DEFAULT_ZERO_STAGE = 2


class ResourcesSpec(_Section):
    """Where training runs: gpu, gpus. With several GPUs: launcher, zero_stage."""

    gpu: str = Field(
        "cpu",
        pattern=GPU_PATTERN,
        description="GPU type, e.g. a100 or h100 (lower-cased); it picks the queue train.<gpu>. cpu: no GPU.",
    )
    gpus: int = Field(1, ge=1, description="GPUs per training job; 1 when gpu is cpu.")
    launcher: Literal["torchrun", "deepspeed"] | None = Field(
        None,
        description="gpus > 1: torchrun (DistributedDataParallel, the default when unset) or deepspeed "
        "(DeepSpeed's engine with ZeRO; the worker needs the deepspeed package).",
    )
    zero_stage: Literal[2, 3] | None = Field(
        None,
        description="launcher deepspeed only: 2 (the default when unset) shards optimizer state and gradients, "
        "3 the weights too.",
    )

    @field_validator("gpu", mode="before")
    @classmethod
    def lower_gpu(cls, gpu: Any) -> Any:
        return gpu.lower() if isinstance(gpu, str) else gpu

    @field_validator("gpus")
    @classmethod
    def check_gpus_on_cpu(cls, gpus: int, info: ValidationInfo) -> int:
        if info.data.get("gpu") == "cpu" and gpus != 1:
            raise ValueError("must be 1 when gpu is cpu")
        return gpus

    @field_validator("zero_stage")
    @classmethod
    def check_zero_stage_needs_deepspeed(cls, stage: int | None, info: ValidationInfo) -> int | None:
        if stage is not None and info.data.get("launcher") != "deepspeed":
            raise ValueError("needs resources.launcher: deepspeed")
        return stage


class EnsembleSpec(_Section):
    """How several models' predictions become one: method."""

    method: Literal["mean", "vote"] = Field(
        "mean",
        description="mean: the mean probability of a run's fold models on the test rows; vote: the share "
        "of them that call a row relevant at 0.5 (a majority when over 0.5).",
    )


def _check_sweep_key(key: str) -> str:
    if key in ("name", "sweep") or key.startswith("sweep."):
        raise ValueError(f"'{key}' cannot be swept")
    if key not in _setting_paths():
        raise ValueError("unknown setting" + _did_you_mean(key, _setting_paths()))
    return key


SweepKey = Annotated[str, AfterValidator(_check_sweep_key)]


class ExperimentSpec(_Section):
    """One experiment: what to train on which data, how to validate it, and which settings to sweep.

    Identity: name, task. Pipeline, in order: data, cleaning, translation, split, model, train.
    Placement: resources. Combination: ensemble. Comparison: baselines, sweep.
    """

    name: str = Field(
        pattern=NAME_PATTERN, description="Experiment name: 1-100 letters, digits, '-', '_', '.'."
    )
    task: ExperimentTask = Field(
        "qc",
        description="qc: query -> category relevance; qi: query -> item relevance; both: one model for both "
        "tasks (see model.routing).",
    )
    data: DataSection = Field(default_factory=DataSection, description="Labelled data per task.")
    cleaning: CleaningSpec = Field(default_factory=CleaningSpec, description="Query cleaning.")
    translation: TranslationSpec = Field(
        default_factory=TranslationSpec, description="Translation augmentation."
    )
    split: SplitSpec = Field(default_factory=SplitSpec, description="K-fold validation split.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Backbone, pooling and LoRA.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="Optimisation.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Where training runs.")
    ensemble: EnsembleSpec = Field(default_factory=EnsembleSpec, description="How fold models' test predictions combine.")
    baselines: bool = Field(
        True,
        description="Also score the 'all relevant' and lexical (TF-IDF + logistic regression) baselines "
        "on the same folds.",
    )
    sweep: dict[SweepKey, Annotated[list[Any], Field(min_length=1)]] = Field(
        {},
        description="Dotted setting path (e.g. model.lora.r) -> values; which runs they make: sweep_mode.",
    )
    sweep_mode: Literal["grid", "each"] = Field(
        "grid",
        description="grid: each combination of the sweep's values is one run. each (an ablation, one factor "
        "at a time): a run named base with the file's own settings, and one run per sweep value that differs "
        "from them, every other setting as in the file.",
    )

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this experiment trains and scores."""
        return TASKS_OF[self.task]

    @field_validator("sweep")
    @classmethod
    def check_sweep_keys_apart(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        keys = list(sweep)
        for index, key in enumerate(keys):
            for earlier in keys[:index]:
                if key.startswith(earlier + ".") or earlier.startswith(key + "."):
                    raise _rule_error((key,), f"overlaps the sweep key '{earlier}'", prefix="sweep.")
        return sweep

    @model_validator(mode="after")
    def check_data_for_tasks(self) -> ExperimentSpec:
        for task in self.tasks:
            data = getattr(self.data, task)
            if data is None:
                raise _rule_error(("data", task), f"required for task {task}")
            # The split puts every fold's rows apart: fewer rows than folds cannot be split.
            if data.max_rows is not None and data.max_rows < self.split.folds:
                raise _rule_error(
                    ("data", task, "max_rows"), f"must be at least split.folds ({self.split.folds}): every fold needs rows"
                )
        if self.model.target_form is not None and "qc" not in self.tasks:
            raise _rule_error(("model", "target_form"), f"{self.model.target_form} reads category paths: it needs task qc or both (task is {self.task})")
        if self.sweep_mode == "each" and not self.sweep:
            raise _rule_error(("sweep_mode",), "each needs a sweep: the settings to vary one at a time")
        tapt = self.train.tapt
        if tapt is not None:
            if tapt.aux_task in self.tasks:
                raise _rule_error(("train", "tapt", "aux_task"), f"must be another task than the one trained ({self.task})")
            if getattr(self.data, tapt.aux_task) is None:
                raise _rule_error(("data", tapt.aux_task), f"required by train.tapt.aux_task {tapt.aux_task}")
        return self


@dataclass(frozen=True)
class LoadedSpec:
    """A validated experiment file: where it is, its text as read, and the spec it holds."""

    path: Path
    text: str
    spec: ExperimentSpec


# The run of a one-at-a-time sweep (sweep_mode: each) that keeps the file's own settings.
BASE_RUN = "base"


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: a combination of sweep values applied to the spec."""

    name: str
    overrides: dict[str, Any]
    spec: ExperimentSpec
    # Which value of each sweep key's list the run takes, to place a problem of the run at its line.
    sweep_indexes: dict[str, int] = field(default_factory=dict)


def load_spec(path: str | Path) -> LoadedSpec:
    """Read, parse and validate an experiment file, every sweep combination included.

    The file without its sweep must be a valid experiment on its own, and so must each combination.
    Raises InputError listing every problem found, one per line, each as ``file:line path: message``.
    """
    file = str(path)
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    text = read_utf8(absolute, file)
    document = _parse(text, file)
    spec = _validated(document, file, absolute.parent)
    _expand(document, spec, file, absolute.parent)
    return LoadedSpec(absolute, text, spec)


def expand_runs(loaded: LoadedSpec) -> list[RunSpec]:
    """The runs of an experiment: the cartesian product of its sweep values, in the file's order.

    Each combination is validated again, so a value that breaks a rule is reported at its sweep.<key> line.
    """
    document = _parse(loaded.text, str(loaded.path))
    return _expand(document, loaded.spec, str(loaded.path), loaded.path.parent)


def setting_error(loaded: LoadedSpec, run: RunSpec, path: tuple[str, ...], message: str, *, file: str | None = None) -> InputError:
    """Bad input about one setting of a run that only its data shows (checked after the spec): located
    like a spec error, at the sweep value that sets the setting for this run, else at the file's line
    for it (or for its section). ``file`` names the spec as the user did (default: its absolute path)."""
    name = file or str(loaded.path)
    located, _ = _sweep_problem(_Problem(path, message), run.sweep_indexes, _parse(loaded.text, name))
    return InputError(located.message, file=name, line=located.line, path=located.path or None)


def resolved_dict(spec: ExperimentSpec) -> dict[str, Any]:
    """The spec as JSON-ready data with every default filled in and paths as strings."""
    return spec.model_dump(mode="json")


# --- reading and parsing -------------------------------------------------------------------------------


@dataclass
class _Document:
    """A parsed YAML mapping with the line of each key and each value, to locate errors in it."""

    data: dict[str, Any]
    key_lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    value_lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, path: tuple[str | int, ...], at: str = "value") -> int | None:
        """The line of the key (at="key") or the value at a path, or of the mapping holding it (at="parent").

        For a path the file leaves out (a missing key, a rule about an absent section) and for at="parent",
        the line that names the nearest enclosing mapping the file has: its key, or the start of the file's.
        """
        if at == "key" and path in self.key_lines:
            return self.key_lines[path]
        if at != "parent" and path in self.value_lines:
            return self.value_lines[path]
        path = path[:-1]
        while path and path not in self.value_lines:
            path = path[:-1]
        return self.key_lines.get(path, self.value_lines.get(path))


@dataclass(frozen=True)
class _Located:
    line: int | None
    path: str
    message: str


class _DocumentBuilder:
    """Turns a composed YAML node tree into plain data, noting lines and the problems plain loading hides."""

    def __init__(self, document: _Document) -> None:
        self.document = document
        self.problems: list[_Located] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()

    def value(self, node: yaml.Node, path: tuple[str | int, ...]) -> Any:
        line = node.start_mark.line + 1
        self.document.value_lines[path] = line
        if id(node) in self._open:
            self.problems.append(_Located(line, _render_path(path), "an alias may not refer to itself"))
            return None
        if isinstance(node, yaml.ScalarNode):
            try:
                return self._constructor.construct_object(node)
            except yaml.constructor.ConstructorError as err:
                self.problems.append(_Located(line, _render_path(path), str(err.problem)))
                return None
        expected_tag = (
            "tag:yaml.org,2002:map" if isinstance(node, yaml.MappingNode) else "tag:yaml.org,2002:seq"
        )
        if node.tag != expected_tag:
            self.problems.append(_Located(line, _render_path(path), f"unsupported YAML tag {node.tag}"))
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: tuple[str | int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(_Located(line, _render_path(path), "merge keys (<<) are not supported"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(_Located(line, _render_path(path), "a key must be a plain name"))
                continue
            # The key as written, so that YAML 1.1 does not turn a key like `on` into True.
            key = key_node.value
            key_path = (*path, key)
            if key_path in self.document.key_lines:
                first = self.document.key_lines[key_path]
                self.problems.append(
                    _Located(line, _render_path(key_path), f"duplicate key (first on line {first})")
                )
                continue
            self.document.key_lines[key_path] = line
            result[key] = self.value(value_node, key_path)
        return result


def _parse(text: str, file: str) -> _Document:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        message = f"invalid YAML: {err.problem or err.context}"
        raise InputError(message, file=file, line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise InputError(f"invalid YAML: {err.reason}", file=file, line=line) from None
    if root is None:
        raise InputError("empty file: expected a mapping of settings (name: ..., data: ...)", file=file)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(
            "the top level must be a mapping of settings (name: ..., data: ...)",
            file=file,
            line=root.start_mark.line + 1,
        )
    document = _Document({})
    builder = _DocumentBuilder(document)
    document.data = builder.value(root, ())
    if builder.problems:
        _raise(builder.problems, file)
    return document


# --- validation and error locations ----------------------------------------------------------------------


def _validate(data: dict[str, Any], base_dir: Path) -> ExperimentSpec:
    return ExperimentSpec.model_validate(data, context={"base_dir": base_dir})


def _validated(document: _Document, file: str, base_dir: Path) -> ExperimentSpec:
    try:
        return _validate(document.data, base_dir)
    except ValidationError as err:
        _raise([_locate(problem, document) for problem in _problems(err, document.data)], file)


@dataclass(frozen=True)
class _Problem:
    """A validation problem at a path into the data; `at` says which line names it (see _Document.line_of)."""

    path: tuple[str | int, ...]
    message: str
    at: str = "value"


def _problems(err: ValidationError, data: dict[str, Any]) -> list[_Problem]:
    problems = []
    for error in err.errors(include_url=False):
        loc = error["loc"]
        path = _data_path(loc, data)
        ctx = error.get("ctx", {})
        if error["type"] == _LOCATED:
            problems.append(_Problem((*path, *ctx["at"]), ctx["reason"]))
        elif error["type"] == "extra_forbidden":
            allowed = _fields_at(path[:-1])
            problems.append(_Problem(path, "unknown key" + _did_you_mean(str(path[-1]), allowed), at="key"))
        elif error["type"] == "missing":
            problems.append(_Problem(path, "required", at="parent"))
        else:
            problems.append(_Problem(path, _message(error), at="key" if "[key]" in loc else "value"))
    return problems


def _data_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """The path into the data that a pydantic error location names.

    Pydantic puts union tags ('list', 'all') and '[key]' into locations; they index nothing in the data,
    so a part that cannot index the value reached so far is dropped.
    """
    path: list[str | int] = []
    value = data
    for part in loc:
        if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(value, dict | None) and isinstance(part, str) and part != "[key]":
            # A key the file leaves out (a missing field, a cross-field rule) continues past the data's end.
            value = value.get(part) if isinstance(value, dict) else None
        else:
            continue
        path.append(part)
    return tuple(path)


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "list_type": "must be a list",
    "too_short": "must not be empty",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "path_type": "must be a file path",
}


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "literal_error":
        return "must be one of: " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    if kind == "string_pattern_mismatch":
        return _PATTERN_RULES.get(ctx["pattern"], f"must match {ctx['pattern']}")
    if kind in _MESSAGES:
        # A bound of 1.0 reads better as 1.
        bounds = {
            name: int(value) if isinstance(value, float) and value.is_integer() else value
            for name, value in ctx.items()
        }
        return _MESSAGES[kind].format(**bounds)
    return error["msg"].replace("Input should be", "must be")


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        model = _section_model(arg)
        if model is not None:
            return model
    return None


def _fields_at(path: tuple[str | int, ...]) -> list[str]:
    """The keys allowed in the mapping at a path: the fields of the section model found there."""
    model: type[BaseModel] | None = ExperimentSpec
    for part in path:
        if model is None or part not in model.model_fields:
            return []
        model = _section_model(model.model_fields[str(part)].annotation)
    return list(model.model_fields) if model is not None else []


@cache
def _setting_paths() -> tuple[str, ...]:
    """Every dotted path to a field of the spec, sections included: what a sweep key may name."""
    paths: list[str] = []

    def collect(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            paths.append(prefix + name)
            section = _section_model(info.annotation)
            if section is not None:
                collect(section, f"{prefix}{name}.")

    collect(ExperimentSpec, "")
    return tuple(paths)


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _render_path(path: tuple[str | int, ...]) -> str:
    rendered = ""
    for part in path:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else part
    return rendered


def _locate(problem: _Problem, document: _Document) -> _Located:
    return _Located(document.line_of(problem.path, problem.at), _render_path(problem.path), problem.message)


def _raise(problems: list[_Located], file: str) -> NoReturn:
    """Raise one InputError for all problems, in file order: the first in its fields, all in its message."""
    unique = sorted(dict.fromkeys(problems), key=lambda problem: (problem.line is None, problem.line or 0))
    first, rest = unique[0], unique[1:]
    message = first.message + "".join(
        "\n" + InputError(problem.message, file=file, line=problem.line, path=problem.path or None).render()
        for problem in rest
    )
    raise InputError(message, file=file, line=first.line, path=first.path or None)


# --- sweeps ------------------------------------------------------------------------------------------------


def _expand(document: _Document, spec: ExperimentSpec, file: str, base_dir: Path) -> list[RunSpec]:
    if not spec.sweep:
        return [RunSpec(spec.name, {}, spec)]
    keys = list(spec.sweep)
    short = _short_names(keys)
    # Keyed without the combination's label, so that a problem many combinations share is listed once.
    problems: dict[tuple[int | None, str, str], _Located] = {}

    def run_of(indexes: dict[str, int]) -> RunSpec | None:
        values = {key: spec.sweep[key][index] for key, index in indexes.items()}
        data = _with_overrides(document.data, values)
        try:
            run_spec = _validate(data, base_dir)
        except ValidationError as err:
            for problem in _problems(err, data):
                located, owner = _sweep_problem(problem, indexes, document)
                seen_as = (located.line, located.path, located.message)
                others = ",".join(
                    f"{short[key]}={_format_value(values[key])}" for key in values if key != owner
                )
                if others:
                    located = _Located(located.line, located.path, f"{located.message} (when {others})")
                problems.setdefault(seen_as, located)
            return None
        settings = run_spec.model_dump(mode="json")
        overrides = {key: _value_at(settings, key) for key in indexes}
        name = ",".join(f"{short[key]}={_format_value(value)}" for key, value in overrides.items())
        return RunSpec(name, overrides, run_spec, dict(indexes))

    # Each value on its own first, so that a problem is pinned to the one value that causes it.
    for key in keys:
        seen: dict[str, int] = {}
        for index in range(len(spec.sweep[key])):
            single = run_of({key: index})
            if single is None:
                continue
            first = seen.setdefault(_format_value(single.overrides[key]), index)
            if first != index:
                # Two values that validate alike would make two runs of one name and one configuration.
                path = ("sweep", key, index)
                located = _Located(
                    document.line_of(path), _render_path(path), f"repeats the value of [{first}]"
                )
                problems.setdefault((located.line, located.path, located.message), located)
    if problems:
        _raise(list(problems.values()), file)
    if spec.sweep_mode == "each":
        # The base run, then each value that moves one setting away from it (a value equal to the file's
        # own setting is the base run itself). Every value was validated on its own above.
        base = spec.model_dump(mode="json")
        arms = [run_of({key: index}) for key in keys for index in range(len(spec.sweep[key]))]
        base_spec = _validate(_with_overrides(document.data, {}), base_dir)
        return [RunSpec(BASE_RUN, {}, base_spec)] + [
            arm for arm in arms if arm is not None and next(iter(arm.overrides.values())) != _value_at(base, next(iter(arm.overrides)))
        ]
    runs = [
        run_of(dict(zip(keys, choice, strict=True)))
        for choice in itertools.product(*(range(len(spec.sweep[key])) for key in keys))
    ]
    if problems:
        _raise(list(problems.values()), file)
    return [run for run in runs if run is not None]


def _with_overrides(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The file's data without its sweep, with each dotted key set to its value."""
    result = copy.deepcopy(data)
    result.pop("sweep", None)
    result.pop("sweep_mode", None)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        section = result
        for part in parents:
            if not isinstance(section.get(part), dict):
                section[part] = {}
            section = section[part]
        section[leaf] = copy.deepcopy(value)
    return result


def _sweep_problem(
    problem: _Problem, indexes: dict[str, int], document: _Document
) -> tuple[_Located, str | None]:
    """Place a problem of a combination at the sweep value it lies in, if any, and name that sweep key."""
    for key, index in indexes.items():
        key_path = tuple(key.split("."))
        if problem.path[: len(key_path)] == key_path:
            rest = problem.path[len(key_path) :]
            return _locate(_Problem(("sweep", key, index, *rest), problem.message, problem.at), document), key
    return _locate(problem, document), None


def _short_names(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that tells it apart from the others (train.lr -> lr)."""
    depth = dict.fromkeys(keys, 1)
    while True:
        short = {key: ".".join(key.split(".")[-depth[key] :]) for key in keys}
        clashing = [key for key in keys if list(short.values()).count(short[key]) > 1]
        if not clashing:
            return short
        # A key shown whole cannot grow; the keys it clashes with are longer and grow instead.
        for key in clashing:
            depth[key] = min(depth[key] + 1, key.count(".") + 1)


def _value_at(settings: dict[str, Any], key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = value[part]
    return value


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

"""Benchmark: relctl's trainer against a plain `transformers.Trainer` script, same model, data and settings.

A seeded subset of the real QC sample (queries cleaned as relctl cleans them, split 80/20 by query so
that no query is on both sides) trains the same backbone with the same LoRA adapters, hyperparameters
and seed, once with the baseline and once with relctl in each precision of --precisions (fp32 and
bf16 by default; bf16 where the device multiplies it natively), one after the other, on the same
number of torch threads:

- relctl: `relctl_trainer.training.train` in-process (mean pooling, one-logit head, dynamic padding
  with length-grouped batches); timed from its "start" event to the last step of each epoch, so that
  validation scoring and checkpoints stay out.
- baseline: the usual script: AutoModelForSequenceClassification (2 labels) + peft LoRA, every pair
  padded to max_length, `transformers.Trainer`; timed by the `train_runtime` it reports.

Prints training rows and tokens per second of each, its GFLOP/s against the matmul peak of its
precision measured in the same script (square products on the same threads), the speed-up over the
baseline, and F1 of the relevant class at 0.5 and ROC-AUC on the same validation rows, as a Markdown
table; raw figures go to
bench/train_speed.last.json. Tokens are the pairs' real tokens (after truncation, before padding), the
same count for both trainers. On a CUDA GPU it adds model FLOPs utilisation: 4 x the backbone's
non-embedding parameters per real token (a forward pass, and a backward pass that computes activation
gradients only, the base weights being frozen; LoRA's and attention's own FLOPs, a few percent at these
lengths, are left out) against the GPU's dense bf16 peak (--peak-tflops, or a table of known GPUs).

    .venv/bin/python bench/train_speed.py --rows 3000
    .venv/bin/python bench/train_speed.py --backbone gemma-3-270m --pooling last \
        --target-modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --rows 20000 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
SAMPLE = BENCH.parent.parent / "shared" / "data" / "qc-sample" / "train_QC.jsonl"
VALIDATION_SHARE = 0.2
# transformers' names for relctl's two schedules (both warm up linearly first).
TRAINER_SCHEDULERS = {"linear": "linear", "constant": "constant_with_warmup"}
_WHITESPACE_RUN = re.compile(r"\s+")
RANDOM_WEIGHTS = "RANDOM_WEIGHTS"  # the marker bench/device/random_weights.py leaves in a model folder

Row = dict[str, Any]


def main() -> int:
    args = parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    quiet_transformers()
    backbone = resolve_backbone(args.backbone)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    # relctl's trainer picks its own CPU thread count unless OMP_NUM_THREADS is set (one thread for
    # narrow models); setting it keeps every trainer on the same count.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    precisions = available_precisions(args.precisions)

    train_rows, val_rows = split_by_query(sample_rows(args.sample, args.rows, args.seed), args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="relctl-train-bench-"))
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "baseline": lambda: run_baseline(args, backbone, train_rows, val_rows, workdir / "baseline"),
    }
    for precision in precisions:
        runners[f"relctl-{precision}"] = lambda precision=precision: run_relctl(
            args, backbone, train_rows, val_rows, workdir / f"relctl-{precision}", precision=precision
        )
    relctl_names = [name for name in runners if name != "baseline"]
    order = ["baseline", *relctl_names] if args.order == "baseline-first" else [*relctl_names, "baseline"]
    results = {name: runners[name]() for name in order}
    peaks = {precision: matmul_peak(precision) for precision in sorted({r["precision"] for r in results.values()})}

    baseline = results["baseline"]
    tokens = real_tokens(backbone, train_rows, args.max_length) * args.epochs
    flops_per_token = 4 * non_embedding_parameters(backbone)
    gpu_peak = peak_flops(args.peak_tflops)
    for result in results.values():
        result["tokens_per_second"] = tokens / result["seconds"]
        result["achieved_gflops"] = result["tokens_per_second"] * flops_per_token / 1e9
        result["matmul_peak_gflops"] = peaks[result["precision"]]
        result["share_of_matmul_peak"] = result["achieved_gflops"] / peaks[result["precision"]]
        result["mfu"] = result["tokens_per_second"] * flops_per_token / gpu_peak if gpu_peak else None
        result["speedup"] = result["rows_per_second"] / baseline["rows_per_second"]
    positive_share = float(np.mean([row["label"] for row in val_rows]))
    print(
        f"backbone: {backbone}; {len(train_rows)} training rows, {len(val_rows)} validation rows "
        f"({positive_share:.1%} relevant: answering 'relevant' everywhere scores F1 {all_relevant_f1(positive_share):.4f}); "
        f"{threads} torch threads; device {results[relctl_names[0]]['device']}"
    )
    print(
        f"{tokens} real training tokens; {flops_per_token / 1e6:.1f} MFLOPs a token (4 x non-embedding parameters); "
        + "measured matmul peak on these threads: " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in peaks.items())
        + (f"; GPU bf16 peak {gpu_peak / 1e12:.0f} TFLOP/s ({device_name()})" if gpu_peak else "")
    )
    print("| trainer | precision | rows/s | tokens/s | GFLOP/s | of matmul peak | speed-up | seconds | F1@0.5 | ROC-AUC |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ["baseline", *relctl_names]:
        r = results[name]
        print(
            f"| {r['trainer']} | {r['precision']} | {r['rows_per_second']:.2f} | {r['tokens_per_second']:.0f} | {r['achieved_gflops']:.1f} "
            f"| {r['share_of_matmul_peak']:.1%} | {r['speedup']:.2f}x | {r['seconds']:.1f} | {r['f1@0.5']:.4f} | {r['roc_auc']:.4f} |"
        )
    if gpu_peak:
        print("MFU against the GPU's bf16 peak: " + ", ".join(f"{name} {results[name]['mfu']:.1%}" for name in results))
    for name in relctl_names:
        r = results[name]
        print(
            f"{name}: {r['speedup']:.2f}x the plain Trainer; F1 {100 * (r['f1@0.5'] - baseline['f1@0.5']):+.1f} points, "
            f"ROC-AUC {r['roc_auc'] - baseline['roc_auc']:+.4f} against it"
        )
    if {"relctl-fp32", "relctl-bf16"} <= set(results):
        fp32, bf16 = results["relctl-fp32"], results["relctl-bf16"]
        print(
            f"bf16 against fp32: {bf16['rows_per_second'] / fp32['rows_per_second']:.2f}x; F1 {100 * (bf16['f1@0.5'] - fp32['f1@0.5']):+.1f} points, "
            f"ROC-AUC {bf16['roc_auc'] - fp32['roc_auc']:+.4f}"
        )
    random_weights = (Path(backbone) / RANDOM_WEIGHTS).is_file()
    if random_weights:
        print("the backbone has random weights (bench/device/random_weights.py): speed figures only, F1 means nothing")

    best = max(relctl_names, key=lambda name: results[name]["rows_per_second"])
    figures = {
        "sample": str(args.sample),
        "random_weights": random_weights,
        "backbone": backbone,
        "rows": len(train_rows) + len(val_rows),
        "train_rows": len(train_rows),
        "validation_rows": len(val_rows),
        "validation_positive_share": round(positive_share, 4),
        "threads": threads,
        "order": order,
        "hyperparameters": hyperparameters(args),
        "real_tokens": tokens,
        "flops_per_token": flops_per_token,
        "matmul_peak_gflops": peaks,
        "peak_flops": gpu_peak,
        "device_name": device_name(),
        "results": results,
        # The fastest relctl run against the plain Trainer (the keys earlier versions wrote).
        "speedup": round(results[best]["speedup"], 3),
        "f1_difference": round(results[best]["f1@0.5"] - baseline["f1@0.5"], 4),
        "roc_auc_difference": round(results[best]["roc_auc"] - baseline["roc_auc"], 4),
    }
    (BENCH / "train_speed.last.json").write_text(json.dumps(figures, indent=2))
    return 0


def available_precisions(asked: str) -> list[str]:
    """The precisions to train relctl in: those asked for that this device runs natively (bf16 needs a
    CUDA GPU that has it or a CPU with AVX-512 BF16 or AMX); said on stderr when one is left out."""
    from relctl_trainer.modeling import cpu_has_bf16

    native_bf16 = torch.cuda.is_bf16_supported() if torch.cuda.is_available() else cpu_has_bf16()
    found = []
    for precision in (p.strip() for p in asked.split(",") if p.strip()):
        if precision == "bf16" and not native_bf16:
            print("bf16 left out: this device has no native bf16 matrix products", file=sys.stderr)
            continue
        found.append(precision)
    if not found:
        sys.exit(f"--precisions {asked!r}: nothing this device runs")
    return found


def matmul_peak(precision: str, size: int = 1024, seconds: float = 2.0) -> float:
    """GFLOP/s of square matrix products of ``size`` in ``precision`` on this device and thread count:
    the best of a few timed rounds (what training's matrix products could reach at best)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = size * 8 if device == "cuda" else size
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000, help="rows of the QC sample to use (a seeded choice)")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the QC sample (JSON lines)")
    parser.add_argument(
        "--backbone", default="multilingual-e5-small", help="a model-store name or a Hugging Face model folder"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.1)
    parser.add_argument("--target-modules", default="query,key,value,dense", help="comma-separated")
    parser.add_argument("--scheduler", choices=sorted(TRAINER_SCHEDULERS), default="linear")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42, help="seeds the row choice, the split and both trainings")
    parser.add_argument(
        "--pooling",
        choices=["mean", "cls", "last"],
        default="mean",
        help="relctl's pooling; the baseline keeps its model's own classification head",
    )
    parser.add_argument("--order", choices=["baseline-first", "relctl-first"], default="baseline-first")
    parser.add_argument(
        "--precisions", default="fp32,bf16",
        help="relctl's runs, one per precision (bf16 where the device multiplies it natively)",
    )  # fmt: skip
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, for MFU; default: a table of known GPUs"
    )
    args = parser.parse_args()
    if args.rows < 10:
        parser.error("--rows must be at least 10")
    return args


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: getattr(args, name)
        for name in (
            "epochs", "lr", "batch_size", "max_length", "lora_r", "lora_alpha", "lora_dropout",
            "scheduler", "warmup_ratio", "weight_decay", "seed", "pooling",
        )
    } | {"target_modules": target_modules(args)}


def target_modules(args: argparse.Namespace) -> list[str]:
    return [name.strip() for name in args.target_modules.split(",") if name.strip()]


def quiet_transformers() -> None:
    """Loading reports at length that the pooler and classifier are new, with progress bars; the table is
    what this prints for."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def resolve_backbone(backbone: str) -> str:
    """A model-store name (RELCTL_MODEL_STORE, else the repository's .relctl/models) or a model folder."""
    store = Path(os.environ.get("RELCTL_MODEL_STORE") or BENCH.parent / ".relctl" / "models")
    for folder in (store / backbone, Path(backbone).expanduser()):
        if (folder / "config.json").is_file():
            return str(folder.resolve())
    sys.exit(f"backbone {backbone!r}: neither {store / backbone} nor a model folder (no config.json); "
             f"install it with `relctl models install {backbone}`")


def clean_query(text: str) -> str:
    """relctl's default cleaning: collapse whitespace runs, strip, lower-case."""
    return _WHITESPACE_RUN.sub(" ", text).strip().lower()


def sample_rows(sample: Path, count: int, seed: int) -> list[Row]:
    """`count` rows of the QC sample, a seeded choice, as relctl row records; empty queries are dropped
    first, as relctl drops them."""
    rows = []
    with sample.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            query = clean_query(record["origin_query"])
            if query:
                rows.append(
                    {
                        "id": record["id"],
                        "language": record["language"],
                        "query_text": query,
                        "target_text": record["category_path"],
                        "label": int(record["label"]),
                    }
                )
    return random.Random(seed).sample(rows, min(count, len(rows)))


def split_by_query(rows: Sequence[Row], seed: int) -> tuple[list[Row], list[Row]]:
    """80/20 by query: every row of a query lands on the same side, so validation queries are unseen."""
    queries = sorted({row["query_text"] for row in rows})
    random.Random(seed).shuffle(queries)
    held_out = set(queries[: max(1, round(VALIDATION_SHARE * len(queries)))])
    return (
        [row for row in rows if row["query_text"] not in held_out],
        [row for row in rows if row["query_text"] in held_out],
    )


# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) of GPUs by a name fragment, most specific first.
GPU_PEAK_TFLOPS = {
    "H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "GH200": 989.0, "A100": 312.0,
    "L40S": 362.0, "L4": 121.0, "A10G": 125.0, "A10": 125.0, "RTX 4090": 165.0,
}  # fmt: skip


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def peak_flops(tflops: float | None) -> float | None:
    """FLOP/s of the GPU that trains: given, or looked up by its name; None on a CPU or an unknown GPU."""
    if tflops:
        return tflops * 1e12
    if not torch.cuda.is_available():
        return None
    name = device_name()
    return next((peak * 1e12 for fragment, peak in GPU_PEAK_TFLOPS.items() if fragment in name), None)


def real_tokens(backbone: str, rows: Sequence[Row], max_length: int) -> int:
    """Tokens of the training pairs after truncation, before any padding: the work both trainers must do."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    encoding = tokenizer([r["query_text"] for r in rows], [r["target_text"] for r in rows], truncation=True, max_length=max_length)
    return sum(len(ids) for ids in encoding["input_ids"])


def non_embedding_parameters(backbone: str) -> int:
    """Parameters of the backbone less its token embedding table (a lookup, not a matrix product)."""
    from transformers import AutoConfig, AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.from_pretrained(backbone))
    embedding = model.get_input_embeddings().weight.numel()
    return sum(parameter.numel() for parameter in model.parameters()) - embedding


def write_rows(path: Path, rows: Sequence[Row]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def scores(trainer: str, rows: int, seconds: float, labels: Sequence[int], probs: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import f1_score, roc_auc_score

    return {
        "trainer": trainer,
        "seconds": round(seconds, 2),
        "rows_per_second": rows / seconds,
        "f1@0.5": float(f1_score(labels, probs >= 0.5)),
        "roc_auc": float(roc_auc_score(labels, probs)),
    }


def all_relevant_f1(positive_share: float) -> float:
    return 2 * positive_share / (1 + positive_share)


class TrainingClock:
    """relctl's event sink that adds up training time only: from "start" (or from the checkpoint closing
    the previous epoch) to the last step of each epoch, leaving validation scoring and checkpoints out."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.since = 0.0
        self.last_step = 0.0
        self.start: dict[str, Any] = {}
        self.threads = 0

    def __call__(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        kind = event["event"]
        if kind == "start":
            self.since, self.start, self.threads = now, event, torch.get_num_threads()
        elif kind == "checkpoint" and event["epoch_end"]:
            self.since = now
        elif kind == "step":
            self.last_step = now
        elif kind == "epoch":
            self.seconds += self.last_step - self.since


def run_relctl(
    args: argparse.Namespace, backbone: str, train_rows: list[Row], val_rows: list[Row], workdir: Path, *, precision: str
) -> dict[str, Any]:
    from relctl_core.spec import LoraSpec, TrainSpec
    from relctl_trainer.job import TrainJob
    from relctl_trainer.training import train

    workdir.mkdir(parents=True)
    job = TrainJob(
        model_path=backbone,
        pooling=args.pooling,
        lora=LoraSpec(r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout, target_modules=target_modules(args)),
        train=TrainSpec(
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            scheduler=args.scheduler,
            warmup_ratio=args.warmup_ratio,
            weight_decay=args.weight_decay,
            max_length=args.max_length,
            seed=args.seed,
            precision=precision,
            checkpoint_steps=None,  # epoch ends only: step checkpoints would be timed as training
        ),
        train_file=str(write_rows(workdir / "train.jsonl", train_rows)),
        val_file=str(write_rows(workdir / "validation.jsonl", val_rows)),
        output_dir=str(workdir / "output"),
    )
    clock = TrainingClock()
    result = train(job, clock)
    oof = Path(result["oof_file"]).read_text(encoding="utf-8").splitlines()
    prob_of = {record["id"]: record["prob"] for record in map(json.loads, oof)}
    probs = np.array([prob_of[row["id"]] for row in val_rows])
    labels = [row["label"] for row in val_rows]
    return scores("relctl", len(train_rows) * args.epochs, clock.seconds, labels, probs) | {
        "device": clock.start["device"],
        "precision": clock.start["precision"],
        "threads": clock.threads,
        "trainable_parameters": clock.start["trainable_parameters"],
        "optimizer_steps": result["steps_run"],
    }


class PairDataset(torch.utils.data.Dataset):
    """(query, target) pairs tokenized once, each padded to max_length, with their labels."""

    def __init__(self, tokenizer: Any, rows: Sequence[Row], max_length: int) -> None:
        self.encoding = tokenizer(
            [row["query_text"] for row in rows],
            [row["target_text"] for row in rows],
            padding="max_length",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        self.labels = torch.tensor([row["label"] for row in rows])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: values[index] for name, values in self.encoding.items()} | {"labels": self.labels[index]}


def run_baseline(
    args: argparse.Namespace, backbone: str, train_rows: list[Row], val_rows: list[Row], workdir: Path
) -> dict[str, Any]:
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=target_modules(args),
        # The e5 checkpoint ships no pooler weights: pooler and classifier start random and train in full.
        modules_to_save=["classifier", "pooler"],
    )
    model = get_peft_model(model, lora)
    cuda = torch.cuda.is_available()
    total_steps = args.epochs * math.ceil(len(train_rows) / args.batch_size)
    training_args = TrainingArguments(
        output_dir=str(workdir),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        lr_scheduler_type=TRAINER_SCHEDULERS[args.scheduler],
        # Whole steps, rounded as relctl rounds them: a fractional warmup would make the Trainer round up.
        warmup_steps=round(args.warmup_ratio * total_steps),
        weight_decay=args.weight_decay,
        seed=args.seed,
        # relctl's "auto" precision: bf16 autocast on a CUDA GPU that has it, fp32 elsewhere.
        bf16=cuda and torch.cuda.is_bf16_supported(),
        use_cpu=not cuda,
        report_to=[],
        save_strategy="no",
        logging_steps=1_000_000,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=PairDataset(tokenizer, train_rows, args.max_length))
    seconds = trainer.train().metrics["train_runtime"]
    threads = torch.get_num_threads()
    logits = trainer.predict(PairDataset(tokenizer, val_rows, args.max_length)).predictions
    probs = torch.softmax(torch.from_numpy(logits).float(), dim=-1)[:, 1].numpy()
    labels = [row["label"] for row in val_rows]
    return scores("transformers.Trainer", len(train_rows) * args.epochs, seconds, labels, probs) | {
        "device": training_args.device.type,
        "precision": "bf16" if training_args.bf16 else "fp32",
        "threads": threads,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "optimizer_steps": trainer.state.global_step,
    }


if __name__ == "__main__":
    sys.exit(main())

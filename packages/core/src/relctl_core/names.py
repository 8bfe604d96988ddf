"""Celery task names and queue names: the only contract between relctl's services; and the codes of the
relevance tasks that stages and the run database store."""

INGEST = "relctl.core.ingest"
TRANSLATE = "relctl.translator.translate"
# Not a stage: English for some queries by a run's translator (`relctl predict`), answered as a file.
TRANSLATE_TEXTS = "relctl.translator.translate_texts"
SPLIT = "relctl.splitter.split"
TRAIN = "relctl.trainer.train"
PRETRAIN = "relctl.trainer.pretrain"
BASELINE = "relctl.evaluator.baseline"
EVALUATE = "relctl.evaluator.evaluate"

CPU_QUEUE = "cpu"
TRANSLATE_QUEUE = "translate"


def train_queue(gpu: str) -> str:
    """Training jobs are routed by GPU type: train.a100, train.h100, ... and train.cpu without a GPU."""
    return f"train.{gpu.lower()}"


# The task code of each value of the spec's `task`, as stages and the run database name tasks.
TASK_CODES = {"qc": "QC", "qi": "QI", "both": "BOTH"}

"""The relevance classifier: a Hugging Face backbone with LoRA adapters, a pooling step and a linear head."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from relctl_core.errors import InputError
from torch import nn

from relctl_trainer.dropout import use_cheap_dropout
from relctl_trainer.inputs import EncodedPairs, pad_batch, scoring_batches

CARD_FILE = "relevance_model.json"
HEAD_FILE = "head.safetensors"
# The private top layers of every task but the first (whose layers are the backbone's own, in the adapter).
PRIVATE_FILE = "private_layers.safetensors"
CARD_FORMAT = 1
# One logit per pair, trained with binary cross-entropy.
HEAD_OUTPUTS = 1


@dataclass(frozen=True)
class ModelCard:
    """How to rebuild a trained classifier; written as JSON next to its adapter and head."""

    base_model_path: str
    architecture: str  # "encoder" or "decoder"
    pooling: str  # "cls", "mean" or "last"
    hidden_size: int
    head_outputs: int
    max_length: int
    target_modules: list[str]
    train_embeddings: bool
    format: int = CARD_FORMAT
    tasks: list[str] = field(default_factory=list)  # one head per task, in this order; none: one head
    private_layers: int = 0  # top layers of the backbone that each task has of its own
    # The dtype the frozen base weights were held in while training (bfloat16 under bf16 autocast):
    # scoring on a CPU reads them rounded so, as the adapters and head learned them.
    base_weights: str = "float32"


def describe_backbone(
    model_path: str,
    *,
    pooling: str,
    target_modules: list[str] | None,
    train_embeddings: bool,
    max_length: int,
    tasks: list[str] | None = None,
    private_layers: int = 0,
) -> ModelCard:
    """Resolve the job's "auto" choices (pooling, LoRA targets) against the backbone's config."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    local = Path(model_path)
    base_model_path = str(local.resolve()) if local.is_dir() else model_path
    try:
        config = AutoConfig.from_pretrained(base_model_path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the backbone config: {exc}", path="model_path") from None
    # Masked-LM model types (BERT, XLM-R, DeBERTa, ModernBERT, ...) are bidirectional encoders;
    # everything else here is a causal decoder whose last real token sees the whole pair.
    architecture = "encoder" if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "decoder"
    if pooling == "auto":
        pooling = "mean" if architecture == "encoder" else "last"
    layers = getattr(config, "num_hidden_layers", None)
    if private_layers and layers is not None and private_layers >= layers:
        raise InputError(
            f"private_layers must leave at least one shared layer: the backbone has {layers} layers",
            path="private_layers",
        )
    return ModelCard(
        base_model_path=base_model_path,
        architecture=architecture,
        pooling=pooling,
        hidden_size=config.hidden_size,
        head_outputs=len(tasks) if tasks else HEAD_OUTPUTS,
        max_length=max_length,
        target_modules=list(target_modules) if target_modules else default_target_modules(config.model_type),
        train_embeddings=train_embeddings,
        tasks=list(tasks or []),
        private_layers=private_layers,
    )


# LoRA on every attention and MLP projection of a block, per model family: the report's Gemma runs
# adapted all of them, and on the QC sample BERT's attention-only default (peft's q and v) learned
# too slowly to beat the lexical baseline. Families not listed fall back to peft's table.
_DECODER_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_BERT_PROJECTIONS = ["query", "key", "value", "dense"]  # "dense": attention output, intermediate and output
FAMILY_TARGET_MODULES: dict[str, list[str]] = {
    **dict.fromkeys(
        ["gemma", "gemma2", "gemma3_text", "llama", "mistral", "qwen2", "qwen3", "olmo2"], _DECODER_PROJECTIONS
    ),
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    **dict.fromkeys(["bert", "xlm-roberta", "roberta", "camembert"], _BERT_PROJECTIONS),
    "modernbert": ["Wqkv", "Wo", "Wi"],
}


def default_target_modules(model_type: str) -> list[str]:
    """The modules that get LoRA adapters when the job names none: the family's attention and MLP
    projections, else peft's table."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    modules = FAMILY_TARGET_MODULES.get(model_type) or TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if not modules:
        raise InputError(
            f"no default LoRA target modules for model type {model_type!r}; name them in model.lora.target_modules",
            path="model.lora.target_modules",
        )
    return list(modules)


def pool_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence; works with left or right padding."""
    if pooling == "cls":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), attention_mask.argmax(dim=1)]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if pooling == "last":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r}")


class RelevanceModel(nn.Module):
    """Backbone -> pooling -> dropout -> Linear(hidden, heads): one relevance logit per (query, target)
    pair, from the head of the pair's task when there is one head per task.

    With ``card.private_layers`` = N, each task also has its own top N layers (routing heads+private):
    the first task uses the backbone's own, every other task a copy whose LoRA adapters are its own and
    whose frozen base weights are shared. A batch runs its rows through the layers of their task.

    With ``every_task_layers`` set (DeepSpeed's ranks), a pass runs every task's layers in task order, a
    task with no rows in the batch on one row whose logit counts for nothing. ZeRO needs each rank to
    run the same layers in the same order: stage 3 gathers a layer's weights on all ranks at once (in
    training and in scoring), and stage 2 reduces gradients in buckets filled in the order they arrive.
    """

    def __init__(self, backbone: nn.Module, card: ModelCard, *, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = card.pooling
        # A decoder would otherwise build a key/value cache on every training step.
        self.backbone_options = {"use_cache": False} if card.architecture == "decoder" else {}
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(card.hidden_size, card.head_outputs)
        self.private: nn.ModuleList | None = None
        self.every_task_layers = False
        if card.private_layers:
            blocks = _backbone_blocks(backbone)
            top = list(blocks[len(blocks) - card.private_layers :])
            self.private = nn.ModuleList(
                nn.ModuleList(_private_copy(block) for block in top) for _ in card.tasks[1:]
            )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        task_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.private is None:
            return self._logits(input_ids, attention_mask, token_type_ids, task_ids)
        if task_ids is None:
            raise ValueError("a model with layers private to each task needs each row's task")
        if self.every_task_layers:
            tasks = list(range(len(self.private) + 1))
        else:
            tasks = [int(task) for task in torch.unique(task_ids).tolist()]
            if len(tasks) == 1:
                with self._layers_of(tasks[0]):
                    return self._logits(input_ids, attention_mask, token_type_ids, task_ids)
        # Each task's rows go through its own top layers, then back in order.
        order, parts, idle = [], [], []
        for task in tasks:
            rows = torch.nonzero(task_ids == task).squeeze(1)
            unused = rows.numel() == 0
            if unused:  # only with every_task_layers: the task's layers run on the first row
                rows = rows.new_zeros(1)
            with self._layers_of(task):
                logits = self._logits(
                    input_ids[rows],
                    attention_mask[rows],
                    None if token_type_ids is None else token_type_ids[rows],
                    torch.full_like(rows, task),
                )
            if unused:
                idle.append(logits)
            else:
                parts.append(logits)
                order.append(rows)
        routed = torch.cat(parts)[torch.argsort(torch.cat(order))]
        for logits in idle:  # counted for nothing, but their layers get gradients (of zero) on every rank
            routed = routed + 0.0 * logits.sum()
        return routed

    def _logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        task_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **self.backbone_options}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**inputs).last_hidden_state
        pooled = pool_tokens(hidden, attention_mask, self.pooling)
        logits = self.head(self.dropout(pooled))
        if logits.shape[-1] == 1:
            return logits.squeeze(-1)
        if task_ids is None:
            raise ValueError("a model with one head per task needs each row's task")
        return logits.gather(1, task_ids.unsqueeze(-1)).squeeze(-1)

    @contextmanager
    def _layers_of(self, task: int) -> Iterator[None]:
        """The backbone with task ``task``'s private top layers in place of its own, for one forward pass.

        Autograd records the modules that ran, so the backward pass needs no swap of its own.
        """
        if task == 0 or self.private is None:
            yield
            return
        blocks = _backbone_blocks(self.backbone)
        private = self.private[task - 1]
        first = len(blocks) - len(private)
        own = [blocks[first + i] for i in range(len(private))]
        for i, block in enumerate(private):
            blocks[first + i] = block
        try:
            yield
        finally:
            for i, block in enumerate(own):
                blocks[first + i] = block

    def private_state(self) -> dict[str, torch.Tensor]:
        """The private layers' own tensors (their LoRA adapters): what PRIVATE_FILE holds."""
        if self.private is None:
            return {}
        return {
            name: tensor.detach().float().cpu().contiguous()
            for name, tensor in self.private.named_parameters()
            if _is_adapter(name)
        }

    def load_private_state(self, tensors: dict[str, torch.Tensor], file: Path) -> None:
        if self.private is None:
            return
        expected = {name for name, _ in self.private.named_parameters() if _is_adapter(name)}
        if set(tensors) != expected:
            raise InputError(
                f"private layers do not fit the model ({len(set(tensors) ^ expected)} tensors differ)", file=file
            )
        try:
            self.private.load_state_dict(tensors, strict=False)
        except RuntimeError as exc:  # tensors of other shapes: another LoRA rank
            raise InputError(f"private layers do not fit the model: {str(exc).splitlines()[0]}", file=file) from None


def _is_adapter(name: str) -> bool:
    """peft names every LoRA tensor lora_A, lora_B, lora_embedding_* or lora_magnitude_vector."""
    return ".lora_" in f".{name}"


def _backbone_blocks(backbone: nn.Module) -> nn.ModuleList:
    """The backbone's stack of transformer blocks (BERT's encoder.layer, a decoder's layers, ...)."""
    config = getattr(backbone, "config", None)
    count = getattr(config, "num_hidden_layers", None)
    for _, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count and count:
            return module
    raise InputError("cannot find the backbone's stack of layers for private_layers", path="private_layers")


def _private_copy(block: nn.Module) -> nn.Module:
    """A copy of a transformer block with LoRA adapters of its own and the frozen base weights shared."""
    twin = copy.deepcopy(block)
    for (path, original), copied in zip(block.named_modules(), twin.modules(), strict=True):
        for name, _ in list(copied.named_parameters(recurse=False)):
            if not _is_adapter(f"{path}.{name}"):
                setattr(copied, name, getattr(original, name))
    return twin


@dataclass(frozen=True)
class Placement:
    """Where the model runs and whether its forward pass uses bf16 autocast."""

    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def precision(self) -> str:
        return "bf16" if self.autocast_dtype is not None else "fp32"

    @property
    def weights_dtype(self) -> torch.dtype:
        # Frozen base weights may as well be stored in the autocast dtype; trained ones stay fp32.
        return self.autocast_dtype or torch.float32

    def autocast(self) -> AbstractContextManager[Any]:
        """Training's forward passes."""
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )

    @contextmanager
    def scoring(self, model: nn.Module) -> Iterator[None]:
        """Scoring's forward passes: bf16 autocast on a GPU that trains in it. On a CPU, fp32: oneDNN's
        bf16 products round differently with the batch's shape, and a row must score the same in any
        batch, so that `relctl predict` reproduces a fold model's out-of-fold probabilities. Weights held
        in bf16 are read as fp32 copies meanwhile (exact: every bf16 value is an fp32 value) and put back
        after; enter it outside inference mode, so that the weights put back are the training's own."""
        if self.device.type != "cpu":
            with self.autocast():
                yield
            return
        held: list[tuple[torch.Tensor, torch.Tensor]] = []
        with torch.no_grad():
            for tensor in (*model.parameters(), *model.buffers()):
                if tensor.dtype == torch.bfloat16:
                    held.append((tensor, tensor.data))
                    tensor.data = tensor.data.float()
        try:
            yield
        finally:
            for tensor, original in held:
                tensor.data = original

    def tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(array).to(self.device) for name, array in arrays.items()}


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX-512 BF16 or AMX), through oneDNN: where it
    does, a bf16 matrix product runs about twice as fast as an fp32 one; elsewhere bf16 is emulated and slower."""
    if not torch.backends.mkldnn.is_available():
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return bool(torch.cpu._is_avx512_bf16_supported() or amx())


def choose_placement(precision: str, *, device_index: int = 0, cpu_bf16: bool = True) -> Placement:
    """CUDA (GPU ``device_index`` of those visible) when present, else the CPU; bf16 autocast where the
    device multiplies bf16 natively and ``precision`` allows it (auto or bf16), fp32 otherwise.
    ``cpu_bf16`` False keeps a CPU in fp32 (DeepSpeed's ranks on a CPU, which run its fp32 engine)."""
    if not torch.cuda.is_available():
        bf16 = precision != "fp32" and cpu_bf16 and cpu_has_bf16()
        if precision == "bf16" and not bf16:
            raise InputError(
                "bf16 needs a CUDA GPU or a CPU with AVX-512 BF16 or AMX (and, on a CPU, one process or torchrun's ranks, "
                "not DeepSpeed's); use precision: auto or fp32",
                path="train.precision",
            )
        return Placement(torch.device("cpu"), torch.bfloat16 if bf16 else None)
    bf16 = precision != "fp32" and torch.cuda.is_bf16_supported()
    if precision == "bf16" and not bf16:
        raise InputError("this GPU does not support bf16", path="train.precision")
    return Placement(torch.device("cuda", device_index), torch.bfloat16 if bf16 else None)


def load_tokenizer(model_path: str) -> Any:
    """The backbone's tokenizer, with a pad token (decoders often ship without one)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer: {exc}", path="model_path") from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InputError(
                "the tokenizer has neither a pad nor an end-of-sequence token", path="model_path"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_base(model_path: str, dtype: torch.dtype, *, file: Path | None = None, field: str) -> nn.Module:
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(model_path, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the backbone: {exc}", file=file, path=field) from None
    if getattr(model, "pooler", None) is not None:
        # The head pools token states itself: BERT's pooler (untrained in e5) would only cost compute,
        # and its "dense" layer would take LoRA adapters that never learn.
        model.pooler = None
    return model


def _input_embedding_name(model: nn.Module) -> str:
    embedding = model.get_input_embeddings()
    return next(name for name, module in model.named_modules() if module is embedding)


def build_relevance_model(
    card: ModelCard, *, lora_r: int, lora_alpha: int, lora_dropout: float, placement: Placement
) -> RelevanceModel:
    """A fresh classifier: the frozen backbone with new LoRA adapters and a new head (uses torch's RNG)."""
    from peft import LoraConfig, get_peft_model

    base = _load_base(card.base_model_path, placement.weights_dtype, field="model_path")
    lora = LoraConfig(
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=card.target_modules,
        modules_to_save=[_input_embedding_name(base)] if card.train_embeddings else None,
    )
    try:
        backbone = get_peft_model(base, lora)
    except ValueError as exc:
        raise InputError(str(exc), path="model.lora.target_modules") from None
    dropout = getattr(base.config, "hidden_dropout_prob", 0.1)
    model = RelevanceModel(backbone, card, dropout=dropout)
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    if placement.device.type == "cpu":
        use_cheap_dropout(model)
    return model.to(placement.device)


def continue_from(model: RelevanceModel, card: ModelCard, directory: Path) -> None:
    """Load a trained model's adapter and head into a fresh one of the same shape (TAPT stage 2)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    trained = read_card(directory)
    same = (
        "base_model_path", "architecture", "pooling", "hidden_size", "target_modules", "train_embeddings", "tasks",
        "private_layers",
    )
    changed = [name for name in same if getattr(trained, name) != getattr(card, name)]
    if changed:
        raise InputError(f"cannot continue a model of another shape (changed: {', '.join(changed)})", file=directory / CARD_FILE)
    try:
        result = set_peft_model_state_dict(model.backbone, load_file(str(directory / "adapter_model.safetensors")))
    except RuntimeError as exc:  # tensors of other shapes: another LoRA rank
        raise InputError(f"adapter does not fit the model: {str(exc).splitlines()[0]}", file=directory) from None
    if result.unexpected_keys:
        raise InputError(f"adapter does not fit the model ({len(result.unexpected_keys)} unexpected tensors)", file=directory)
    model.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
    _load_private(model, directory)


def _load_private(model: RelevanceModel, directory: Path) -> None:
    from safetensors.torch import load_file

    if model.private is None:
        return
    path = directory / PRIVATE_FILE
    if not path.exists():
        raise InputError("the model has private layers but their file is missing", file=path)
    model.load_private_state(load_file(str(path)), path)


def save_relevance_model(model: RelevanceModel, card: ModelCard, directory: Path) -> None:
    """Write the adapter (peft format), the head and the card that says how to rebuild the model."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    model.backbone.save_pretrained(str(directory))
    head = {
        name: tensor.detach().float().cpu().contiguous() for name, tensor in model.head.state_dict().items()
    }
    save_file(head, str(directory / HEAD_FILE))
    if model.private is not None:
        save_file(model.private_state(), str(directory / PRIVATE_FILE))
    (directory / CARD_FILE).write_text(json.dumps(asdict(card), indent=2) + "\n", encoding="utf-8")


def read_card(directory: Path) -> ModelCard:
    """The card of a trained model folder; a missing or foreign one is an InputError."""
    path = directory / CARD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a trained model folder (no model card)", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if data.get("format") != CARD_FORMAT or data.get("head_outputs") != max(HEAD_OUTPUTS, len(data.get("tasks") or [])):
        raise InputError(f"unsupported model card (format {data.get('format')})", file=path)
    return ModelCard(**data)


def load_relevance_model(directory: Path, placement: Placement) -> tuple[RelevanceModel, ModelCard]:
    """A trained classifier in eval mode, rebuilt from its card, adapter and head."""
    from peft import PeftModel
    from safetensors.torch import load_file

    card = read_card(directory)
    # On a CPU the base weights are read as training held them (scoring there is fp32 either way).
    dtype = getattr(torch, card.base_weights) if placement.device.type == "cpu" else placement.weights_dtype
    base = _load_base(card.base_model_path, dtype, file=directory / CARD_FILE, field="base_model_path")
    backbone = PeftModel.from_pretrained(base, str(directory))
    model = RelevanceModel(backbone, card, dropout=0.0)
    model.head.load_state_dict(load_file(str(directory / HEAD_FILE)))
    _load_private(model, directory)
    return model.to(placement.device).eval(), card


def score_pairs(
    model: RelevanceModel,
    pairs: EncodedPairs,
    placement: Placement,
    *,
    batch_size: int,
    rank: int = 0,
    world: int = 1,
) -> np.ndarray:
    """The logit of every pair, in input order: eval mode, no autograd, batches sorted by length.

    With ``world`` > 1, rank ``rank`` of ranks that score together (ZeRO-3's, whose passes gather each
    layer's weights from all of them) scores every world-th batch, and leaves NaN for the others' rows.
    It makes as many passes as the rank with the most batches, a spare one on its first batch.
    """
    was_training = model.training
    model.eval()
    logits = np.full(len(pairs), np.nan, dtype=np.float64)
    groups = pairs.task_ids if model.private is not None else None
    batches = scoring_batches(pairs.lengths, batch_size, groups=groups)
    mine = batches[rank::world]
    spare = math.ceil(len(batches) / world) - len(mine)
    with placement.scoring(model), torch.inference_mode():
        for batch in mine:
            logits[batch] = model(**placement.tensors(pad_batch(pairs, batch))).float().cpu().numpy()
        for _ in range(spare):
            model(**placement.tensors(pad_batch(pairs, batches[0])))
    model.train(was_training)
    return logits

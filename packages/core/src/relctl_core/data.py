"""Loading, validating, cleaning, sampling, hashing and summarising the QC and QI relevance datasets."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from relctl_core.errors import InputError
from relctl_core.files import read_utf8

TARGET_FIELD = {"QC": "category_path", "QI": "item_title"}
"""The competition's name for the text a query is matched against, per task."""

SUFFIXES = (".jsonl", ".txt", ".csv", ".parquet")

_LANGUAGE_CODE = re.compile(r"[A-Za-z-]{2,8}")
_WHITESPACE_RUN = re.compile(r"\s+")
_LEVEL_SEPARATOR = re.compile(r",(?! )")
_CSV_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}
_HASH_FORMAT = b"relctl-examples/1\n"
_JSON_TYPE_NAMES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled (or unlabelled) query-target pair; ``line`` points back at the source file."""

    id: str
    language: str
    query: str
    target: str
    label: int | None
    line: int


_EXAMPLE_FIELDS = {field.name for field in fields(Example)}


@dataclass(frozen=True)
class CleaningReport:
    """What :func:`clean_examples` did: rows in and out, empty queries dropped, queries it rewrote."""

    rows_in: int
    rows_out: int
    dropped_empty: int
    changed_queries: int


def load_examples(path: str | Path, task: str, *, require_label: bool) -> list[Example]:
    """Load and validate a competition file (.jsonl/.txt JSON lines, .csv or .parquet) for ``task``.

    The first bad row raises :class:`InputError` naming the file and its line (csv: the line
    the record starts on; parquet: row number + 1). Empty queries are kept: cleaning decides.
    """
    return load_examples_with_ids(path, task, require_label=require_label)[0]


def load_examples_with_ids(path: str | Path, task: str, *, require_label: bool) -> tuple[list[Example], list[int | str]]:
    """:func:`load_examples`, and each row's id as the file holds it: an integer id stays an integer
    (JSON lines, Parquet), where :class:`Example` keeps every id as text. CSV has no types: its ids are text."""
    if task not in TARGET_FIELD:
        raise ValueError(f"task must be 'QC' or 'QI', not {task!r}")
    file = str(path)
    source = Path(path)
    suffix = source.suffix.lower()
    if not source.exists():
        raise InputError("file not found", file=file)
    if suffix not in SUFFIXES:
        raise InputError(
            f"unsupported file type {source.suffix!r} (expected {', '.join(SUFFIXES)})", file=file
        )
    validator = _RowValidator(file, task, require_label)
    if suffix == ".parquet":
        rows = _parquet_rows(source, file, validator.required_fields)
    elif suffix == ".csv":
        rows = _csv_rows(read_utf8(source, file), file, validator.required_fields)
    else:
        rows = _json_lines_rows(read_utf8(source, file), file)
    examples: list[Example] = []
    ids: list[int | str] = []
    for line, row in rows:
        examples.append(validator.example(row, line))
        ids.append(row["id"])
    if not examples:
        raise InputError("no rows", file=file)
    return examples, ids


def clean_examples(
    examples: Iterable[Example],
    *,
    collapse_spaces: bool = True,
    strip: bool = True,
    lowercase: bool = True,
    drop_empty: bool = True,
    source: str | None = None,
) -> tuple[list[Example], CleaningReport]:
    """Normalise query and target text; drop (or reject) rows whose query ends up empty.

    A query is empty when nothing but whitespace is left. ``source`` names the file in the
    error raised for an empty query when ``drop_empty`` is off; ``changed_queries`` counts
    kept rows whose query text was rewritten.
    """

    def clean(text: str) -> str:
        if collapse_spaces:
            text = _WHITESPACE_RUN.sub(" ", text)
        if strip:
            text = text.strip()
        if lowercase:
            text = text.lower()
        return text

    cleaned: list[Example] = []
    rows_in = dropped_empty = changed_queries = 0
    for example in examples:
        rows_in += 1
        query = clean(example.query)
        if not query.strip():
            if not drop_empty:
                raise InputError("empty query", file=source, line=example.line)
            dropped_empty += 1
            continue
        changed_queries += query != example.query
        cleaned.append(
            Example(example.id, example.language, query, clean(example.target), example.label, example.line)
        )
    report = CleaningReport(rows_in, len(cleaned), dropped_empty, changed_queries)
    return cleaned, report


def sample_examples(examples: Sequence[Example], max_rows: int, seed: int) -> list[Example]:
    """Return at most ``max_rows`` examples, chosen by ``seed``, in their original order.

    Rows are ranked by a hash of (seed, id) rather than by ``random``, so the subset does not
    depend on the Python version and a row keeps its place when unrelated rows are added.
    """
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, not {max_rows}")
    if len(examples) <= max_rows:
        return list(examples)
    salt = f"{seed}\0".encode()
    ranked = sorted(
        range(len(examples)),
        key=lambda index: (
            hashlib.blake2b(salt + examples[index].id.encode(), digest_size=8).digest(),
            index,
        ),
    )
    return [examples[index] for index in sorted(ranked[:max_rows])]


def category_levels(category_path: str) -> list[str]:
    """The levels of a category path; levels are separated by a comma that is not followed by a space.

    >>> category_levels("automobiles, parts & accessories,exterior parts,locks & hardware")
    ['automobiles, parts & accessories', 'exterior parts', 'locks & hardware']
    """
    return _LEVEL_SEPARATOR.split(category_path)


def category_group(category_path: str, depth: int) -> str:
    """The first ``depth`` levels of a category path, joined back with ","; shorter paths are kept whole."""
    if depth < 1:
        raise ValueError(f"category depth must be >= 1, got {depth}")
    return ",".join(category_levels(category_path)[:depth])


def split_units(examples: Sequence[Example], task: str, strategy: str, category_depth: int) -> tuple[int, str]:
    """How many units a split of these rows deals out to folds, and what they are; each fold needs one.

    Category-aware splits keep every query (QI) or every category group (QC) in one fold; random and
    stratified K-fold deal out rows.
    """
    if strategy != "category-aware":
        return len(examples), "rows"
    if task == "QI":
        return len({example.query for example in examples}), "distinct queries"
    return len({category_group(example.target, category_depth) for example in examples}), "category groups"


def dataset_hash(examples: Iterable[Example]) -> str:
    """SHA-256 hex of (id, language, query, target, label) of every row, in order; ``line`` is left out."""
    digest = hashlib.sha256(_HASH_FORMAT)
    for example in examples:
        record = [example.id, example.language, example.query, example.target, example.label]
        digest.update(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def summarize(examples: Iterable[Example]) -> dict[str, Any]:
    """Row and positive counts overall and per language (languages sorted by code).

    ``positives`` and ``positive_rate`` are None where any row in the group is unlabelled.
    """
    rows: dict[str, int] = {}
    positives: dict[str, int] = {}
    unlabelled: set[str] = set()
    for example in examples:
        rows[example.language] = rows.get(example.language, 0) + 1
        if example.label is None:
            unlabelled.add(example.language)
        else:
            positives[example.language] = positives.get(example.language, 0) + example.label

    def counts(n: int, p: int | None) -> dict[str, Any]:
        return {"rows": n, "positives": p, "positive_rate": p / n if p is not None and n else None}

    languages = {
        language: counts(n, None if language in unlabelled else positives.get(language, 0))
        for language, n in sorted(rows.items())
    }
    total_positives = None if unlabelled else sum(positives.values())
    return counts(sum(rows.values()), total_positives) | {"languages": languages}


def write_examples(path: str | Path, examples: Iterable[Example]) -> None:
    """Write relctl's dataset artifact (one JSON object of Example fields a line), atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A temp file in the same directory keeps os.replace atomic: readers see the old file or the new one.
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            for example in examples:
                handle.write(json.dumps(asdict(example), ensure_ascii=False, separators=(",", ":")))
                handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def read_examples(path: str | Path) -> list[Example]:
    """Read a dataset artifact written by :func:`write_examples`."""
    file = str(path)
    examples = []
    for line, row in _json_lines_rows(read_utf8(Path(path), file), file):
        if not isinstance(row, dict) or set(row) != _EXAMPLE_FIELDS or not _artifact_types_ok(row):
            raise InputError(
                "not a relctl examples row (fields or their types are wrong)", file=file, line=line
            )
        examples.append(Example(**row))
    return examples


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex of a file's bytes, read in chunks."""
    try:
        with open(path, "rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror}", file=path) from None


def _artifact_types_ok(row: Mapping[str, Any]) -> bool:
    texts_ok = all(isinstance(row[name], str) for name in ("id", "language", "query", "target"))
    label_ok = row["label"] is None or (type(row["label"]) is int and row["label"] in (0, 1))
    return texts_ok and label_ok and type(row["line"]) is int


class _RowValidator:
    """Turns raw rows of one file into Examples, failing on the first bad one."""

    def __init__(self, file: str, task: str, require_label: bool) -> None:
        self.file = file
        self.task = task
        self.require_label = require_label
        self.target_field = TARGET_FIELD[task]
        self.required_fields = ("id", "language", "origin_query", self.target_field) + (
            ("label",) if require_label else ()
        )
        self.first_line_of_id: dict[str, int] = {}

    def example(self, row: Any, line: int) -> Example:
        if not isinstance(row, dict):
            raise self._error(f"row must be a JSON object, got {_type_name(row)}", line)
        row_task = row.get("task")
        if row_task is not None and row_task != self.task:
            raise self._error(f"task is {row_task!r} but the file is loaded as {self.task!r}", line)
        for name in self.required_fields:
            if name not in row:
                raise self._error(f"missing field {name!r}", line)
        example_id = self._id(row["id"], line)
        language = self._text(row, "language", line)
        if not _LANGUAGE_CODE.fullmatch(language):
            raise self._error(f"language {language!r} is not a language code (2-8 letters or '-')", line)
        query = self._text(row, "origin_query", line)
        target = self._text(row, self.target_field, line)
        if not target.strip():
            raise self._error(f"empty {self.target_field}", line)
        label = self._label(row.get("label"), line)
        first_line = self.first_line_of_id.setdefault(example_id, line)
        if first_line != line:
            raise self._error(f"duplicate id {example_id!r} (first at line {first_line})", line)
        return Example(example_id, language, query, target, label, line)

    def _id(self, value: Any, line: int) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self._error(f"field 'id' must be a string or an integer, got {_type_name(value)}", line)
        if value == "":
            raise self._error("empty id", line)
        return str(value)

    def _text(self, row: Mapping[str, Any], name: str, line: int) -> str:
        value = row[name]
        if not isinstance(value, str):
            raise self._error(f"field {name!r} must be a string, got {_type_name(value)}", line)
        return value

    def _label(self, value: Any, line: int) -> int | None:
        if value is None:
            if self.require_label:
                raise self._error("missing label", line)
            return None
        # Float labels come from writers (pandas) that store an int column with nulls as float.
        if not isinstance(value, bool) and isinstance(value, int | float) and value in (0, 1):
            return int(value)
        raise self._error(f"label must be 0 or 1, got {value!r}", line)

    def _error(self, message: str, line: int) -> InputError:
        return InputError(message, file=self.file, line=line)


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _json_lines_rows(text: str, file: str) -> Iterator[tuple[int, Any]]:
    # Split on "\n" only: str.splitlines also breaks on U+2028 and friends, which may sit inside queries.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except json.JSONDecodeError as err:
            raise InputError(
                f"malformed JSON: {err.msg} (column {err.colno})", file=file, line=line
            ) from None


def _csv_rows(text: str, file: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    while True:
        start_line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise InputError(f"malformed CSV: {err}", file=file, line=start_line) from None
        if not values:
            continue
        if header is None:
            header = [name.strip() for name in values]
            for name in required:
                if name not in header:
                    raise InputError(f"missing column {name!r}", file=file, line=start_line)
            continue
        if len(values) != len(header):
            raise InputError(f"expected {len(header)} fields, got {len(values)}", file=file, line=start_line)
        row: dict[str, Any] = dict(zip(header, values, strict=True))
        # csv has no null and no numbers: an empty cell is a missing value, and labels arrive as text.
        if "label" in row:
            label = row["label"].strip()
            row["label"] = None if label == "" else _CSV_LABELS.get(label, label)
        if row.get("task") == "":
            row["task"] = None
        yield start_line, row


def _parquet_rows(source: Path, file: str, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"not a readable Parquet file: {err}", file=file) from None
    present = set(parquet.schema_arrow.names)
    for name in required:
        if name not in present:
            raise InputError(f"missing column {name!r}", file=file)
    wanted = [name for name in (*required, "label", "task") if name in present]
    try:
        table = parquet.read(columns=list(dict.fromkeys(wanted)))
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"not a readable Parquet file: {err}", file=file) from None
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    for index in range(table.num_rows):
        yield index + 1, {name: values[index] for name, values in columns.items()}

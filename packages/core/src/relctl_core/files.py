"""Reading users' text files: a missing file or undecodable bytes is bad input naming the file and line."""

from __future__ import annotations

import codecs
from pathlib import Path

from relctl_core.errors import InputError


def read_utf8(source: Path, file: str) -> str:
    """The file as text; undecodable bytes fail naming the line they are on."""
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror}", file=file) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        message = (
            f"not valid UTF-8 (byte 0x{data[err.start]:02x} at byte {err.start - line_start + 1} of the line)"
        )
        raise InputError(message, file=file, line=data.count(b"\n", 0, err.start) + 1) from None

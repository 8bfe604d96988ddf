"""Errors that reach the user: bad input (exit 2) names the file, line or YAML path at fault."""

from __future__ import annotations

from pathlib import Path


class RelctlError(Exception):
    """An error relctl reports without a traceback."""

    exit_code = 1


class InputError(RelctlError):
    """Bad input: a malformed file, an unknown key, a missing file, a broken data row, a dead broker.

    Rendered as ``file:line path: message`` with whatever location parts are known, e.g.
    ``experiment.yaml:14 model.lora.r: must be > 0`` or ``train.jsonl:7: label must be 0 or 1``.
    """

    exit_code = 2

    def __init__(
        self, message: str, *, file: str | Path | None = None, line: int | None = None, path: str | None = None
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.path = path
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.path:
            where = f"{where} {self.path}" if where else self.path
        return f"{where}: {self.message}" if where else self.message


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's error can run to pages), or its type's name."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class StageFailed(RelctlError):
    """A pipeline stage failed; the message is what the stage reported."""

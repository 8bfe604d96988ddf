"""The relctl command: submit, run, watch and rank multilingual search relevance experiments."""

from typing import Any


def __getattr__(name: str) -> Any:
    # The version is read from the installed metadata when asked for, not on every import: reading it
    # imports importlib.metadata, a good part of a short command's start-up.
    if name == "__version__":
        from importlib.metadata import version

        return version("relctl")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The relctl command: submit, run, watch and rank multilingual search relevance experiments."""

from importlib.metadata import version

__version__ = version("relctl")

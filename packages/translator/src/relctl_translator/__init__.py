"""Query translation service for relctl: backends, batching and the shared translation cache."""

from importlib.metadata import version

__version__ = version("relctl-translator")

"""LoRA fine-tuning of multilingual relevance models for relctl, and its model store provisioning."""

from importlib.metadata import version

__version__ = version("relctl-trainer")

"""Small example inputs for ``rayflavor evaluate`` (one per model).

>>> path("seesaw").name
'seesaw_example.parquet'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

MODELS = ("seesaw", "fn")


def path(model: str) -> Path:
    """Path of the shipped example parameter table for ``model``."""
    if model not in MODELS:
        raise ValueError(f"no example for model {model!r}; choose from {MODELS}")
    return Path(str(resources.files("rayflavor.examples").joinpath(f"{model}_example.parquet")))

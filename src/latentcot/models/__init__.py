"""Language-model backbones: tiny presets built from scratch or any Hugging Face causal LM.

The names below are imported on first use (PEP 562), so that reading the preset names
(:data:`latentcot.models.presets.PRESET_NAMES`, e.g. for ``latentcot train --help``) does not
import transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"load_backbone": "loading", "resize_for_tokenizer": "loading", "PRESETS": "presets",
          "build_causal_lm": "presets", "build_preset": "presets"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'latentcot.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"latentcot.models.{_WHERE[name]}"), name)

"""Language-model backbones: tiny presets built from scratch or any Hugging Face causal LM."""

from latentcot.models.loading import load_backbone, resize_for_tokenizer
from latentcot.models.presets import PRESETS, build_causal_lm, build_preset

__all__ = ["PRESETS", "build_causal_lm", "build_preset", "load_backbone", "resize_for_tokenizer"]

"""Load any Hugging Face causal LM, or build a preset, and fit its embeddings to a tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from latentcot.errors import LatentCotError
from latentcot.models.activations import use_inplace_activations
from latentcot.models.presets import PRESETS, build_preset


def load_backbone(
    name_or_path: str | Path, vocab_size: int | None = None, dtype: torch.dtype | None = None, **overrides: Any
) -> PreTrainedModel:
    """A preset built from scratch, or a pretrained causal LM (``AutoModelForCausalLM``).

    Args:
        name_or_path: a preset name (see :data:`latentcot.models.presets.PRESETS`), a folder written
            by ``save_pretrained``, or a Hugging Face Hub name.
        vocab_size: embedding rows for a preset (``len(tokenizer)``); ignored for pretrained models.
        dtype: weights dtype for a pretrained model (its saved dtype when None).
        **overrides: preset builder arguments (``dropout``, ``max_positions``, ...).

    Returns:
        The model, in train mode for presets and eval mode for pretrained loads (HF default), with
        ``gelu_new`` run in place when no gradient flows (bit-identical; see
        :mod:`latentcot.models.activations`).

    Raises:
        LatentCotError: a preset without ``vocab_size``, or nothing loadable at ``name_or_path``.
    """
    name = str(name_or_path)
    if name in PRESETS:
        if vocab_size is None:
            raise LatentCotError(f"model preset '{name}': needs vocab_size (the tokenizer's length)")
        model = build_preset(name, vocab_size, **overrides)
        use_inplace_activations(model)
        return model
    if looks_local(name) and not Path(name).is_dir():
        raise LatentCotError(f"model '{name}': no such local folder (and not a preset: {', '.join(PRESETS)})")
    try:
        # safetensors only: transformers never unpickles a pytorch_model.bin for us
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, use_safetensors=True)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0]
        raise LatentCotError(f"model '{name}': not a preset ({', '.join(PRESETS)}) and cannot be loaded ({reason})") from None
    use_inplace_activations(model)
    return model


def looks_local(name: str) -> bool:
    """Whether a model name is meant as a local path rather than a Hub id (``org/name``): it
    exists, starts with ``/``, ``.`` or ``~``, or has more than one ``/``."""
    return Path(name).exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1


@torch.no_grad()
def resize_for_tokenizer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    init_from: str | None = None,
    new_token_ids: Sequence[int] | None = None,
) -> None:
    """Grow the embeddings to ``len(tokenizer)`` and initialise new tokens from an existing one.

    Coconut (Hao et al. 2024, arXiv:2412.06769) copies an existing token's input and output
    embedding into each new special token rather than leaving them random.

    Args:
        model: resized in place.
        tokenizer: the tokenizer whose length the embeddings must cover.
        init_from: the existing token whose embedding is copied (e.g. ``tokenizer.eos_token``);
            None keeps the new rows as ``resize_token_embeddings`` makes them.
        new_token_ids: the rows to initialise; by default the rows the resize added. Pass
            :attr:`latentcot.data.tokenizer.LatentTokens.added` when the model's vocabulary was
            already larger than the tokenizer's.
    """
    old = int(model.get_input_embeddings().weight.shape[0])  # type: ignore[index]
    if len(tokenizer) > old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    ids = list(range(old, len(tokenizer))) if new_token_ids is None else list(new_token_ids)
    if init_from is None or not ids:
        return
    source = tokenizer.convert_tokens_to_ids(init_from)
    if source is None or source == tokenizer.unk_token_id and init_from != tokenizer.unk_token:
        raise LatentCotError(f"init_from token '{init_from}': not in the tokenizer's vocabulary")
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        layer.weight[ids] = layer.weight[source].clone()  # type: ignore[index,operator]

"""Passes whose caller reads only the last position's output: the last layer skips the rest.

At inference the prompt pass of a batch feeds the next step only through the last position's
last-layer state (the first thought, or the first answer token) and through the KV cache. In the
last layer, every other position contributes only its keys and values to the cache; its attention
output, output projection and MLP are read by nothing. :func:`last_position_only` swaps the last
decoder layer, for the duration of a ``with`` block, for a wrapper that writes those keys and
values (the layer's own norm and projections, so the cache holds what the full layer would have
written) and runs the real layer on the last position alone, as one decoding step on that cache.
On the micro ProsQA model (2 layers, ~250-position prompts at batch 64) that is about half of the
prompt pass.

The base model's output then carries the last position's state in *every* column (the wrapper
hands back an expanded view, because some models reshape the output to the input's length); the
caller must read only ``[:, -1]``. Supported: GPT-2 blocks and Llama decoder layers (the presets
and the models this project is tested on). Other architectures, attention implementations other
than ``sdpa`` and ``eager`` (flash attention takes a 2D mask), cross-attention, and passes of one
position run the layer unchanged; the context manager says whether it applied.

The numbers are those of the full pass up to floating-point summation order: the last position's
attention reads the same keys as one query instead of among many, and its matrix products run on
a smaller batch (tested equal to 1e-5 and with equal greedy answers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Block
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, apply_rotary_pos_emb

KeyWriter = Callable[[Any, torch.Tensor, Any, dict[str, Any]], None]


def _gpt2_keys(layer: Any, hidden: torch.Tensor, cache: Any, kwargs: dict[str, Any]) -> None:
    """Write the keys and values a GPT-2 block's attention computes for ``hidden`` into ``cache``."""
    attn = layer.attn
    _, keys, values = attn.c_attn(layer.ln_1(hidden)).split(attn.split_size, dim=2)
    shape = (*keys.shape[:-1], -1, attn.head_dim)
    cache.update(keys.view(shape).transpose(1, 2), values.view(shape).transpose(1, 2), attn.layer_idx)


def _llama_keys(layer: Any, hidden: torch.Tensor, cache: Any, kwargs: dict[str, Any]) -> None:
    """Write the (rotated) keys and values a Llama layer's attention computes for ``hidden``."""
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    shape = (*x.shape[:-1], -1, attn.head_dim)
    keys = attn.k_proj(x).view(shape).transpose(1, 2)
    values = attn.v_proj(x).view(shape).transpose(1, 2)
    cos, sin = kwargs["position_embeddings"]
    n = hidden.shape[1]
    _, keys = apply_rotary_pos_emb(keys, keys, cos[:, :n], sin[:, :n])
    cache.update(keys, values, attn.layer_idx)


_WRITERS: dict[type[nn.Module], KeyWriter] = {GPT2Block: _gpt2_keys, LlamaDecoderLayer: _llama_keys}


def _last(value: Any, n: int) -> Any:
    """``value`` cut to its last query position, where it is a per-position tensor of a pass of ``n``."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.dim() == 4 and value.shape[-2] == n:  # an attention mask (batch, 1, queries, keys)
        return value[..., -1:, :]
    if value.dim() in (2, 3) and value.shape[1] == n:  # position ids, rotary cos / sin
        return value[:, -1:]
    if value.dim() == 1 and value.shape[0] == n:  # cache positions
        return value[-1:]
    return value


class _LastPositionLayer(nn.Module):
    """The last decoder layer, computing keys and values everywhere and the rest only at the end."""

    def __init__(self, layer: nn.Module, write: KeyWriter):
        super().__init__()
        self.layer = layer
        self.write = write

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        batch, n, width = hidden_states.shape
        cache = kwargs.get("cache", kwargs.get("past_key_values", args[0] if args else None))
        cross = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        if n == 1 or cache is None or cross is not None:
            return self.layer(hidden_states, *args, **kwargs)
        self.write(self.layer, hidden_states[:, :-1], cache, kwargs)
        args = tuple(_last(a, n) for a in args)
        kwargs = {key: (tuple(_last(v, n) for v in value) if key == "position_embeddings" else _last(value, n))
                  for key, value in kwargs.items()}
        out = self.layer(hidden_states[:, -1:], *args, **kwargs)
        return out.expand(batch, n, width)  # only column -1 is meant to be read


def _decoder_layers(backbone: PreTrainedModel) -> nn.ModuleList | None:
    base = backbone.base_model
    for name in ("h", "layers"):
        layers = getattr(base, name, None)
        if isinstance(layers, nn.ModuleList) and len(layers):
            return layers
    return None


@contextmanager
def last_position_only(backbone: PreTrainedModel, enabled: bool = True) -> Iterator[bool]:
    """Within the block, passes of ``backbone`` compute the last layer for the last position only
    (see the module); yields whether that applies to this model (False: passes are unchanged)."""
    usable = enabled and backbone.config._attn_implementation in ("sdpa", "eager")
    layers = _decoder_layers(backbone) if usable else None
    write = _WRITERS.get(type(layers[-1])) if layers is not None else None
    if layers is None or write is None:
        yield False
        return
    original = layers[-1]
    layers[-1] = _LastPositionLayer(original, write)
    try:
        yield True
    finally:
        layers[-1] = original

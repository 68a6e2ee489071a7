"""Tiny GPT-2 and Llama models built from named presets, for training from scratch on CPU.

One fully parameterised builder, :func:`build_causal_lm`, and a plain dict of one-line presets
over it (the DiT ``DiT_models`` / torchtune builder pattern).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from latentcot.errors import LatentCotError

if TYPE_CHECKING:  # transformers is imported when a model is built, not to list the presets
    from transformers import PreTrainedModel


def build_causal_lm(
    arch: Literal["gpt2", "llama"],
    vocab_size: int,
    n_layer: int,
    hidden: int,
    n_head: int,
    max_positions: int = 1024,
    intermediate: int | None = None,
    dropout: float = 0.0,
    tie_word_embeddings: bool = True,
    activation: str = "gelu_new",
) -> PreTrainedModel:
    """A randomly initialised causal LM from the real ``transformers`` classes.

    Args:
        arch: ``gpt2`` (learned positions, LayerNorm, GELU MLP) or ``llama`` (RoPE, RMSNorm, SwiGLU).
        vocab_size: rows of the token embedding (use ``len(tokenizer)``).
        n_layer: transformer blocks.
        hidden: model width.
        n_head: attention heads (``hidden`` must be divisible by it).
        max_positions: longest sequence (GPT-2 position table; Llama RoPE limit).
        intermediate: MLP width; 4×hidden for GPT-2 and 8/3×hidden (rounded to 32) for Llama by default.
        dropout: dropout everywhere (0 keeps training deterministic and tests exact).
        tie_word_embeddings: share the input embedding with the output projection.
        activation: GPT-2's MLP activation (a transformers ``ACT2FN`` name). ``gelu_new`` is GPT-2's
            own; the presets use ``gelu_pytorch_tanh``, the same tanh GELU as one fused operation
            (rounding differs by at most 2.4e-7), which makes the demo's training steps 1.13-1.24x
            faster on CPU (``bench/preset_gelu.py``; docs/latent_methods.md). Ignored for Llama (SwiGLU).

    Returns:
        A ``PreTrainedModel`` (``GPT2LMHeadModel`` or ``LlamaForCausalLM``) in float32.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if hidden % n_head:
        raise LatentCotError(f"model: hidden={hidden} must be divisible by n_head={n_head}")
    if arch == "gpt2":
        config: Any = GPT2Config(
            vocab_size=vocab_size, n_positions=max_positions, n_embd=hidden, n_layer=n_layer, n_head=n_head,
            n_inner=intermediate, activation_function=activation, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
            tie_word_embeddings=tie_word_embeddings, bos_token_id=None, eos_token_id=None,
        )  # fmt: skip
        return GPT2LMHeadModel(config)
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=n_layer, num_attention_heads=n_head,
            num_key_value_heads=n_head, intermediate_size=intermediate or 32 * round(hidden * 8 / 3 / 32),
            max_position_embeddings=max_positions, attention_dropout=dropout,
            tie_word_embeddings=tie_word_embeddings, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )  # fmt: skip
        return LlamaForCausalLM(config)
    raise LatentCotError(f"model: unknown architecture '{arch}' (valid: gpt2, llama)")


def _gpt2(**shape: Any) -> Callable[..., PreTrainedModel]:
    """A GPT-2 preset: trained from scratch, so it takes the fused tanh GELU (see build_causal_lm)."""
    return lambda vocab_size, **kw: build_causal_lm("gpt2", vocab_size, **shape, **{"activation": "gelu_pytorch_tanh", **kw})


# name -> builder taking the vocabulary size (and overrides such as dropout or max_positions)
PRESETS: dict[str, Callable[..., PreTrainedModel]] = {
    "micro": _gpt2(n_layer=2, hidden=64, n_head=2),
    "micro-llama": lambda vocab_size, **kw: build_causal_lm("llama", vocab_size, n_layer=2, hidden=64, n_head=2, **kw),
    "tiny": _gpt2(n_layer=4, hidden=256, n_head=4),
    "tiny-llama": lambda vocab_size, **kw: build_causal_lm("llama", vocab_size, n_layer=4, hidden=256, n_head=4, **kw),
    "small": _gpt2(n_layer=6, hidden=384, n_head=6),
    # wide and shallow: 2 layers, 8 heads, as "Reasoning by Superposition" trains on graphs (768 there)
    **{
        f"shallow-{width}": _gpt2(n_layer=2, hidden=width, n_head=8)
        for width in (128, 256, 384, 768)
    },
    # the same with rotary positions (Llama blocks): relative position comes free, which CPU-budget
    # graph training needs to find the "name the root's children" circuit (docs/latent_methods.md)
    **{
        f"shallow-{width}-llama": (lambda vocab_size, width=width, **kw:
                                   build_causal_lm("llama", vocab_size, n_layer=2, hidden=width, n_head=8, **kw))
        for width in (128, 256)
    },
    # shallow-128 with twice the depth (4 layers): two more attention hops per pass, for thoughts that
    # must make more than one addition each (docs/latent_methods.md, "Grouped steps")
    "deep-128": _gpt2(n_layer=4, hidden=128, n_head=8),
}


PRESET_NAMES = tuple(PRESETS)


def build_preset(name: str, vocab_size: int, **overrides: Any) -> PreTrainedModel:
    """Build the preset ``name`` (see :data:`PRESETS`) with ``vocab_size`` rows of embedding.

    Raises:
        LatentCotError: unknown preset name.
    """
    if name not in PRESETS:
        raise LatentCotError(f"model preset '{name}': unknown (valid: {', '.join(PRESETS)})")
    return PRESETS[name](vocab_size, **overrides)

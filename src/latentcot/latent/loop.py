"""THE batched latent loop (Coconut, Hao et al. 2024, arXiv:2412.06769, Section 3), shared by
every latent method.

A batch is one aligned tensor of input embeddings, e.g. per row
``[pad…] question <bot> <latent>×k_i <eot> rest [pad…]``, left-padded so the latents of all
rows start in the same column. Positions marked in ``latent_mask`` take, instead of their own
embedding, the last hidden state of the position before them (optionally through
``project``). The loop runs

1. one pass over every column before the first latent column (filling a ``DynamicCache`` whose
   layers grow in place at inference, :mod:`latentcot.latent.cache`),
2. one one-position pass per column from the first to the last latent column; in each, a row
   gets its continuous thought or — when it has fewer latents than the batch maximum — its
   next real token's embedding, chosen by one ``torch.where`` for the whole batch,
3. one pass over the remaining columns,

so every position is computed exactly once, no prefix is re-encoded, and gradients flow
through the whole chain of latents (the cache holds the graph). Padding is handled by the
attention mask and explicit ``position_ids`` (``cumsum(mask) - 1``), so a padded row computes
the same numbers as the row alone. Logits are never computed here: :func:`lm_loss` projects
only the positions that carry a label, and :func:`generate_from_cache` only the last one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PreTrainedModel

from latentcot.errors import LatentCotError
from latentcot.latent.cache import new_cache
from latentcot.latent.last_position import last_position_only

Project = Callable[[torch.Tensor], torch.Tensor]


class SoftTokens:
    """A thought map that feeds back, instead of the hidden state, the token embeddings weighted by
    the LM head's distribution at that position: ``softmax(lm_head(h)) @ E`` (Soft Thinking, Zhang et
    al. 2025, arXiv:2505.15778; CoT2, Gozeten et al. 2025, arXiv:2505.23648). Each thought is then a
    superposition of tokens by construction, at the embeddings' scale, and differentiable (training
    backpropagates through the softmax as through a hidden-state thought). Used by Coconut's
    ``thought_input: soft``; :meth:`sample` is its Gumbel-softmax draw (the test-time sampler
    ``gumbel``).
    """

    def __init__(self, backbone: PreTrainedModel) -> None:
        head = backbone.get_output_embeddings()
        table = backbone.get_input_embeddings()
        if head is None or table is None:
            raise LatentCotError(f"thought_input 'soft': {type(backbone).__name__} has no LM head or input embeddings")
        self.head, self.table = head, table

    def mix(self, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``weights @ E``: a distribution over the vocabulary as a mixture of token embeddings."""
        table: torch.Tensor = self.table.weight  # type: ignore[assignment]
        return (weights @ table.float()).to(dtype)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.softmax(self.head(hidden).float(), dim=-1), hidden.dtype)

    def sample(self, hidden: torch.Tensor, temperature: float, scale: float = 1.0) -> torch.Tensor:
        """A Gumbel-softmax draw: ``softmax((logits + scale * g) / temperature) @ E``, ``g ~ Gumbel(0, 1)``
        from the global torch generator (Jang et al. 2017; the randomness Wu et al. 2025, arXiv:2508.03440,
        give soft thinking). With ``scale`` 1, low temperatures approach one sampled token's embedding and
        high ones the uniform mixture; ``scale`` below 1 at temperature 1 shrinks the noise only, so the
        draw tends to the soft thought itself (``scale`` 0 at temperature 1 is the greedy thought)."""
        logits = self.head(hidden).float()
        uniform = torch.rand_like(logits).clamp(1e-20, 1.0 - 1e-7)
        gumbel = -torch.log(-torch.log(uniform))
        return self.mix(torch.softmax((logits + scale * gumbel) / temperature, dim=-1), hidden.dtype)


def soft_tokens(backbone: PreTrainedModel) -> SoftTokens:
    """The soft thought map of ``backbone`` (:class:`SoftTokens`)."""
    return SoftTokens(backbone)


def scaled_to(norm: float, before: Project | None = None) -> Project:
    """A thought map that applies ``before`` (if any) and then rescales each vector to L2 ``norm``.

    Used by ``latent_scale: embedding`` (Coconut, CODI) with ``norm`` the mean token-embedding
    norm: a model trained from scratch ends with hidden states ~20x larger than its embeddings.
    """

    def project(hidden: torch.Tensor) -> torch.Tensor:
        if before is not None:
            hidden = before(hidden)
        return hidden * (norm / hidden.float().norm(dim=-1, keepdim=True).clamp_min(1e-6)).to(hidden.dtype)

    return project


@dataclass
class LatentForward:
    """What :func:`latent_forward` returns.

    Attributes:
        hidden_states: (batch, seq, hidden) last-layer hidden states (after the final norm).
        latents: (batch, max_latents, hidden) the continuous thoughts fed back as inputs, in
            order; zero past ``latent_counts[i]``.
        latent_counts: (batch,) latents per row.
        cache: the KV cache over all ``seq`` columns (continue with :func:`generate_from_cache`).
        attention_mask: (batch, seq) the mask the cache was built with.
        num_forward_passes: backbone calls made.
        layer_hidden_states: per layer (embeddings first), (batch, seq, hidden) each, when
            ``all_layers=True`` (CODI distils them); else None.
    """

    hidden_states: torch.Tensor
    latents: torch.Tensor
    latent_counts: torch.Tensor
    cache: DynamicCache
    attention_mask: torch.Tensor
    num_forward_passes: int
    layer_hidden_states: tuple[torch.Tensor, ...] | None = None


def position_ids(attention_mask: torch.Tensor, past_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Positions counting only real tokens (left padding gets position 0 and is masked anyway)."""
    start = 0 if past_mask is None else past_mask.sum(-1, keepdim=True)
    return (start + attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def attention_mask_4d(backbone: PreTrainedModel, mask_so_far: torch.Tensor, q_len: int, dtype: torch.dtype,
                      full_prefix: int = 0) -> torch.Tensor:
    """The (batch, 1, q_len, past + q_len) mask of one pass in which every query sees at least itself.

    With left padding a padding query has no real key before it. Fused SDPA kernels (cuDNN /
    efficient attention under bf16 on CUDA) return NaN for such a fully masked row, the NaN enters
    the cache as that position's keys and values, and 0 × NaN then poisons every real query. Letting
    each position attend to itself changes nothing for real tokens (they always see themselves) and
    keeps padding finite. Without padding the 2D mask is returned and the model builds its own.
    Flash-attention-2 unpads sequences itself, so it keeps the 2D mask too.

    Args:
        backbone: supplies the attention implementation (``sdpa`` or ``eager``: an additive mask either way).
        mask_so_far: (batch, past + q_len) 1 for real positions, 0 for padding.
        q_len: positions computed in this pass (the last ``q_len`` columns).
        dtype: dtype of the additive mask for eager attention.
        full_prefix: the first ``full_prefix`` columns attend to each other in both directions (a
            prefix LM, e.g. a puzzle's cells read as a whole); 0 = causal everywhere.
    """
    implementation = backbone.config._attn_implementation
    if full_prefix and implementation not in ("sdpa", "eager"):
        raise LatentCotError(f"a bidirectional prefix needs sdpa or eager attention, not {implementation!r}")
    if not full_prefix and (bool(mask_so_far.all()) or implementation not in ("sdpa", "eager")):
        return mask_so_far
    if q_len == 1 and not full_prefix:  # one new position (a thought, a decoded token): every real key and itself
        allowed = mask_so_far.bool().clone()
        allowed[:, -1] = True
        return attention_mask_from(backbone, allowed[:, None, None, :], dtype, "a bidirectional prefix")
    total = mask_so_far.shape[1]
    keys = torch.arange(total, device=mask_so_far.device)
    queries = keys[total - q_len :, None]  # (q_len, 1) absolute positions
    visible = (keys <= queries) | ((keys < full_prefix) & (queries < full_prefix))
    allowed = visible[None] & mask_so_far.bool()[:, None, :]  # (batch, q_len, total)
    allowed |= (keys == queries)[None]
    return attention_mask_from(backbone, allowed[:, None], dtype, "a bidirectional prefix")


def attention_mask_from(backbone: PreTrainedModel, allowed: torch.Tensor, dtype: torch.dtype, what: str) -> torch.Tensor:
    """A boolean (batch, 1, q_len, keys) pattern of which keys each query may read, in the form the
    backbone's attention takes: an additive mask of ``dtype`` (0 where allowed; -inf for ``sdpa``,
    the dtype's minimum for ``eager``); other implementations cannot take an arbitrary pattern
    (``what`` names the caller's in the error).

    ``sdpa`` would take the boolean pattern itself, but ``scaled_dot_product_attention`` turns a
    boolean mask into exactly this -inf/0 one on every call, i.e. once per layer; made here, it
    is made once per pass (the same numbers; one (64, 2, 350, 32) attention on one CPU thread takes
    64 ms with the float mask and 85 ms with the boolean one, conversion included).
    """
    implementation = backbone.config._attn_implementation
    if implementation == "sdpa":
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, float("-inf"))
    if implementation != "eager":
        raise LatentCotError(f"{what} needs sdpa or eager attention, not {implementation!r}")
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


_CACHE_KEYWORDS: dict[type[torch.nn.Module], str] = {}


def _cache_keyword(model_type: type[torch.nn.Module]) -> str:
    """The name under which this model's forward takes the KV cache.

    transformers 5.x renamed `past_key_values` to `cache` (the old name warns and is
    going away); older 5.x releases know only the old one.
    """
    if model_type not in _CACHE_KEYWORDS:
        params = inspect.signature(model_type.forward).parameters
        _CACHE_KEYWORDS[model_type] = "cache" if "cache" in params else "past_key_values"
    return _CACHE_KEYWORDS[model_type]


def _pass(
    backbone: PreTrainedModel,
    embeds: torch.Tensor,
    mask_so_far: torch.Tensor,
    positions: torch.Tensor,
    cache: DynamicCache,
    all_layers: bool,
    full_prefix: int = 0,
    last_only: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """One backbone call; with ``last_only`` it returns the last position's state alone, (batch, 1,
    hidden), and may skip the last layer's work on the other positions
    (:mod:`latentcot.latent.last_position`)."""
    with last_position_only(backbone, enabled=last_only and embeds.shape[1] > 1 and not all_layers):
        out = backbone.base_model(
            inputs_embeds=embeds,
            attention_mask=attention_mask_4d(backbone, mask_so_far, embeds.shape[1], embeds.dtype, full_prefix),
            position_ids=positions,
            use_cache=True,
            output_hidden_states=all_layers,
            **{_cache_keyword(type(backbone.base_model)): cache},
        )
    h = out.last_hidden_state
    return (h[:, -1:] if last_only else h), out.hidden_states


def latent_forward(
    backbone: PreTrainedModel,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    latent_mask: torch.Tensor,
    project: Project | None = None,
    all_layers: bool = False,
    full_prefix: int = 0,
    last_only: bool = False,
    prefix_states: bool = True,
) -> LatentForward:
    """Run a causal LM over a batch in which some positions are continuous thoughts.

    Args:
        backbone: a Hugging Face causal LM (``base_model`` gives hidden states).
        inputs_embeds: (batch, seq, hidden) token embeddings; rows at latent positions are ignored.
        attention_mask: (batch, seq) 1 for real positions (latents included), 0 for padding.
        latent_mask: (batch, seq) bool, True where a continuous thought goes; never in column 0.
        project: maps the previous last hidden state (batch, hidden) to the next input
            embedding (e.g. CODI's MLP + LayerNorm); identity when None (Coconut).
        all_layers: also return every layer's hidden states.
        full_prefix: the first ``full_prefix`` columns (all before the first latent) attend to each
            other in both directions; 0 = causal (every language-model method).
        last_only: inference that continues from the last column only (decoding): ``hidden_states``
            is then (batch, 1, hidden), the last column's, and the last layer skips what only the
            other columns' outputs need (:mod:`latentcot.latent.last_position`). The thoughts and
            the cache are as without it. Not with ``all_layers``.
        prefix_states: False when nothing reads the last-layer states of the columns before the
            last one ahead of the first latent (training whose labels start after the thoughts,
            see :func:`prefix_unlabelled`): the prompt pass then skips the last layer's attention
            and MLP there as ``last_only`` does, and ``hidden_states`` holds zeros in those
            columns. Gradients reach everything they reach otherwise (with dropout the random
            draws differ: fewer positions draw). Not with ``all_layers``.

    Returns:
        A :class:`LatentForward`.
    """
    if (last_only or not prefix_states) and all_layers:
        raise LatentCotError("latent_forward: last_only / prefix_states=False drop per-position states that "
                             "all_layers asks for")
    batch, seq, hidden = inputs_embeds.shape
    cache = new_cache(backbone.config)
    positions = position_ids(attention_mask)
    columns = latent_mask.any(0).nonzero().flatten().tolist()
    if not columns:  # no latents: one ordinary pass
        h, layers = _pass(backbone, inputs_embeds, attention_mask, positions, cache, all_layers, full_prefix, last_only)
        empty = inputs_embeds.new_zeros(batch, 0, hidden)
        counts = latent_mask.sum(-1)
        return LatentForward(h, empty, counts, cache, attention_mask, 1, layers)
    first, last = columns[0], columns[-1]
    assert first > 0, "a latent needs a position before it"
    if full_prefix > first:
        raise LatentCotError(f"full_prefix={full_prefix} reaches past the first latent (column {first})")
    h, layers = _pass(backbone, inputs_embeds[:, :first], attention_mask[:, :first], positions[:, :first], cache,
                      all_layers, full_prefix, last_only or not prefix_states)
    if not prefix_states and not last_only:  # columns nothing reads: zeros, so the shapes stay
        h = torch.cat([h.new_zeros(batch, first - 1, hidden), h], 1)
    hidden_pieces, layer_pieces, fed = [h], [layers], []
    previous = h[:, -1]  # (batch, hidden)
    for col in range(first, last + 1):
        thought = project(previous) if project is not None else previous
        # one write for the whole batch: the thought where this row has a latent, else its token
        x = torch.where(latent_mask[:, col, None], thought, inputs_embeds[:, col])[:, None]  # (batch, 1, hidden)
        fed.append(thought)
        # the last thought's pass also carries the tokens after it (e.g. <eot> and, in training, the
        # answer): they are known already, and no later thought needs that pass's output alone
        x = torch.cat([x, inputs_embeds[:, last + 1 :]], 1) if col == last else x
        h, layers = _pass(backbone, x, attention_mask[:, : col + x.shape[1]], positions[:, col : col + x.shape[1]],
                          cache, all_layers, last_only=last_only)
        hidden_pieces.append(h)
        layer_pieces.append(layers)
        previous = h[:, -1]
    passes = 1 + last + 1 - first
    layer_states = None
    if all_layers:
        layer_states = tuple(torch.cat(per_layer, 1) for per_layer in zip(*layer_pieces))
    # gather each row's thoughts, in order, from the columns of the latent window
    window = latent_mask[:, first : last + 1]  # (batch, columns)
    counts = latent_mask.sum(-1)
    k = int(counts.max())
    order = torch.argsort((~window).to(torch.int8), dim=1, stable=True)[:, :k]  # latent columns first
    stacked = torch.stack(fed, 1)  # (batch, columns, hidden)
    latents = stacked.gather(1, order[..., None].expand(-1, -1, hidden))  # (batch, k, hidden)
    latents = latents * (torch.arange(k, device=counts.device) < counts[:, None])[..., None]
    states = hidden_pieces[-1] if last_only else torch.cat(hidden_pieces, 1)
    return LatentForward(states, latents, counts, cache, attention_mask, passes, layer_states)


def think(
    backbone: PreTrainedModel,
    prefix_embeds: torch.Tensor,
    prefix_mask: torch.Tensor,
    num_latents: int,
    project: Project | None = None,
    full_prefix: int = 0,
) -> LatentForward:
    """The prefix pass then ``num_latents`` continuous thoughts for every row (inference helper).

    Args:
        backbone: a Hugging Face causal LM.
        prefix_embeds: (batch, prefix, hidden) left-padded, ending at ``<bot>`` in every row.
        prefix_mask: (batch, prefix) attention mask.
        num_latents: thoughts per row.
        project: as in :func:`latent_forward`.
        full_prefix: as in :func:`latent_forward` (the first columns read bidirectionally).

    Returns:
        A :class:`LatentForward` over ``prefix + num_latents`` columns; ``hidden_states[:, -1]`` is
        the last thought's output, and the cache is ready for the next token (e.g. ``<eot>``,
        fed with :func:`extend`).
    """
    batch, prefix, hidden = prefix_embeds.shape
    embeds = torch.cat([prefix_embeds, prefix_embeds.new_zeros(batch, num_latents, hidden)], 1)
    mask = torch.cat([prefix_mask, prefix_mask.new_ones(batch, num_latents)], 1)
    latent_mask = torch.zeros(batch, prefix + num_latents, dtype=torch.bool, device=embeds.device)
    latent_mask[:, prefix:] = True
    return latent_forward(backbone, embeds, mask, latent_mask, project, full_prefix=full_prefix)


def prefix_unlabelled(latent_mask: torch.Tensor, labels: torch.Tensor) -> bool:
    """Whether no label is predicted from the columns before the last one ahead of the first
    latent column, i.e. whether :func:`latent_forward` may run with ``prefix_states=False`` for a
    next-token loss on ``labels`` (the label at ``t`` is predicted from column ``t - 1``)."""
    columns = latent_mask.any(0).nonzero()
    if not len(columns):
        return False
    first = int(columns[0])
    return not bool((labels[:, 1:first] != -100).any())


def extend(
    backbone: PreTrainedModel, cache: DynamicCache, attention_mask: torch.Tensor, embeds: torch.Tensor,
    last_only: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over new positions (all real) on top of ``cache``.

    Args:
        backbone: the model the cache belongs to.
        cache: updated in place.
        attention_mask: (batch, past) the mask so far.
        embeds: (batch, new, hidden) input embeddings.
        last_only: return only the last new position's state, (batch, 1, hidden), skipping the
            last layer's work for the others (as in :func:`latent_forward`).

    Returns:
        (hidden states (batch, new, hidden), the extended attention mask (batch, past + new)).
    """
    new_mask = attention_mask.new_ones(embeds.shape[:2])
    positions = position_ids(new_mask, past_mask=attention_mask)
    mask = torch.cat([attention_mask, new_mask], 1)
    h, _ = _pass(backbone, embeds, mask, positions, cache, False, last_only=last_only)
    return h, mask


def lm_loss(backbone: PreTrainedModel, hidden_states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, projecting to the vocabulary only where a label is set.

    Args:
        backbone: supplies ``get_output_embeddings()``.
        hidden_states: (batch, seq, hidden) from :func:`latent_forward`.
        labels: (batch, seq) token ids, -100 where no loss; the label at ``t`` is predicted from
            position ``t - 1`` (the Hugging Face convention).

    Returns:
        The mean loss over labelled tokens (float32).
    """
    targets = labels[:, 1:]
    keep = targets != -100
    logits = backbone.get_output_embeddings()(hidden_states[:, :-1][keep])  # (labelled, vocab)
    return F.cross_entropy(logits.float(), targets[keep])

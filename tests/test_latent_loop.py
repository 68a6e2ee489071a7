"""The batched latent loop against a slow recompute-everything reference (STYLE 12)."""

import pytest
import torch

from latentcot.errors import LatentCotError
from latentcot.latent import extend, generate_from_cache, latent_forward, lm_loss, think
from latentcot.latent.loop import attention_mask_4d
from latentcot.models import build_preset

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared 2-core machine

VOCAB = 40
ATOL = 1e-5  # float32; the loop and the reference differ only in summation order


def _model(preset: str = "micro"):
    torch.manual_seed(0)
    return build_preset(preset, VOCAB).eval()


# rows of different question lengths, latent counts and answer lengths
ROWS = [([5, 6, 7, 8, 9], 3, [10, 11, 12, 13]), ([14, 15], 1, [16, 17, 18, 19, 20, 21]), ([22, 23, 24, 25], 0, [26, 27])]
BOT, LATENT, EOT = 1, 2, 3


def _batch(rows=ROWS):
    """Left-pad ``question <bot>`` so <bot> is aligned; right-pad ``<latent>×k <eot> answer``."""
    lefts = [q + [BOT] for q, _, _ in rows]
    rights = [[LATENT] * k + [EOT] + a for _, k, a in rows]
    width_l, width_r = max(map(len, lefts)), max(map(len, rights))
    ids, mask, labels = [], [], []
    for left, right, (_, k, a) in zip(lefts, rights, rows):
        pad_l, pad_r = width_l - len(left), width_r - len(right)
        ids.append([0] * pad_l + left + right + [0] * pad_r)
        mask.append([0] * pad_l + [1] * (len(left) + len(right)) + [0] * pad_r)
        labels.append([-100] * (pad_l + len(left) + k + 1) + a + [-100] * pad_r)
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)


def _reference(model, ids_row, mask_row, project=None):
    """One row alone, unpadded, no cache: recompute the whole prefix for every latent."""
    ids = ids_row[mask_row.bool()]
    embeds = model.get_input_embeddings()(ids)  # (seq, hidden)
    for p in (ids == LATENT).nonzero().flatten().tolist():
        h = model(inputs_embeds=embeds[None, :p], output_hidden_states=True).hidden_states[-1][0, -1]
        embeds = torch.cat([embeds[:p], (project(h) if project else h)[None], embeds[p + 1 :]])
    out = model(inputs_embeds=embeds[None], output_hidden_states=True)
    return out.hidden_states[-1][0], out.logits[0]


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
@pytest.mark.parametrize("with_project", [False, True])
def test_loop_equals_slow_reference(preset, with_project):
    model = _model(preset)
    project = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.LayerNorm(64)) if with_project else None
    ids, mask, labels = _batch()
    embeds = model.get_input_embeddings()(ids)
    out = latent_forward(model, embeds, mask, ids == LATENT, project)
    assert out.latent_counts.tolist() == [3, 1, 0]
    losses, count = [], 0
    for i in range(len(ids)):
        ref_hidden, ref_logits = _reference(model, ids[i], mask[i], project)
        real = mask[i].bool()
        torch.testing.assert_close(out.hidden_states[i][real], ref_hidden, atol=ATOL, rtol=0)
        row_labels = labels[i][real]
        keep = row_labels[1:] != -100
        logits = model.get_output_embeddings()(out.hidden_states[i][real][:-1][keep])
        torch.testing.assert_close(logits, ref_logits[:-1][keep], atol=ATOL, rtol=0)
        losses.append(torch.nn.functional.cross_entropy(ref_logits[:-1][keep], row_labels[1:][keep], reduction="sum"))
        count += int(keep.sum())
    torch.testing.assert_close(lm_loss(model, out.hidden_states, labels), sum(losses) / count, atol=ATOL, rtol=0)


def test_latents_are_the_fed_back_hidden_states():
    model = _model()
    ids, mask, _ = _batch()
    out = latent_forward(model, model.get_input_embeddings()(ids), mask, ids == LATENT)
    bot_col = int((ids[0] == BOT).nonzero())
    # thought j of a row is the output at the position before latent j
    torch.testing.assert_close(out.latents[0], out.hidden_states[0, bot_col : bot_col + 3])
    torch.testing.assert_close(out.latents[1, 0], out.hidden_states[1, bot_col])
    assert out.latents[1, 1:].abs().sum() == 0 and out.latents[2].abs().sum() == 0


def test_each_position_is_processed_once():
    model = _model()
    ids, mask, _ = _batch()
    seen = []
    hook = model.base_model.register_forward_hook(
        lambda mod, args, kwargs, out: seen.append(kwargs["inputs_embeds"].shape[1]), with_kwargs=True
    )
    out = latent_forward(model, model.get_input_embeddings()(ids), mask, ids == LATENT)
    hook.remove()
    assert sum(seen) == ids.shape[1]
    # the prefix, then one pass per latent column, the last one also carrying the tokens after it
    assert len(seen) == out.num_forward_passes == 1 + 3 and seen[-1] == ids.shape[1] - seen[0] - 2


def test_gradients_reach_the_first_latent():
    model = _model()
    ids, mask, labels = _batch()
    thoughts = []

    def capture(h):
        h = h.clone()
        thoughts.append(h)
        return h

    out = latent_forward(model, model.get_input_embeddings()(ids), mask, ids == LATENT, capture)
    (grad,) = torch.autograd.grad(lm_loss(model, out.hidden_states, labels), thoughts[0])
    # row 0 has 3 latents and row 1 one; the first thought feeds both, and the loss sees it only
    # through the chain of later positions
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0
    assert grad[2].abs().sum() == 0  # row 2 has no latent: its first slot is its <eot> token


@torch.no_grad()
def _think_and_generate(model, questions, k, max_new_tokens=6, eos=4, compact=True):
    width = max(len(q) + 1 for q in questions)
    ids = torch.tensor([[0] * (width - len(q) - 1) + q + [BOT] for q in questions])
    mask = torch.tensor([[0] * (width - len(q) - 1) + [1] * (len(q) + 1) for q in questions])
    embed = model.get_input_embeddings()
    thought = think(model, embed(ids), mask, k)
    h, mask = extend(model, thought.cache, thought.attention_mask, embed(torch.full((len(questions), 1), EOT)))
    return generate_from_cache(model, thought.cache, mask, h[:, -1], max_new_tokens, eos, compact=compact)


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_compaction_drops_finished_rows_and_changes_no_token(monkeypatch, preset):
    """Greedy decoding drops rows that have finished from the batch; every row's tokens, count and
    answer states are those of decoding the whole batch to the end."""
    from transformers import DynamicCache

    model = _model(preset)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # wider random weights than the init's, so that greedy tokens vary
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    questions = [[5, 6, 7, 8, 9, 10], [11], [12, 13, 14], [15, 16], [17, 18, 19, 20], [21, 22, 23], [24], [25, 26]]
    free = _think_and_generate(model, questions, k=2, max_new_tokens=14, eos=-1)
    # a stop token that rows reach at different steps (and some never): rows finish one by one
    eos, firsts = None, []
    for token in free.tokens.unique().tolist():
        hits = [(row == token).nonzero().flatten().tolist() for row in free.tokens]
        firsts = [h[0] for h in hits if h]
        if len(set(firsts)) >= 2 and len(firsts) < len(questions):
            eos = token
            break
    assert eos is not None, "no token of this random model stops rows at different steps"
    selected = []
    original = DynamicCache.batch_select_indices
    monkeypatch.setattr(DynamicCache, "batch_select_indices",
                        lambda self, idx: (selected.append(len(idx)), original(self, idx))[1])
    compacted = _think_and_generate(model, questions, k=2, max_new_tokens=14, eos=eos)
    assert selected and selected[-1] < len(questions)  # rows did leave the batch
    monkeypatch.setattr(DynamicCache, "batch_select_indices", original)
    whole = _think_and_generate(model, questions, k=2, max_new_tokens=14, eos=eos, compact=False)
    assert compacted.rows() == whole.rows()
    assert torch.equal(compacted.tokens, whole.tokens) and torch.equal(compacted.num_tokens, whole.num_tokens)
    assert compacted.num_forward_passes == whole.num_forward_passes
    for i, n in enumerate(whole.num_tokens.tolist()):  # the states each written token was chosen from
        torch.testing.assert_close(compacted.hidden_states[i, :n], whole.hidden_states[i, :n], atol=ATOL, rtol=0)
    assert len(set(whole.num_tokens.tolist())) >= 3  # rows stopped at two steps or more, and some never


def test_batched_generation_equals_one_by_one():
    model = _model()
    questions = [[5, 6, 7, 8, 9, 10], [11], [12, 13, 14]]
    batched = _think_and_generate(model, questions, k=2).rows()
    alone = [_think_and_generate(model, [q], k=2).rows()[0] for q in questions]
    assert batched == alone
    assert all(len(r) == 6 for r in batched)  # no eos predicted by this random model


def test_generation_stops_each_row_at_its_eos():
    model = _model()
    questions = [[5, 6, 7], [11, 12]]
    free = _think_and_generate(model, questions, k=1)
    eos = int(free.tokens[0, 1])  # make row 0's second token the stop token
    stopped = _think_and_generate(model, questions, k=1, eos=eos)
    for i in range(2):  # a row stops at its first eos and otherwise runs the full budget
        hits = (free.tokens[i] == eos).nonzero().flatten().tolist()
        assert int(stopped.num_tokens[i]) == (hits[0] + 1 if hits else 6)
        assert stopped.rows()[i] == free.tokens[i, : hits[0] if hits else 6].tolist()
    assert stopped.num_tokens[0] <= 2


def test_sampling_is_reproducible_with_a_seeded_generator():
    model = _model()

    def sample(seed):
        g = torch.Generator().manual_seed(seed)
        ids = torch.tensor([[5, 6, 7, BOT], [0, 11, 12, BOT]])
        mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
        out = think(model, model.get_input_embeddings()(ids), mask, 2)
        return generate_from_cache(model, out.cache, out.attention_mask, out.hidden_states[:, -1], 8, 4, 1.5, 0.9, g)

    assert torch.equal(sample(1).tokens, sample(1).tokens)
    assert not torch.equal(sample(1).tokens, sample(2).tokens)


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_no_query_row_is_fully_masked(monkeypatch, preset):
    """Left padding must not leave a query with nothing to attend to: fused CUDA kernels return
    NaN there, and the NaN reaches real tokens through the cache (seen as loss=nan in bf16)."""
    import torch.nn.functional as F

    seen, original = [], F.scaled_dot_product_attention

    def recording(q, k, v, attn_mask=None, **kw):
        seen.append(attn_mask)
        return original(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    model = _model(preset)
    ids, mask, _ = _batch()
    assert not bool(mask.all())  # the batch really is padded
    out = latent_forward(model, model.get_input_embeddings()(ids), mask, ids == LATENT)
    allowed = [m if m.dtype == torch.bool else m == 0 for m in seen if m is not None]  # boolean or additive
    assert allowed and all(bool(a.any(-1).all()) for a in allowed)
    assert torch.isfinite(out.hidden_states).all()


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_bidirectional_prefix_equals_a_prefix_lm_reference(preset):
    """With ``full_prefix=P`` the first P columns see each other both ways (column 0 reads column
    P-1), the rest stays causal, and the cached loop equals one uncached pass of the fed sequence
    under the prefix-LM mask."""
    model, P, T = _model(preset), 5, 3
    torch.manual_seed(1)
    prefix = torch.randn(2, P + 1, 64)  # P cells, then <bot>
    mask = torch.ones(2, P + 1, dtype=torch.long)
    out = think(model, prefix, mask, T, full_prefix=P)
    seq = torch.cat([prefix, out.latents], 1)
    full_mask = attention_mask_4d(model, torch.ones(2, P + 1 + T, dtype=torch.long), P + 1 + T, seq.dtype, P)
    reference = model.base_model(inputs_embeds=seq, attention_mask=full_mask).last_hidden_state
    torch.testing.assert_close(out.hidden_states, reference, atol=ATOL, rtol=0)
    changed = prefix.clone()
    changed[:, P - 1] += torch.randn(64)  # (a constant shift would vanish in the first LayerNorm)
    moved = think(model, changed, mask, T, full_prefix=P).hidden_states[:, 0]
    assert (moved - out.hidden_states[:, 0]).abs().max() > 1e-3  # column 0 reads column P-1
    causal = think(model, prefix, mask, T).hidden_states[:, 0]
    torch.testing.assert_close(think(model, changed, mask, T).hidden_states[:, 0], causal)  # causal: it cannot
    with pytest.raises(LatentCotError, match="past the first latent"):
        think(model, prefix, mask, T, full_prefix=P + 2)


def test_sdpa_takes_the_additive_mask_with_the_same_bits_as_the_boolean_one():
    """The loop hands sdpa an additive -inf/0 mask made once per pass instead of the boolean
    pattern (which sdpa would convert in every layer): a padded batch's hidden states are
    bit-identical either way."""
    model = _model()
    assert model.config._attn_implementation == "sdpa"
    ids, mask, _ = _batch()
    embeds = model.get_input_embeddings()(ids)
    additive = attention_mask_4d(model, mask, ids.shape[1], embeds.dtype)
    assert additive.dtype == embeds.dtype and set(additive.unique().tolist()) == {0.0, float("-inf")}
    pattern = additive == 0  # the boolean mask sdpa was given before
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        a = model.base_model(inputs_embeds=embeds, attention_mask=additive, position_ids=positions).last_hidden_state
        b = model.base_model(inputs_embeds=embeds, attention_mask=pattern, position_ids=positions).last_hidden_state
    assert torch.equal(a, b)
    # a pass of one position (decoding) takes a shortcut to the same mask, padding query included
    for q_len in (1, 2):
        mask_one = mask.clone()
        mask_one[2, -1] = 0  # a padding column as the new position: it still sees itself
        got = attention_mask_4d(model, mask_one, q_len, embeds.dtype)
        total = mask.shape[1]
        keys = torch.arange(total)
        queries = keys[total - q_len :, None]
        allowed = ((keys <= queries)[None] & mask_one.bool()[:, None, :]) | (keys == queries)[None]
        assert torch.equal(got, torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))[:, None])


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_the_roomy_cache_generates_the_same_bits_as_transformers_cache(monkeypatch, preset):
    """Inference writes keys and values into preallocated room instead of concatenating: a padded
    batch's thoughts, hidden states and 40 greedy tokens (past the first room, so it regrows) are
    bit-identical to transformers' DynamicCache."""
    from transformers import DynamicCache

    import latentcot.latent.loop as loop
    from latentcot.latent.cache import RoomyLayer

    model = _model(preset)
    assert all(type(layer) is RoomyLayer for layer in loop.new_cache(model.config).layers)
    questions = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    roomy = _think_and_generate(model, questions, 3, max_new_tokens=80, eos=-1)
    monkeypatch.setattr(loop, "new_cache", lambda config: DynamicCache(config=config))
    plain = _think_and_generate(model, questions, 3, max_new_tokens=80, eos=-1)
    assert roomy.tokens.shape[1] == 80 and torch.equal(roomy.tokens, plain.tokens)
    assert torch.equal(roomy.hidden_states, plain.hidden_states)


def test_the_roomy_cache_follows_crop_select_and_autograd():
    """Crop keeps writing into the room at the new length; ``batch_select_indices`` (a new
    tensor) is adopted into fresh room; under autograd it concatenates like DynamicLayer, so the
    graph through the cache stays intact."""
    from transformers.cache_utils import DynamicLayer

    from latentcot.latent.cache import RoomyLayer

    torch.manual_seed(0)
    steps = [torch.randn(3, 2, n, 4) for n in (5, 1, 1, 2)]
    roomy, plain = RoomyLayer(), DynamicLayer()
    with torch.no_grad():
        for i, s in enumerate(steps):
            assert all(torch.equal(a, b) for a, b in zip(roomy.update(s, -s), plain.update(s, -s)))
            if i == 1:
                roomy.crop(-2), plain.crop(-2)
        roomy.batch_select_indices(torch.tensor([2, 0])), plain.batch_select_indices(torch.tensor([2, 0]))
        more = torch.randn(2, 2, 3, 4)
        k, v = roomy.update(more, more)
        assert torch.equal(k, plain.update(more, more)[0]) and k.shape == (2, 2, 10, 4)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    trained = RoomyLayer()
    keys, _ = trained.update(x * 2, x)
    keys2, _ = trained.update(x * 3, x)
    keys2.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 5.0))  # both updates reach x through the cache


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_last_only_skips_the_last_layer_elsewhere_and_keeps_cache_and_answers(preset):
    """``last_only`` passes (the prompt pass at inference): the last layer runs its attention and
    MLP for the last position alone; the cached keys and values, the last state and the thoughts
    equal the full pass's to float precision, 30 greedy tokens are the same, and the
    model's layer is restored after each pass."""
    from latentcot.latent.last_position import last_position_only

    model = _model(preset)
    layers = model.base_model.h if preset == "micro" else model.base_model.layers
    original = layers[-1]
    ids, mask, _ = _batch()
    embeds = model.get_input_embeddings()(ids)
    calls = []
    hook = original.mlp.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[1]))
    with torch.no_grad():
        full = latent_forward(model, embeds, mask, ids == LATENT)
        n_full = list(calls)
        calls.clear()
        last = latent_forward(model, embeds, mask, ids == LATENT, last_only=True)
    hook.remove()
    first = int((ids == LATENT).any(0).nonzero()[0])
    assert n_full[0] == first and calls[0] == 1  # the prompt pass's last-layer MLP saw one position
    assert layers[-1] is original
    assert last.hidden_states.shape == (3, 1, 64)
    torch.testing.assert_close(last.hidden_states[:, -1], full.hidden_states[:, -1], atol=ATOL, rtol=0)
    torch.testing.assert_close(last.latents, full.latents, atol=ATOL, rtol=0)
    for a, b in zip(full.cache.layers, last.cache.layers):
        assert a.keys.shape == b.keys.shape
        torch.testing.assert_close(a.keys, b.keys, atol=ATOL, rtol=0)
        torch.testing.assert_close(a.values, b.values, atol=ATOL, rtol=0)
    gens = [generate_from_cache(model, out.cache, out.attention_mask, out.hidden_states[:, -1], 30, -1)
            for out in (full, last)]
    assert torch.equal(gens[0].tokens, gens[1].tokens)
    with last_position_only(model) as applied:
        assert applied and layers[-1] is not original
    assert layers[-1] is original


def test_last_only_leaves_unsupported_layers_alone():
    """A decoder layer it has no key writer for (Qwen2), or flash attention's 2D masks: the pass
    runs unchanged and says so."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from latentcot.latent.last_position import last_position_only

    qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2)).eval()
    with last_position_only(qwen) as applied:
        assert not applied
    model = _model()
    model.config._attn_implementation = "flash_attention_2"
    with last_position_only(model) as applied:
        assert not applied
    ids, mask, _ = _batch()
    with torch.no_grad():
        full = latent_forward(qwen, qwen.get_input_embeddings()(ids), mask, ids == LATENT)
        last = latent_forward(qwen, qwen.get_input_embeddings()(ids), mask, ids == LATENT, last_only=True)
    assert torch.equal(last.hidden_states[:, -1], full.hidden_states[:, -1])
    with pytest.raises(LatentCotError, match="last_only"):
        latent_forward(qwen, qwen.get_input_embeddings()(ids), mask, ids == LATENT, all_layers=True, last_only=True)


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_training_without_prefix_states_gives_the_same_loss_and_gradients(preset):
    """Labels after the thoughts only (Coconut, SIM-CoT): the prompt pass may skip the last layer
    everywhere but its last column; the loss and every parameter's gradient equal the full pass's
    to float precision, and a label inside the prompt turns the skip off."""
    from latentcot.latent.loop import prefix_unlabelled

    ids, mask, labels = _batch()
    latent_mask = ids == LATENT
    assert prefix_unlabelled(latent_mask, labels)
    results = []
    for prefix_states in (True, False):
        model = _model(preset).train()
        out = latent_forward(model, model.get_input_embeddings()(ids), mask, latent_mask, prefix_states=prefix_states)
        loss = lm_loss(model, out.hidden_states, labels)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, out.hidden_states))
    (loss_full, grads_full, h_full), (loss_skip, grads_skip, h_skip) = results
    torch.testing.assert_close(loss_skip, loss_full, atol=ATOL, rtol=0)
    for name, grad in grads_full.items():
        torch.testing.assert_close(grads_skip[name], grad, atol=ATOL, rtol=1e-4, msg=name)
    first = int(latent_mask.any(0).nonzero()[0])
    assert h_skip.shape == h_full.shape and not h_skip[:, : first - 1].any()  # nothing computed there
    labels[1, 2] = 7  # a label inside the prompt: the prompt's states are needed again
    assert not prefix_unlabelled(latent_mask, labels)
    assert not prefix_unlabelled(torch.zeros_like(latent_mask), labels)  # no thoughts, no prompt pass of its own

"""The contract every language-model method passes (STYLE 11), and Coconut's curriculum."""

import random

import pytest
import torch

from latentcot.config import from_dict, to_dict
from latentcot.data.record import ReasoningExample
from latentcot.data.tokenizer import train_word_tokenizer
from latentcot.errors import LatentCotError
from latentcot.methods import METHODS, build_method, method_config
from latentcot.methods.sequences import ANSWER_SEPARATOR, encode, extract_answer
from latentcot.models import build_preset

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared 2-core machine

WORDS = ["lempus", "zumpus", "wumpus", "yumpus", "gorpus", "numpus", "rompus", "tumpus"]
NAMES = ["Tom", "Sally", "Max", "Rex"]


def _task(n: int = 8, seed: int = 0) -> list[ReasoningExample]:
    """ProsQA-like chains: a name, two hops, and which of two concepts it belongs to."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c, d = rng.sample(WORDS, 4)
        name = NAMES[i % len(NAMES)]
        steps = [f"{name} is a {a}.", f"Every {a} is a {b}.", f"Every {b} is a {c}."]
        out.append(ReasoningExample(f"Is {name} a {c} or {d}?", steps, f"{name} is a {c}."))
    return out


# small options so the tiny task exercises every code path (Coconut stage 1 keeps latents)
OPTIONS = {
    "nocot": {},
    "cot": {"max_steps": 2},
    "pause": {"num_pause": 2},
    "coconut": {"c_thought": 2, "max_latent_stage": 2, "epochs_per_stage": 1},
    "codi": {"num_latents": 2},
    "simcot": {"base": "coconut", "base_options": {"c_thought": 2, "max_latent_stage": 2, "epochs_per_stage": 1}},
}
STAGE = {"nocot": 0, "cot": 0, "pause": 0, "coconut": 1}
# the methods that write one token layout; codi and simcot have their own contract tests
# (tests/test_codi.py, tests/test_simcot.py) since their batches hold two roles / step targets
LAYOUT_METHODS = list(STAGE)


def _method(name, **options):
    examples = _task()
    tokenizer = train_word_tokenizer(examples)
    torch.manual_seed(0)
    backbone = build_preset("micro", len(tokenizer))
    config = method_config(name, {**OPTIONS[name], **options}, where=f"test: {name}")
    return build_method(name, config, backbone, tokenizer), examples


@pytest.mark.parametrize("name", list(METHODS))
def test_config_round_trip_and_bad_key(name):
    config = method_config(name, OPTIONS[name])
    assert from_dict(type(config), to_dict(config)) == config
    with pytest.raises(LatentCotError, match="unknown key 'bogus'"):
        method_config(name, {"bogus": 1}, where="run.yaml: method")


def test_unknown_method_is_named():
    with pytest.raises(LatentCotError, match="unknown method 'codi2'"):
        method_config("codi2", {})


@pytest.mark.parametrize("name", LAYOUT_METHODS)
def test_contract_shapes_loss_and_every_parameter_moves(name):
    method, examples = _method(name)
    batch = method.collate(examples[:4], stage=STAGE[name])
    # Coconut also says which stage each row trains on (its uniform_prob lets rows draw their own)
    assert set(batch) - {"row_stage"} == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["labels"].shape
    assert batch["input_ids"].shape[0] == 4
    if "row_stage" in batch:
        assert batch["row_stage"].tolist() == [STAGE[name]] * 4
    out = method(batch)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.logs["loss"] == pytest.approx(float(out.loss.detach()))
    before = {n: p.detach().clone() for n, p in method.named_parameters() if p.requires_grad}
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    out.loss.backward()
    optimizer.step()
    unmoved = [n for n, p in method.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    assert not unmoved


@pytest.mark.parametrize("name", LAYOUT_METHODS)
def test_loss_falls_on_a_tiny_fixed_task(name):
    method, examples = _method(name)
    batch = method.collate(examples, stage=STAGE[name])
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = method(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", LAYOUT_METHODS)
def test_reason_is_batched_exactly(name):
    method, examples = _method(name)
    method.eval()
    questions = [ex.question for ex in examples[:3]] + ["Is Tom a lempus?"]
    batched = method.reason(questions, max_new_tokens=5)
    assert len(batched.texts) == len(batched.answers) == len(batched.num_generated_tokens) == 4
    alone = [method.reason([q], max_new_tokens=5).texts[0] for q in questions]
    assert batched.texts == alone
    assert (batched.latents is not None) == (name == "coconut")


@pytest.mark.parametrize("name", ["cot", "coconut"])
def test_length_bucketing_changes_no_answer(name):
    """evaluate() batches questions sorted by length and returns them in the given order: the
    same predictions, text for text, as batching them as given."""
    from latentcot.eval.evaluate import evaluate, length_order

    method, examples = _method(name)
    mixed = [*examples, ReasoningExample("Is Rex a gorpus?", [], "Rex is a gorpus."),
             ReasoningExample("Is Sally a lempus or a rompus or a tumpus?", [], "Sally is a lempus.")]
    order = length_order([ex.question for ex in mixed], method)
    assert order != list(range(len(mixed))) and sorted(order) == list(range(len(mixed)))
    plain = evaluate(method, mixed, "prosqa", batch_size=3, max_new_tokens=6, bucket=False)
    bucketed = evaluate(method, mixed, "prosqa", batch_size=3, max_new_tokens=6)
    assert bucketed.predictions == plain.predictions
    assert [p["question"] for p in bucketed.predictions] == [ex.question for ex in mixed]
    assert bucketed.latents_per_question == (4 if name == "coconut" else 0)  # c_thought 2 x 2 stages


def test_a_trained_coconut_answers_correctly():
    method, examples = _method("coconut")
    train = examples[:4]
    batch = method.collate(train, stage=method.num_stages() - 1)  # all steps replaced by 4 latents
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    for _ in range(120):
        loss = method(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    method.eval()
    assert float(loss.detach()) < 0.05
    out = method.reason([ex.question for ex in train], max_new_tokens=12)
    assert out.answers == [ex.answer for ex in train]
    assert all(text.startswith(ANSWER_SEPARATOR) for text in out.texts)


def test_extract_answer():
    assert extract_answer("Tom is a lempus. ### Tom is a wumpus.") == "Tom is a wumpus."
    assert extract_answer("no separator ") == "no separator"


def test_encode_memo_is_exact_and_follows_added_tokens():
    tokenizer = train_word_tokenizer(_task())
    text = "1 + 2 = 3.\n<new> ###"
    fresh = tokenizer(text, add_special_tokens=False).input_ids
    first = encode(tokenizer, text)
    assert first == fresh and encode(tokenizer, text) == fresh
    first.append(-1)  # each call returns its own list: the memo cannot be changed through it
    assert encode(tokenizer, text) == fresh
    tokenizer.add_tokens(["<new>"])  # the same text now splits differently; no stale ids
    assert encode(tokenizer, text) == tokenizer(text, add_special_tokens=False).input_ids != fresh


def test_coconut_curriculum_layout():
    method, _ = _method("coconut", pad_latent_to_max=False)  # c=2, max stage 2
    assert method.num_stages() == 4
    assert [method.stage_for_epoch(e) for e in range(6)] == [0, 1, 2, 3, 3, 3]
    assert method.layout(num_steps=3, stage=0) == (0, 0)
    assert method.layout(num_steps=3, stage=2) == (2, 4)
    assert method.layout(num_steps=3, stage=3) == (3, 4)  # final: every step replaced
    assert method.layout(num_steps=1, stage=3) == (1, 2)  # fewer steps: fewer latents
    padded, _ = _method("coconut", pad_latent_to_max=True)
    assert padded.layout(num_steps=1, stage=3) == (1, 4)
    flat, _ = _method("coconut", no_curriculum=True)
    assert flat.num_stages() == 1 and flat.layout(num_steps=3, stage=0) == (3, 4)


def test_coconut_stage_epochs_lay_out_uneven_stages():
    long_first, _ = _method("coconut", stage_epochs=[3, 2])  # 3 epochs in stage 0, 2 in each later one
    assert [long_first.stage_for_epoch(e) for e in range(10)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    from_one, _ = _method("coconut", stage_epochs=[2, 1], start_stage=1)  # counted from start_stage
    assert [from_one.stage_for_epoch(e) for e in range(5)] == [1, 1, 2, 3, 3]
    with pytest.raises(LatentCotError, match="stage_epochs"):
        _method("coconut", stage_epochs=[2, 0])


def test_coconut_rows_align_bot_and_label_only_after_eot():
    method, examples = _method("coconut", uniform_prob=1.0)  # every row draws its own stage
    torch.manual_seed(3)
    batch = method.collate(examples, stage=0)
    ids, labels, t = batch["input_ids"], batch["labels"], method.tokens
    bot_cols = (ids == t.bot).nonzero()[:, 1]
    assert bot_cols.unique().numel() == 1  # <bot> in one column for the whole batch
    counts = (ids == t.latent).sum(1)
    assert counts.unique().numel() > 1  # rows with different numbers of latents in one batch
    for row, lab in zip(ids, labels):
        eot = int((row == t.eot).nonzero())
        assert (lab[: eot + 1] == -100).all() and (lab[eot + 1 :] != -100).any()
        assert ((row == t.latent).nonzero().flatten() == torch.arange(int(bot_cols[0]) + 1, eot)).all()
    assert torch.isfinite(method(batch).loss)


def _scaled_thoughts_are_at_embedding_norm(name):
    """Builds ``name`` with raw and with ``latent_scale: embedding`` thoughts (same initial weights)
    and checks the scaled thoughts' norm is the token embeddings' mean norm, the raw ones far above."""
    plain, examples = _method(name)
    scaled, _ = _method(name, latent_scale="embedding")
    questions = [ex.question for ex in examples[:3]]
    target = float(scaled.backbone.get_input_embeddings().weight.detach().norm(dim=-1).mean())
    scaled_norms = scaled.reason(questions, max_new_tokens=4).latents.norm(dim=-1)
    plain_norms = plain.reason(questions, max_new_tokens=4).latents.norm(dim=-1)
    assert torch.allclose(scaled_norms, torch.full_like(scaled_norms, target), rtol=1e-4)
    # a from-scratch model's last hidden states, and CODI's LayerNorm-ed projection (norm ~sqrt(hidden)),
    # are far larger than the embeddings
    assert float(plain_norms.min()) > 5 * target
    return plain, scaled, examples


def test_codi_latent_scale_rescales_projected_thoughts_to_token_embedding_norm():
    plain, scaled, examples = _scaled_thoughts_are_at_embedding_norm("codi")
    # the teacher rows are untouched (no latents), the student's loss changes, gradients reach the projection
    batch = scaled.collate(examples)
    out = scaled(batch)
    assert out.logs["ce_teacher"] == pytest.approx(plain(batch).logs["ce_teacher"], rel=1e-5)
    assert abs(out.logs["ce_student"] - plain(batch).logs["ce_student"]) > 1e-4
    out.loss.backward()
    assert scaled.projection[0].weight.grad is not None and float(scaled.projection[0].weight.grad.abs().sum()) > 0


def test_coconut_n_latents_at_inference():
    method, examples = _method("coconut")
    method.eval()
    for n in (0, 3):
        out = method.reason([ex.question for ex in examples[:2]], max_new_tokens=4, n_latents=n)
        if n:
            assert out.latents.shape == (2, n, method.backbone.config.hidden_size)
        # prompt pass + one pass per latent (<eot> rides with the last), then one per token after the first
        steps = max(out.num_generated_tokens)
        assert out.num_forward_passes == 1 + n + steps - 1


def test_coconut_latent_scale_feeds_thoughts_back_at_token_embedding_norm():
    _, scaled, examples = _scaled_thoughts_are_at_embedding_norm("coconut")
    # the scaled thoughts still carry gradients into the training loss
    batch = scaled.collate(examples, stage=1)
    scaled(batch).loss.backward()
    assert scaled.backbone.get_input_embeddings().weight.grad is not None

"""CODI (Shen et al. 2025, arXiv:2502.21074): the method contract, the distillation loss and the
distillation position."""

import pytest
import torch
from test_methods import _task

from latentcot.config import from_dict, to_dict
from latentcot.data.tokenizer import train_word_tokenizer
from latentcot.errors import LatentCotError
from latentcot.methods import build_method, method_config
from latentcot.methods.codi import distillation_loss
from latentcot.methods.sequences import steps_ids
from latentcot.models import build_preset

torch.set_num_threads(1)


def _codi(**options):
    examples = _task()
    tokenizer = train_word_tokenizer(examples)
    torch.manual_seed(0)
    config = method_config("codi", {"num_latents": 3, **options}, where="test: codi")
    return build_method("codi", config, build_preset("micro", len(tokenizer)), tokenizer), examples


def test_config_round_trip_and_bad_values():
    config = method_config("codi", {"num_latents": 4, "distill_loss": "mse", "gamma": 2.0})
    assert from_dict(type(config), to_dict(config)) == config
    with pytest.raises(LatentCotError, match="num_latents"):
        method_config("codi", {"num_latents": 0})
    with pytest.raises(LatentCotError, match="distill_loss"):
        method_config("codi", {"distill_loss": "cosine"})


@pytest.mark.parametrize("kind", ["l1", "smooth_l1", "mse"])
def test_distillation_loss_zero_iff_student_equals_teacher(kind):
    torch.manual_seed(0)
    teacher = [torch.randn(4, 16) * s for s in (1.0, 5.0, 0.1)]
    assert float(distillation_loss([t.clone() for t in teacher], teacher, kind)) == 0.0
    student = [t + 0.1 * torch.randn_like(t) for t in teacher]
    assert float(distillation_loss(student, teacher, kind)) > 0.0
    # normalised by the teacher's std: scaling both sides by 10 leaves the L1 distance unchanged
    if kind == "l1":
        torch.testing.assert_close(
            distillation_loss([10 * s for s in student], [10 * t for t in teacher], kind),
            distillation_loss(student, teacher, kind),
        )


def test_distillation_position_predicts_the_first_answer_token():
    method, examples = _codi(drop_last_step=True)
    batch = method.collate(examples[:4])
    ids, at, n = batch["input_ids"], batch["distill_index"], 4
    rows = torch.arange(2 * n)
    sep = method.tokenizer("###", add_special_tokens=False).input_ids
    assert (ids[rows, at] == sep[-1]).all()  # the last separator token
    assert (batch["labels"][rows, at + 1] == ids[rows, at + 1]).all()  # next: the answer, labelled
    assert torch.equal(ids[:n].gather(1, (at[:n] + 1)[:, None]), ids[n:].gather(1, (at[n:] + 1)[:, None]))
    full, _ = _codi()
    kept = batch["attention_mask"][:n].sum(1)
    everything = full.collate(examples[:4])["attention_mask"][:n].sum(1)
    last_step = [len(steps_ids(method.tokenizer, ex.steps[-1:])) for ex in examples[:4]]
    assert (everything - kept).tolist() == last_step  # the teacher lost exactly its last step


def test_contract_loss_terms_and_every_parameter_moves():
    method, examples = _codi()
    out = method(method.collate(examples[:4]))
    assert torch.isfinite(out.loss) and out.logs["distill"] > 0
    assert out.logs["loss"] == pytest.approx(
        out.logs["ce_teacher"] + out.logs["ce_student"] + out.logs["distill"], rel=1e-5
    )
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    out.loss.backward()
    torch.optim.Adam(method.parameters(), lr=1e-3).step()
    assert not [n for n, p in method.named_parameters() if torch.equal(p, before[n])]


def test_loss_falls_and_student_answers():
    method, examples = _codi()
    train = examples[:4]
    batch = method.collate(train)
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        out = method(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.3 * losses[0]
    method.eval()
    result = method.reason([ex.question for ex in train], max_new_tokens=12)
    assert result.answers == [ex.answer for ex in train]
    assert result.latents.shape == (4, 3, 64)


def test_reason_is_batched_exactly():
    method, examples = _codi()
    method.eval()
    questions = [ex.question for ex in examples[:3]] + ["Is Tom a lempus?"]
    batched = method.reason(questions, max_new_tokens=5)
    assert batched.texts == [method.reason([q], max_new_tokens=5).texts[0] for q in questions]


def test_lora_needs_peft():
    pytest.importorskip("peft", reason="peft is an optional extra (LoRA)")
    method, examples = _codi(lora_rank=4)
    trainable = [n for n, p in method.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n or n.startswith("projection") for n in trainable)
    assert torch.isfinite(method(method.collate(examples[:2])).loss)

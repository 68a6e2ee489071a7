"""The trainer on a stand-in method (a micro GPT-2 counting task): loss falls, accumulation
invariance, exact no-pickle checkpoints, exact resume, pruning, atomic writes, curriculum."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from latentcot.config import from_dict
from latentcot.errors import LatentCotError
from latentcot.methods.base import LossOutput
from latentcot.train import checkpoint as ckpt
from latentcot.train.config import REFERENCE_LOOP, TrainConfig
from latentcot.train.trainer import Trainer, epoch_batches, learning_rate, lr_factor, param_groups

VOCAB = 24
torch.set_num_threads(1)


@dataclass
class TinyConfig:
    stages: int = 1
    dropout: float = 0.0
    epochs_per_stage: int = 1
    reset_optimizer_per_stage: bool = False


class TinyMethod(nn.Module):
    """Implements the method protocol over integer token lists: next-token loss of a micro
    GPT-2, a learned output bias outside the backbone and an auxiliary step decoder."""

    name = "tiny"

    def __init__(self, config: TinyConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config or TinyConfig()
        torch.manual_seed(seed)
        p = self.config.dropout
        gpt = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=VOCAB, n_positions=16,
                         resid_pdrop=p, embd_pdrop=p, attn_pdrop=p, bos_token_id=0, eos_token_id=0)
        self.backbone = GPT2LMHeadModel(gpt)
        self.output_bias = nn.Parameter(torch.zeros(VOCAB))
        self.step_decoder = nn.Linear(64, VOCAB)
        vocab = {str(i): i for i in range(VOCAB)}
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="0")))
        self.seen: list[tuple[int, ...]] = []  # every example collated, in order
        self.stages_seen: list[int] = []
        self.crash_at_call: int | None = None
        self.calls = 0

    def collate(self, examples, stage=0):
        self.seen += [tuple(e) for e in examples]
        self.stages_seen.append(stage)
        return {"input_ids": torch.tensor(examples)}

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.crash_at_call:
            raise RuntimeError("simulated crash")
        ids = batch["input_ids"]
        out = self.backbone(input_ids=ids, output_hidden_states=True)
        logits = out.logits[:, :-1] + self.output_bias
        lm = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        aux = F.cross_entropy(self.step_decoder(out.hidden_states[-1][:, :-1]).reshape(-1, VOCAB),
                              ids[:, 1:].reshape(-1))
        return LossOutput(lm + 0.1 * aux, {"lm_loss": lm.item()})

    def num_stages(self):
        return self.config.stages

    def stage_for_epoch(self, epoch):
        return min(epoch // self.config.epochs_per_stage, self.config.stages - 1)

    @property
    def reset_optimizer_per_stage(self):
        return self.config.reset_optimizer_per_stage


def counting_examples(n: int = 40, length: int = 8) -> list[list[int]]:
    """Sequences that count up from a start token: the next token is always learnable."""
    return [[(i + j) % VOCAB for j in range(length)] for i in range(n)]


def make_cfg(**kw) -> TrainConfig:
    base = dict(lr=3e-3, batch_size=4, log_every=1, bf16=False, keep_last=0, seed=0)
    return TrainConfig(**{**base, **kw})


def weights(method: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.state_dict().items()}


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_run_folder_is_complete(tmp_path):
    method = TinyMethod()
    result = Trainer(method, counting_examples(), make_cfg(epochs=6), tmp_path).fit()
    rows = [r for r in read_metrics(tmp_path) if "loss" in r]
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert result["step"] == 60 and result["effective_batch_size"] == 4
    assert "lm_loss" in rows[0] and rows[0]["lr"] == pytest.approx(3e-3)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "config.json").read_text())["method"] == "tiny"
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000060"


def test_grad_accumulation_4x1_equals_1x4(tmp_path):
    runs = {}
    for batch_size, accum in [(4, 1), (1, 4)]:
        method = TinyMethod()
        cfg = make_cfg(batch_size=batch_size, grad_accum=accum, max_steps=6, clip_grad=0.0)
        Trainer(method, counting_examples(), cfg, tmp_path / f"b{batch_size}").fit()
        runs[batch_size] = weights(method)
    for key, value in runs[4].items():
        if key.endswith("attn.c_attn.bias"):
            # the key bias has an exactly zero gradient (softmax ignores a shift shared by all
            # keys), so Adam turns round-off into full-size steps there: compare q and v only
            keep = torch.ones_like(value, dtype=torch.bool)
            keep[64:128] = False
            value, runs[1][key] = value[keep], runs[1][key][keep]
        torch.testing.assert_close(runs[1][key], value, atol=2e-5, rtol=1e-4, msg=key)
    assert not torch.equal(runs[4]["output_bias"], torch.zeros(VOCAB))  # training moved it


def test_checkpoint_round_trip_is_exact_and_never_unpickles(tmp_path, monkeypatch):
    method = TinyMethod()
    trainer = Trainer(method, counting_examples(), make_cfg(max_steps=3), tmp_path)
    trainer.fit()
    path = ckpt.latest_checkpoint(tmp_path)
    files = {p.name for p in path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "method.safetensors",
            "step_decoder.safetensors", "latentcot.json", "trainer_state.json",
            "trainer_state.safetensors"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))]

    def refuse(*args, **kwargs):
        raise AssertionError("pickle-based loading was used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    fresh = TinyMethod(seed=1)
    info = ckpt.load_checkpoint(path, fresh)
    assert info["method"] == "tiny" and info["step"] == 3 and info["config"]["train"]["max_steps"] == 3
    for key, value in weights(method).items():
        assert torch.equal(fresh.state_dict()[key], value), key
    state = ckpt.load_trainer_state(path)
    saved = trainer.optimizer.state_dict()
    assert state["optimizer"]["param_groups"] == saved["param_groups"]
    for index, moments in saved["state"].items():
        for name, tensor in moments.items():
            assert torch.equal(state["optimizer"]["state"][index][name], tensor)
    assert state["scheduler"] == trainer.scheduler.state_dict()
    # the step decoder is optional at load time (users drop it for inference)
    (path / "step_decoder.safetensors").unlink()
    ckpt.load_checkpoint(path, TinyMethod(seed=2))
    with pytest.raises(LatentCotError, match="not a latentcot checkpoint"):
        ckpt.load_checkpoint(tmp_path, fresh)


@pytest.mark.parametrize("crash_in_step", [8, 12])  # resume mid-epoch / at a stage boundary
def test_interrupted_run_resumes_to_identical_weights(tmp_path, crash_in_step):
    # dropout on, warm-up + cosine, a curriculum with optimizer reset: everything must resume
    cfg = make_cfg(batch_size=2, grad_accum=2, max_steps=16, save_every=5, warmup_steps=3, schedule="cosine",
                   log_every=4)  # log windows that straddle the checkpoints
    config = TinyConfig(stages=2, dropout=0.1, reset_optimizer_per_stage=True)
    reference = TinyMethod(config)
    Trainer(reference, counting_examples(), cfg, tmp_path / "reference").fit()

    crashed = TinyMethod(config)
    crashed.crash_at_call = (crash_in_step - 1) * cfg.grad_accum + 2  # second micro-batch
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(crashed, counting_examples(), cfg, tmp_path / "run").fit()
    assert ckpt.latest_checkpoint(tmp_path / "run").name == f"step-{(crash_in_step // 5) * 5:06d}"

    torch.manual_seed(1234)  # a new process: nothing carried over but the checkpoint
    resumed = TinyMethod(config, seed=7)
    result = Trainer(resumed, counting_examples(), cfg, tmp_path / "run").fit(resume=True)
    assert result["step"] == 16
    for key, value in weights(reference).items():
        assert torch.equal(resumed.state_dict()[key], value), key
    # the resumed run saw exactly the examples the reference saw after the checkpoint
    assert resumed.seen == reference.seen[-len(resumed.seen):]
    # each step logged once, with the same window means as the uninterrupted run (the checkpoint
    # keeps the part of the window before it)
    def logged(run: str) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "examples_per_s"} for r in read_metrics(tmp_path / run)]

    assert [r["step"] for r in logged("run")] == [4, 8, 12, 16]
    assert logged("run") == logged("reference")


def test_keep_last_prunes_old_checkpoints(tmp_path):
    cfg = make_cfg(max_steps=5, save_every=1, keep_last=2)
    Trainer(TinyMethod(), counting_examples(), cfg, tmp_path).fit()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000004", "step-000005"]


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    method = TinyMethod()
    first = ckpt.save_checkpoint(tmp_path, method, {"step": 1}, {"x": torch.ones(2)})
    before = weights(method)
    with torch.no_grad():
        method.output_bias.add_(1.0)
    calls = []

    def failing_save_file(tensors, filename, *args, **kwargs):
        calls.append(filename)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, method, {"step": 2}, {"x": torch.ones(2)}, keep_last=1)
    assert calls  # the failure happened mid-write, after the backbone was written
    assert ckpt.list_checkpoints(tmp_path) == [first]
    assert not list((tmp_path / ckpt.CHECKPOINTS).glob(".tmp-*"))
    # a process killed mid-write leaves a temporary folder: it is never taken for a checkpoint
    (tmp_path / ckpt.CHECKPOINTS / ".tmp-step-000003-99").mkdir()
    assert ckpt.latest_checkpoint(tmp_path) == first
    restored = TinyMethod(seed=3)
    ckpt.load_checkpoint(first, restored)
    for key, value in before.items():
        assert torch.equal(restored.state_dict()[key], value), key


def test_curriculum_stage_advances_and_optimizer_resets(tmp_path):
    for reset in (True, False):
        method = TinyMethod(TinyConfig(stages=3, epochs_per_stage=2, reset_optimizer_per_stage=reset))
        cfg = make_cfg(epochs=5)
        trainer = Trainer(method, counting_examples(), cfg, tmp_path / str(reset))
        trainer.fit()
        per_epoch = trainer.steps_per_epoch
        assert method.stages_seen == [0] * 2 * per_epoch + [1] * 2 * per_epoch + [2] * per_epoch
        adam_steps = {float(s["step"]) for s in trainer.optimizer.state.values()}
        # with reset, the moments only count the steps since stage 2 began (epoch 4)
        assert adam_steps == {float(per_epoch if reset else 5 * per_epoch)}


def test_learning_rate_schedules():
    cfg = make_cfg(warmup_steps=4, schedule="cosine", max_steps=14)
    assert [lr_factor(s, cfg, 14) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(9, cfg, 14) == pytest.approx(0.5)
    assert lr_factor(14, cfg, 14) == pytest.approx(0.0)
    linear = make_cfg(schedule="linear", max_steps=10)
    assert lr_factor(5, linear, 10) == pytest.approx(0.5)
    wsd = make_cfg(schedule="wsd", decay_fraction=0.25, warmup_steps=2, max_steps=100)
    factors = [lr_factor(s, wsd, 100) for s in range(101)]
    assert factors[:2] == [0.5, 1.0] and set(factors[2:76]) == {1.0}  # warm-up, then stable to 75%
    assert factors[80] == pytest.approx(0.8) and factors[100] == 0.0  # linear to 0 over the last quarter
    assert all(a > b for a, b in zip(factors[75:], factors[76:]))
    assert lr_factor(10, wsd, 100, time_fraction=0.875) == pytest.approx(0.5)  # time ahead of the steps
    with pytest.raises(LatentCotError, match="decay_fraction"):
        make_cfg(schedule="wsd", decay_fraction=0.0)


def test_learning_rate_keeps_each_schedules_numbers():
    """The trainer sets ``learning_rate`` (cfg.lr x warm-up x decay, left to right): for the language-model
    schedules exactly cfg.lr x lr_factor (what LambdaLR gave them), for cosine_from_start exactly what
    EndoCoT's own loop computed (a base lr times a factor would differ from it in the last bit)."""
    for schedule in ("cosine", "linear", "constant", "wsd"):
        for warmup in (0, 3, 7):
            cfg = make_cfg(lr=3e-4, warmup_steps=warmup, schedule=schedule, max_steps=50)
            assert all(learning_rate(s, cfg, 50) == cfg.lr * lr_factor(s, cfg, 50) for s in range(50))
    for warmup in (0, 3, 5, 100):
        cfg = make_cfg(lr=1e-3, warmup_steps=warmup, schedule="cosine_from_start", max_steps=300)
        old = [cfg.lr * min(1.0, (s + 1) / max(1, warmup)) * 0.5 * (1 + math.cos(math.pi * (s / 300))) for s in range(300)]
        assert [learning_rate(s, cfg, 300) for s in range(300)] == old
    cfg = make_cfg(warmup_steps=2, schedule="cosine", max_steps=10, max_seconds=60.0)
    assert lr_factor(5, cfg, 10, time_fraction=0.5) == pytest.approx(0.5)  # time ahead of the steps
    assert lr_factor(5, cfg, 10, time_fraction=0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 8)))


class CountingStream:
    """A batch stream over the counting examples: rows drawn with replacement by its own generator,
    stage 1 from step ``switch`` on."""

    def __init__(self, switch: int) -> None:
        self.examples, self.switch = counting_examples(), switch
        self.generator = torch.Generator().manual_seed(5)
        self.stages: list[int] = []

    def __len__(self) -> int:
        return len(self.examples)

    def stage_for_step(self, step: int, progress: float) -> int:
        return int(step >= self.switch)

    def next_batch(self, stage: int) -> dict:
        self.stages.append(stage)
        rows = torch.randint(len(self.examples), (4,), generator=self.generator).tolist()
        return {"input_ids": torch.tensor([self.examples[i] for i in rows])}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def test_a_batch_stream_switches_stage_resets_adamw_and_resumes_exactly(tmp_path):
    cfg = make_cfg(max_steps=8, save_every=3, warmup_steps=2, schedule="cosine", grad_accum=2)
    config = TinyConfig(dropout=0.1, reset_optimizer_per_stage=True)
    reference, stream = TinyMethod(config), CountingStream(switch=5)
    trainer = Trainer(reference, stream, cfg, tmp_path / "reference")
    trainer.fit()
    assert stream.stages == [0] * 10 + [1] * 6  # grad_accum 2: two micro-batches a step
    assert {float(s["step"]) for s in trainer.optimizer.state.values()} == {3.0}  # moments since the switch
    assert [r["stage"] for r in read_metrics(tmp_path / "reference")] == [0] * 5 + [1] * 3

    crashed = TinyMethod(config)
    crashed.crash_at_call = 7 * 2  # in step 7, after the checkpoint of step 6 (stage 1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(crashed, CountingStream(switch=5), cfg, tmp_path / "run").fit()
    torch.manual_seed(1234)
    resumed = TinyMethod(config, seed=7)
    result = Trainer(resumed, CountingStream(switch=5), cfg, tmp_path / "run").fit(resume=True)
    assert result["step"] == 8 and ckpt.read_info(ckpt.latest_checkpoint(tmp_path / "run"))["stage"] == 1
    for key, value in weights(reference).items():
        assert torch.equal(resumed.state_dict()[key], value), key
    with pytest.raises(LatentCotError, match="batch stream needs train.max_steps"):
        Trainer(TinyMethod(), CountingStream(switch=5), make_cfg(epochs=2), tmp_path / "none")


def test_a_time_budget_stops_the_run_and_decays_the_lr_with_time(tmp_path):
    cfg = make_cfg(max_steps=100_000, max_seconds=0.5, schedule="cosine", log_every=1000)
    result = Trainer(TinyMethod(), counting_examples(), cfg, tmp_path).fit()
    assert 0 < result["step"] < 100_000 and result["seconds"] >= 0.5
    assert result["lr"] < 0.01 * cfg.lr  # the last step's: the cosine followed time to its end
    info = ckpt.read_info(ckpt.latest_checkpoint(tmp_path))
    assert info["step"] == result["step"] and info["seconds"] >= 0.5
    again = Trainer(TinyMethod(), counting_examples(), cfg, tmp_path).fit(resume=True)  # the budget is spent
    assert again["step"] == result["step"]


def test_config_rules_and_too_small_data(tmp_path):
    with pytest.raises(LatentCotError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(LatentCotError, match="warmup_steps"):
        TrainConfig(max_steps=10, warmup_steps=10, schedule="cosine")
    with pytest.raises(LatentCotError, match="unknown key 'learning_rate'"):
        from_dict(TrainConfig, {"learning_rate": 1e-3})
    with pytest.raises(LatentCotError, match="fewer than one optimizer step"):
        Trainer(TinyMethod(), counting_examples(3), make_cfg(batch_size=4), tmp_path)


def test_reference_loop_resets_adamw_every_epoch_and_keeps_the_last_partial_batch(tmp_path):
    """Coconut's reference loop (REFERENCE_LOOP): fresh AdamW each epoch, the partial batch kept."""
    method = TinyMethod(TinyConfig(stages=2, epochs_per_stage=2, reset_optimizer_per_stage=True))
    examples = counting_examples(10)  # batch 4: batches of 4, 4 and 2
    trainer = Trainer(method, examples, make_cfg(epochs=3, **REFERENCE_LOOP), tmp_path)
    trainer.fit()
    assert trainer.steps_per_epoch == 3 and trainer.step == 9
    assert sorted(method.seen) == sorted([tuple(e) for e in examples] * 3)  # every example, every epoch
    # the moments count only the last epoch's steps (per stage they would count two epochs')
    assert {float(s["step"]) for s in trainer.optimizer.state.values()} == {3.0}
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.01]  # biases decay too
    rows = [r for r in read_metrics(tmp_path) if "lr" in r]
    assert {r["lr"] for r in rows} == {3e-3}  # constant, no warm-up
    assert {r["grad_norm"] for r in rows} != {1.0}  # not clipped to 1


@pytest.mark.parametrize("reset, expected", [("none", 12.0), ("stage", 6.0), ("epoch", 3.0), ("method", 6.0)])
def test_optimizer_reset_modes(tmp_path, reset, expected):
    # the stage changes once, at epoch 2 (two stages of two epochs); 3 steps per epoch
    method = TinyMethod(TinyConfig(stages=2, epochs_per_stage=2, reset_optimizer_per_stage=True))
    trainer = Trainer(method, counting_examples(12), make_cfg(epochs=4, optimizer_reset=reset), tmp_path)
    trainer.fit()
    assert {float(s["step"]) for s in trainer.optimizer.state.values()} == {expected}


def test_rewarm_ramps_the_lr_after_every_optimizer_reset_and_resumes_exactly(tmp_path):
    # two stages of two epochs, 3 steps per epoch: AdamW starts afresh at step 6 (stage 1)
    config = TinyConfig(stages=2, epochs_per_stage=2, reset_optimizer_per_stage=True)
    cfg = make_cfg(epochs=4, warmup_steps=2, rewarm_steps=4, save_every=7)  # the checkpoint is mid-ramp
    reference = TinyMethod(config)
    Trainer(reference, counting_examples(12), cfg, tmp_path / "reference").fit()
    lrs = [r["lr"] for r in read_metrics(tmp_path / "reference") if "lr" in r]
    ramp = [cfg.lr * f for f in (0.5, 1, 1, 1, 1, 1, 0.25, 0.5, 0.75, 1, 1, 1)]
    assert lrs == pytest.approx(ramp, rel=1e-12)
    plain = TinyMethod(config)
    Trainer(plain, counting_examples(12), make_cfg(epochs=4, warmup_steps=2), tmp_path / "plain").fit()
    assert [r["lr"] for r in read_metrics(tmp_path / "plain") if "lr" in r][6:] == [cfg.lr] * 6

    crashed = TinyMethod(config)
    crashed.crash_at_call = 9
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(crashed, counting_examples(12), cfg, tmp_path / "run").fit()
    resumed = TinyMethod(config, seed=7)
    Trainer(resumed, counting_examples(12), cfg, tmp_path / "run").fit(resume=True)
    for key, value in weights(reference).items():
        assert torch.equal(resumed.state_dict()[key], value), key
    assert [r["lr"] for r in read_metrics(tmp_path / "run") if "lr" in r] == lrs
    with pytest.raises(LatentCotError, match="rewarm_steps"):
        make_cfg(rewarm_steps=-1)


class FingerprintMethod(TinyMethod):
    """TinyMethod that keeps a copy of every weight at each forward call."""

    def __init__(self, config: TinyConfig | None = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.prints: list[torch.Tensor] = []

    def forward(self, batch):
        self.prints.append(torch.cat([p.detach().flatten() for p in self.parameters()]).clone())
        return super().forward(batch)


def test_stage_retries_rewind_weights_and_adamw_to_the_stage_start(tmp_path):
    # one example repeated: the data order cannot matter, so a rewound stage must replay bit for bit,
    # which it does only if both the weights and AdamW's moments (6 steps old where stage 1 starts, 9
    # when it is rewound) come back
    same = [list(range(8))] * 12
    config = TinyConfig(stages=3, epochs_per_stage=1)
    cfg = make_cfg(epochs=5, stage_retries=1, stage_retry_loss=1e-9, optimizer_reset="none")  # every stage is rewound once
    method = FingerprintMethod(config)
    result = Trainer(method, same, cfg, tmp_path / "run").fit()
    assert method.stages_seen == [0] * 6 + [1] * 6 + [2] * 3  # 3 steps an epoch: stages 0 and 1 twice each
    for original, replay in ((range(0, 3), range(3, 6)), (range(6, 9), range(9, 12))):
        for a, b in zip(original, replay, strict=True):
            assert torch.equal(method.prints[a], method.prints[b]), (a, b)
    assert not torch.equal(method.prints[6], method.prints[0])  # stage 1 starts where stage 0's retry ended
    ends = [r for r in read_metrics(tmp_path / "run") if "stage_end_loss" in r]
    assert [(r["step"], r["stage"], r["stage_rewound"], r["stage_retries"]) for r in ends] == [
        (3, 0, 1, 1), (6, 0, 0, 1), (9, 1, 1, 1), (12, 1, 0, 1)]
    assert result["step"] == 15 and result["stage_retries"] == {0: 1, 1: 1}  # stage 2, the last, never ends
    assert ckpt.read_info(ckpt.latest_checkpoint(tmp_path / "run" / "stage_start"))["stage"] == 2



def resume_after_crashes(config, cfg, crashes, reference, tmp_path) -> list[Path]:
    """Crash a run of ``config``/``cfg`` at each call in ``crashes``, resume it, and check the weights
    equal ``reference``'s; returns the run folders."""
    runs = []
    for crash_at in crashes:
        crashed = TinyMethod(config)
        crashed.crash_at_call = crash_at
        run = tmp_path / f"run{crash_at}"
        with pytest.raises(RuntimeError, match="simulated crash"):
            Trainer(crashed, counting_examples(12), cfg, run).fit()
        resumed = TinyMethod(config, seed=7)
        Trainer(resumed, counting_examples(12), cfg, run).fit(resume=True)
        for key, value in weights(reference).items():
            assert torch.equal(resumed.state_dict()[key], value), (crash_at, key)
        runs.append(run)
    return runs


def test_stage_retries_below_the_bound_change_nothing_and_a_rewound_run_resumes_exactly(tmp_path):
    config = TinyConfig(stages=3, epochs_per_stage=2, reset_optimizer_per_stage=True)
    plain = TinyMethod(config)
    Trainer(plain, counting_examples(12), make_cfg(epochs=8, rewarm_steps=2), tmp_path / "plain").fit()
    for where in ("stage", "previous", "extend"):
        never = TinyMethod(config)  # the bound is never reached: the same run, bit for bit
        result = Trainer(never, counting_examples(12), make_cfg(epochs=8, rewarm_steps=2, stage_retries=2, stage_retry_loss=100.0,
                                                                stage_retry_from=where), tmp_path / where).fit()
        for key, value in weights(plain).items():
            assert torch.equal(never.state_dict()[key], value), key
        assert result["stage_retries"] == {} and not any("stage_end_loss" in r for r in read_metrics(tmp_path / where))

    # stages 0 and 1 are rewound once each (the run is 10 epochs: stage 2 gets the 2 left)
    cfg = make_cfg(epochs=10, rewarm_steps=2, stage_retries=1, stage_retry_loss=1e-9, save_every=4)
    reference = TinyMethod(config)
    Trainer(reference, counting_examples(12), cfg, tmp_path / "reference").fit()
    assert reference.stages_seen == [0] * 12 + [1] * 12 + [2] * 6
    rows = read_metrics(tmp_path / "reference")
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs[6] == lrs[12] == cfg.lr / 2  # AdamW afresh, the ramp again, at each stage's (re)start
    # checkpoints every 4 steps, 3 steps an epoch: resumed from step 4 (stage 0, before its rewind), 12 (where
    # stage 0 ends a second time) and 20 (in stage 1's retry)
    for run in resume_after_crashes(config, cfg, (7, 14, 22), reference, tmp_path):
        assert read_metrics(run) == [{**r, "examples_per_s": read_metrics(run)[i]["examples_per_s"]}
                                     if "examples_per_s" in r else r for i, r in enumerate(rows)]


def test_stage_retry_from_previous_goes_back_to_the_stage_before_and_resumes_exactly(tmp_path):
    # every stage is rewound once: stage 0 (the run's first) to its own start, stage 1 to stage 0's start;
    # one example repeated, so a replayed stretch from the same weights and AdamW is equal bit for bit
    same = [list(range(8))] * 12
    config = TinyConfig(stages=3, epochs_per_stage=1)
    cfg = make_cfg(epochs=8, stage_retries=1, stage_retry_loss=1e-9, optimizer_reset="none", stage_retry_from="previous")
    method = FingerprintMethod(config)
    result = Trainer(method, same, cfg, tmp_path / "run").fit()
    assert method.stages_seen == [0] * 6 + [1] * 3 + [0] * 3 + [1] * 3 + [2] * 9
    for original, replay in ((range(0, 3), range(9, 12)), (range(6, 9), range(12, 15))):
        for a, b in zip(original, replay, strict=True):
            assert torch.equal(method.prints[a], method.prints[b]), (a, b)
    ends = [r for r in read_metrics(tmp_path / "run") if "stage_end_loss" in r]
    assert [(r["step"], r["stage"], r["stage_rewound"], r["stage_retries"]) for r in ends] == [
        (3, 0, 1, 1), (6, 0, 0, 1), (9, 1, 1, 1), (12, 0, 0, 1), (15, 1, 0, 1)]
    assert result["stage_retries"] == {0: 1, 1: 1}
    # the stale start of stage 1 (step 6) went with the rewind; the newest two starts are kept
    snapshots = ckpt.list_checkpoints(tmp_path / "run" / "stage_start")
    assert [(p.name, ckpt.read_info(p)["stage"]) for p in snapshots] == [("step-000012", 1), ("step-000015", 2)]

    # with stages of 2 epochs and data whose order matters: a resumed run rewinds exactly as an uninterrupted one
    config = TinyConfig(stages=3, epochs_per_stage=2, reset_optimizer_per_stage=True)
    cfg = make_cfg(epochs=12, rewarm_steps=2, stage_retries=1, stage_retry_loss=1e-9, save_every=4,
                   stage_retry_from="previous")
    reference = TinyMethod(config)
    Trainer(reference, counting_examples(12), cfg, tmp_path / "reference").fit()
    assert reference.stages_seen == [0] * 12 + [1] * 6 + [0] * 6 + [1] * 6 + [2] * 6
    # crashes in stage 1's first run, in stage 0's run after going back, and in stage 1's last
    resume_after_crashes(config, cfg, (20, 27, 33), reference, tmp_path)


class TwiceAsLongStages(TinyMethod):
    """TinyMethod whose stages 0 and 1 last two epochs each: what ``extend`` should make of one-epoch stages."""

    def stage_for_epoch(self, epoch):
        return min(epoch // 2, self.config.stages - 1)


def test_stage_retry_from_extend_is_a_longer_stage_and_resumes_exactly(tmp_path):
    # stages of one epoch, each ending above the bound once: extended, they equal stages of two epochs bit
    # for bit, with AdamW afresh and the lr ramp only where a stage really begins
    config = TinyConfig(stages=3, epochs_per_stage=1, reset_optimizer_per_stage=True)
    plain = TwiceAsLongStages(config)
    Trainer(plain, counting_examples(12), make_cfg(epochs=6, rewarm_steps=2), tmp_path / "plain").fit()
    cfg = make_cfg(epochs=6, rewarm_steps=2, stage_retries=1, stage_retry_loss=1e-9, stage_retry_from="extend",
                   save_every=3)
    extended = TinyMethod(config)
    result = Trainer(extended, counting_examples(12), cfg, tmp_path / "extended").fit()
    assert extended.stages_seen == plain.stages_seen == [0] * 6 + [1] * 6 + [2] * 6
    for key, value in weights(plain).items():
        assert torch.equal(extended.state_dict()[key], value), key
    lrs = [r["lr"] for r in read_metrics(tmp_path / "extended") if "lr" in r]
    assert lrs == [r["lr"] for r in read_metrics(tmp_path / "plain") if "lr" in r]
    ends = [r for r in read_metrics(tmp_path / "extended") if "stage_end_loss" in r]
    assert [(r["step"], r["stage"], r["stage_rewound"], r["stage_retries"]) for r in ends] == [
        (3, 0, 1, 1), (6, 0, 0, 1), (9, 1, 1, 1), (12, 1, 0, 1)]
    assert result["stage_retries"] == {0: 1, 1: 1}
    assert not (tmp_path / "extended" / "stage_start").exists()  # nothing to rewind to: no snapshots
    # a checkpoint at every epoch's end: resumed from where stage 0 first ends, stage 1 begins, stage 1's
    # extension begins and the last stage begins
    resume_after_crashes(config, cfg, (5, 8, 11, 14), extended, tmp_path)


def test_stage_retries_leave_the_last_stage_the_epochs_of_a_stage(tmp_path):
    # 9 epochs, stages of 2: stage 0 is rewound once (the last stage still gets 3 epochs), then no more
    # rewinds, though retries are left: each would leave the last stage fewer than 2 epochs
    method = TinyMethod(TinyConfig(stages=3, epochs_per_stage=2))
    cfg = make_cfg(epochs=9, stage_retries=5, stage_retry_loss=1e-9)
    Trainer(method, counting_examples(12), cfg, tmp_path).fit()
    assert method.stages_seen == [s for s in (0, 0, 0, 0, 1, 1, 2, 2, 2) for _ in range(3)]
    ends = [r for r in read_metrics(tmp_path) if "stage_end_loss" in r]
    assert [(r["step"], r["stage"], r["stage_rewound"], r["stage_retries"]) for r in ends] == [
        (6, 0, 1, 1), (12, 0, 0, 1), (18, 1, 0, 0)]


def test_stage_retries_can_watch_a_value_the_method_logs(tmp_path):
    # at the end of stage 0 lm_loss (the TinyMethod's loss without its aux term) is 2.91 and the loss
    # 3.20: with the bound between them only the run that watches the loss rewinds
    config, examples = TinyConfig(stages=2, epochs_per_stage=1), counting_examples(12)
    for metric, rewinds in (("lm_loss", {}), ("loss", {0: 1})):
        cfg = make_cfg(epochs=3, stage_retries=1, stage_retry_loss=3.05, stage_retry_metric=metric)
        assert Trainer(TinyMethod(config), examples, cfg, tmp_path / metric).fit()["stage_retries"] == rewinds
    cfg = make_cfg(epochs=3, stage_retries=1, stage_retry_metric="answer_loss")
    with pytest.raises(LatentCotError, match=r"stage_retry_metric='answer_loss'.*logs: loss, lm_loss"):
        Trainer(TinyMethod(config), examples, cfg, tmp_path / "missing").fit()


def test_a_fresh_run_never_rewinds_to_a_snapshot_left_by_an_earlier_one(tmp_path):
    config = TinyConfig(stages=3, epochs_per_stage=2)
    cfg = make_cfg(epochs=10, stage_retries=1, stage_retry_loss=1e-9)
    Trainer(TinyMethod(config), counting_examples(12), cfg, tmp_path / "old").fit()
    assert ckpt.latest_checkpoint(tmp_path / "old" / "stage_start").name == "step-000024"  # stage 2's start
    reference, replaced = TinyMethod(config), TinyMethod(config)
    short = make_cfg(epochs=8, stage_retries=1, stage_retry_loss=1e-9)  # stage 0 is rewound to step 0
    Trainer(reference, counting_examples(12), short, tmp_path / "reference").fit()
    assert Trainer(replaced, counting_examples(12), short, tmp_path / "old").fit(overwrite=True)["stage_retries"] == {0: 1}
    for key, value in weights(reference).items():
        assert torch.equal(replaced.state_dict()[key], value), key


def test_stage_retries_bad_settings_are_refused(tmp_path):
    with pytest.raises(LatentCotError, match="stage_retries"):
        make_cfg(stage_retries=-1)
    with pytest.raises(LatentCotError, match="stage_retry_loss"):
        make_cfg(stage_retry_loss=0.0)
    # a resumed run whose stage-start snapshot was deleted: the rewind names what is missing
    crashed, cfg = TinyMethod(TinyConfig(stages=2)), make_cfg(epochs=3, stage_retries=1, stage_retry_loss=1e-9, save_every=1)
    crashed.crash_at_call = 3
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(crashed, counting_examples(12), cfg, tmp_path / "run").fit()
    shutil.rmtree(tmp_path / "run" / "stage_start")
    with pytest.raises(LatentCotError, match=r"stage_start: no snapshot of the start of stage 0 to rewind to"):
        Trainer(TinyMethod(TinyConfig(stages=2)), counting_examples(12), cfg, tmp_path / "run").fit(resume=True)
    with pytest.raises(LatentCotError, match="stage_retries rewinds the stages of an epoch curriculum"):
        Trainer(TinyMethod(), CountingStream(switch=5), make_cfg(max_steps=8, stage_retries=1), tmp_path / "s")


def test_drop_last_and_decay_rules(tmp_path):
    cfg = make_cfg(drop_last=True)
    assert [len(b) for b in epoch_batches(10, 0, cfg)] == [4, 4]
    assert [len(b) for b in epoch_batches(10, 0, make_cfg(drop_last=False))] == [4, 4, 2]
    with pytest.raises(LatentCotError, match="drop_last"):
        make_cfg(drop_last=False, grad_accum=2)
    with pytest.raises(LatentCotError, match="drop_last"):
        epoch_batches(10, 0, make_cfg(drop_last=False), world_size=2)
    groups = param_groups(TinyMethod(), 0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0] and all(p.ndim >= 2 for p in groups[0]["params"])
    with pytest.raises(LatentCotError, match="optimizer_reset"):
        from_dict(TrainConfig, {"optimizer_reset": "sometimes"})

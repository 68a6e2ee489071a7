"""The visual (EndoCoT) recipe: puzzles -> tensors -> stage 1 / stage 2 training -> solved rate.

``latentcot visual train [CONFIG.yaml] [key=value ...] [--resume | --overwrite]`` calls :func:`main`;
so can a Python user::

    latentcot visual train data.size=6 model.latent_steps=4 out_dir=runs/endocot-maze6 train.save_every=500
    latentcot visual train data.size=6 model.latent_steps=4 out_dir=runs/endocot-maze6 --resume  # after a kill
    latentcot visual eval runs/endocot-maze6 --n 500
    latentcot visual solve runs/endocot-maze6 --index 3 --out solve/

Training runs through the one trainer (:class:`latentcot.train.trainer.Trainer`): EndoCoT enters
it as :class:`TrainableEndoCoT` (its loss) fed by :class:`PuzzleBatches` (puzzles drawn with
replacement, stage 1 then stage 2). A run folder describes itself: ``config.yaml`` (the resolved
config), ``model.safetensors`` (the final weights), ``metrics.jsonl``, ``tb/``,
``checkpoints/step-*/`` and ``eval.json``; :func:`load_run` rebuilds the model from the folder
alone. One process only: the models are tiny (see the EndoCoT paper,
https://arxiv.org/abs/2603.12252, for the 20B-scale recipe).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_model
from torch import nn

from latentcot.config import from_dict, option, read_yaml, save_config, to_dict
from latentcot.errors import LatentCotError
from latentcot.methods.base import Batch, LossOutput
from latentcot.train import checkpoint as ckpt
from latentcot.train.checkpoint import load_tensors, missing_keys_that_matter
from latentcot.train.config import TrainConfig
from latentcot.train.distributed import init_distributed
from latentcot.train.trainer import Trainer, stream_generators
from latentcot.visual.endocot import EndoCoT, EndoCoTConfig, encode_answers
from latentcot.visual.tasks import TASKS, render

EVAL_SEED_OFFSET = 1_000_003  # evaluation puzzles come from a seed the training set never uses


@dataclass
class VisualDataConfig:
    task: str = option("maze", f"puzzle family ({', '.join(sorted(TASKS))})")
    size: int = option(4, "cells per side (maze: 4, 6, 8, ...; sudoku: 4 or 9)")
    train_size: int = option(4000, "training puzzles (seeded by the run seed)")
    eval_size: int = option(200, "held-out puzzles for the solved rate (seed + 1000003)")

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise LatentCotError(f"task '{self.task}': unknown (valid: {', '.join(sorted(TASKS))})")
        if self.train_size < 1 or self.eval_size < 1:
            raise LatentCotError("train_size and eval_size must be at least 1")


@dataclass
class VisualTrainConfig:
    batch_size: int = option(64, "puzzles per step")
    lr: float = option(1e-3, "peak AdamW learning rate (linear warm-up, cosine decay to 0)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_steps: int = option(100, "linear warm-up steps")
    stage1_steps: int = option(1000, "stage-1 steps: thought i draws the partial solution i/T of the way")
    stage2_steps: int = option(1000, "stage-2 steps: the final thought draws the full solution")
    clip_grad: float = option(1.0, "global gradient-norm clip; 0 disables")
    max_seconds: float = option(0.0, "time limit in seconds (0: none; summed over resumes); lr decay and the stage "
                                "split then follow elapsed time (not reproducible, being timed)")
    log_every: int = option(100, "steps between metric lines (averages over those steps)")
    save_every: int = option(0, "steps between checkpoints in out_dir/checkpoints (continue a run with --resume); "
                             "0: only at the end")
    keep_last: int = option(2, "checkpoints kept in out_dir/checkpoints; 0 keeps all")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.log_every < 1 or self.stage1_steps < 0 or self.stage2_steps < 0:
            raise LatentCotError("batch_size and log_every must be >= 1, stage steps >= 0")
        if self.stage1_steps + self.stage2_steps < 1 or self.lr <= 0:
            raise LatentCotError("the run needs at least one step and a positive lr")
        try:
            self.trainer_config(seed=0)
        except LatentCotError as err:
            raise LatentCotError(f"train.{err}") from None

    def trainer_config(self, seed: int) -> TrainConfig:
        """The trainer's settings for this recipe: its own AdamW (weight decay on every parameter,
        fused on CUDA, no autocast), one cosine over both stages with the warm-up multiplied in."""
        return TrainConfig(
            lr=self.lr, weight_decay=self.weight_decay, decay_all_params=True, warmup_steps=self.warmup_steps,
            schedule="cosine_from_start", batch_size=self.batch_size, max_steps=self.stage1_steps + self.stage2_steps,
            max_seconds=self.max_seconds, clip_grad=self.clip_grad, bf16=False, fused_optimizer=True,
            log_every=self.log_every, save_every=self.save_every, keep_last=self.keep_last, distributed="ddp",
            find_unused_parameters=True, seed=seed,  # under torchrun; a stage may leave parts of the model unused
        )


@dataclass
class VisualRunConfig:
    """A whole EndoCoT run; YAML sections map to these fields."""

    out_dir: str = option("runs/endocot", "run folder (config.yaml, model.safetensors, metrics.jsonl, eval.json)")
    seed: int = option(0, "one seed for puzzles, initialisation, batches and sampling noise")
    device: str = option("auto", "auto (cuda when available), cpu or cuda")
    sample_steps: int = option(10, "Euler steps when drawing answers")
    init_from: str = option("", "a run folder whose weights start this run (a warm start: fresh optimiser and lr "
                            "schedule; its model, task and size must be this run's); empty: random init")
    data: VisualDataConfig = field(default_factory=VisualDataConfig)
    model: EndoCoTConfig = field(default_factory=EndoCoTConfig)
    train: VisualTrainConfig = field(default_factory=VisualTrainConfig)

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") or self.sample_steps < 1:
            raise LatentCotError(f"device must be auto, cpu or cuda (got {self.device!r}); sample_steps >= 1")


def resolve_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def partial_step(i: int, T: int, num_steps: int) -> int:
    """Solution step drawn from thought ``i`` of ``T``: ``round(i·num_steps/T)`` (halves up)."""
    return math.floor(i * num_steps / T + 0.5)


def prepare(task: str, puzzles: list, T: int) -> dict[str, torch.Tensor]:
    """Puzzles -> training tensors (see :meth:`EndoCoT.loss`); images stored in float16 (within
    1e-3 of the renders; black, white and the maze colours exactly) to keep 8x8 sets small.

    ``order[n, y, x]`` is the first thought ``i`` in 1..T whose partial target already shows pixel
    ``(y, x)`` as in the solution; the partial for thought i is then ``where(order <= i, solution,
    puzzle)``, which equals ``render_partial(partial_step(i))`` because the renderers only ever
    paint a pixel from its puzzle colour to its solution colour (tested).
    """
    puzzle = np.stack([p.render_puzzle() for p in puzzles])
    solution = np.stack([p.render_solution() for p in puzzles])
    order = np.full(puzzle.shape[:1] + puzzle.shape[2:], T, dtype=np.int64)
    for n, p in enumerate(puzzles):
        for i in range(T - 1, 0, -1):  # descending: the earliest thought showing a pixel wins
            done = (p.render_partial(partial_step(i, T, p.num_steps)) == solution[n]).all(0)
            order[n][done] = i
    return {"puzzle": torch.from_numpy(puzzle).half(), "solution": torch.from_numpy(solution).half(),
            "order": torch.from_numpy(order), **answer_tensors(puzzles, T)}


def answer_tensors(puzzles: list, T: int) -> dict[str, torch.Tensor]:
    """Answer texts as ids: ``answer_ids`` (n, longest + 1) and ``answer_lens`` (see
    :func:`encode_answers`); for ``T > 0`` also ``step_ids`` (n, T, longest step + 1), thought
    ``i``'s step: the characters from partial ``i - 1`` to partial ``i``, then ``<eot>``."""
    ids, lens = encode_answers([p.answer_text() for p in puzzles])
    out = {"answer_ids": ids, "answer_lens": lens}
    if T > 0:
        steps = [p.step_text(partial_step(i - 1, T, p.num_steps), partial_step(i, T, p.num_steps))
                 for p in puzzles for i in range(1, T + 1)]
        out["step_ids"] = encode_answers(steps)[0].view(len(puzzles), T, -1)
    return out


def batch_of(data: dict[str, torch.Tensor], idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    """Rows ``idx`` on ``device``, images as float32."""
    out = {k: v[idx].to(device) for k, v in data.items()}
    out["puzzle"], out["solution"] = out["puzzle"].float(), out["solution"].float()
    return out


class PuzzleBatches:
    """EndoCoT's training batches, a :class:`latentcot.train.trainer.BatchStream`.

    Each step draws ``batch_size`` puzzles with replacement (a generator seeded ``seed``); stage 1
    runs the first ``stage1_steps`` steps (under a time limit: while less than that share of the
    run is done), stage 2 the rest. Each batch carries its stage and the generator of the loss's
    times, noise and thought indices (seeded ``seed + 1``, on the model's device).

    Args:
        data: from :func:`prepare` (on CPU; batches are moved as drawn).
        cfg: the recipe's training settings.
        seed: the run seed.
        device: where the model is.
        rank, world_size: the process this stream draws for under torchrun (its own puzzles,
            seeded with :func:`latentcot.train.trainer.rank_seed`); 0 and 1 for one process.
    """

    def __init__(self, data: dict[str, torch.Tensor], cfg: VisualTrainConfig, seed: int, device: torch.device,
                 rank: int = 0, world_size: int = 1) -> None:
        self.data, self.cfg, self.device = data, cfg, device
        self.rank, self.world_size = rank, world_size
        self.sampler, self.noise = stream_generators(seed, rank, device)

    def __len__(self) -> int:
        return int(self.data["puzzle"].shape[0])

    def stage_for_step(self, step: int, progress: float) -> int:
        total = self.cfg.stage1_steps + self.cfg.stage2_steps
        return 1 if step < self.cfg.stage1_steps and progress < self.cfg.stage1_steps / total else 2

    def next_batch(self, stage: int) -> Batch:
        rows = torch.randint(len(self), (self.cfg.batch_size,), generator=self.sampler)
        return {**batch_of(self.data, rows, self.device), "stage": stage, "generator": self.noise}

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.get_state(), "noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.set_state(state["sampler"])
        self.noise.set_state(state["noise"])


class TrainableEndoCoT(nn.Module):
    """EndoCoT as the trainer trains it (a :class:`latentcot.methods.base.Trainable`): the model is
    the ``backbone`` (so a checkpoint's ``model.safetensors`` holds its state dict, as a run
    folder's does) and ``forward`` is :meth:`EndoCoT.loss` on a :class:`PuzzleBatches` batch."""

    name = "endocot"
    tokenizer = None
    reset_optimizer_per_stage = False  # one AdamW through both stages

    def __init__(self, model: EndoCoT) -> None:
        super().__init__()
        self.backbone = model
        self.config = model.cfg

    def forward(self, batch: Batch) -> LossOutput:
        out = self.backbone.loss(batch, batch["stage"], batch["generator"])
        return LossOutput(out["loss"], {k: v.item() for k, v in out.items() if k != "loss"})


def _batches(puzzles: list, device: torch.device, batch_size: int = 256):  # noqa: ANN202 - a generator
    """``(offset, puzzles, rendered puzzle images on device)`` per batch."""
    for i in range(0, len(puzzles), batch_size):
        chunk = puzzles[i : i + batch_size]
        yield i, chunk, torch.from_numpy(np.stack([p.render_puzzle() for p in chunk])).to(device)


def _check(task: str, puzzles: list, drawn: torch.Tensor) -> tuple[np.ndarray, list, list[bool]]:
    """Drawn images -> (images as float32 numpy, parsed answers, solved flags)."""
    module = TASKS[task]
    images = drawn.float().cpu().numpy()
    answers = [module.parse(image) for image in images]
    return images, answers, [bool(module.check(p, a)) for p, a in zip(puzzles, answers)]


@torch.no_grad()
def solve(model: EndoCoT, task: str, puzzles: list, steps: int = 10, seed: int = 0,
          batch_size: int = 256) -> tuple[np.ndarray, list, list[bool]]:
    """Draw, parse and check answers.

    Returns:
        (generated images (n, 3, H, W) float32 in [0, 1], parsed answers, solved flags).
    """
    images, answers, solved = [], [], []
    for i, chunk, puzzle in _batches(puzzles, next(model.parameters()).device, batch_size):
        drawn, parsed, ok = _check(task, chunk, model.generate(puzzle, steps=steps, seed=seed + i))
        images.append(drawn)
        answers += parsed
        solved += ok
    return np.concatenate(images), answers, solved


@torch.no_grad()
def look(model: EndoCoT, task: str, puzzles: list, steps: int = 10, seed: int = 0,
         batch_size: int = 256) -> list[dict[str, Any]]:
    """What a viewer shows of each puzzle: drawn as :func:`evaluate` draws it (same batches and
    noise seeds, so the same solved flags), plus each thought as a map over the grid.

    Returns:
        Per puzzle ``{"puzzle", "drawn", "truth"}`` images ((3, H, W) float32 in [0, 1]),
        ``"answer"`` (the drawn answer as text), ``"gold"`` (the true one), ``"solved"``, ``"maps"``
        ((T + 1, side, side) float32, :meth:`EndoCoT.thought_maps`; None without a reasoner) and
        ``"readouts"`` ((T + 1, 3, H, W): the image each grid thought reads out; None without a
        grid readout).
    """
    module = TASKS[task]
    out: list[dict[str, Any]] = []
    for i, chunk, puzzle in _batches(puzzles, next(model.parameters()).device, batch_size):
        thoughts = model.thoughts(puzzle)
        images, answers, solved = _check(task, chunk, model.draw(puzzle, thoughts, steps, seed + i))
        maps = readouts = None
        if thoughts is not None:
            side = math.isqrt(model.cells)
            maps = model.thought_maps(puzzle, thoughts).float().cpu().numpy().reshape(len(chunk), -1, side, side)
            if model.readout is not None and model.cfg.thought == "grid":
                readouts = ((model.readout_images(thoughts) + 1) / 2).clamp(0, 1).float().cpu().numpy()
        for j, p in enumerate(chunk):
            out.append({"puzzle": puzzle[j].cpu().numpy(), "drawn": images[j], "truth": p.render_solution(),
                        "answer": module.answer_text(answers[j]), "gold": p.answer_text(), "solved": solved[j],
                        "maps": None if maps is None else maps[j], "readouts": None if readouts is None else readouts[j]})
    return out


@torch.no_grad()
def evaluate(model: EndoCoT, task: str, puzzles: list, steps: int = 10, seed: int = 0) -> dict[str, Any]:
    """The solved rate and, with a reasoner, two looks inside; the reasoner runs once per batch.

    Returns:
        ``solved`` and ``n_eval``; with a reasoner (and at least 2 puzzles) ``solved_shuffled_thoughts``,
        the solved rate when every puzzle is drawn from another puzzle's thoughts (the next one's
        in its batch of 256, see :meth:`EndoCoT.generate`; equal to ``solved``: the DiT ignores
        the thoughts); with a readout of vector thoughts, ``readout_exact``, the fraction whose
        thoughts read out the whole answer text (every step's, or the final thought's); with a
        readout of grid thoughts, ``readout_solved``, the solved rate of the image the final
        thought reads out (parsed and checked like a drawn one: the reasoner's own answer).
    """
    device = next(model.parameters()).device
    shuffle = model.reasoner is not None and len(puzzles) > 1
    solved: list[bool] = []
    shuffled: list[bool] = []
    right: list[torch.Tensor] = []
    read: list[bool] = []
    for i, chunk, puzzle in _batches(puzzles, device):
        thoughts = model.thoughts(puzzle)
        solved += _check(task, chunk, model.draw(puzzle, thoughts, steps, seed + i))[2]
        if shuffle:
            assert thoughts is not None
            shuffled += _check(task, chunk, model.draw(puzzle, thoughts.roll(1, dims=0), steps, seed + i))[2]
        if model.readout is not None and model.cfg.thought == "grid":
            assert thoughts is not None
            read += _check(task, chunk, ((model.readout_images(thoughts[:, -1]) + 1) / 2).clamp(0, 1))[2]
        elif model.readout is not None:
            assert thoughts is not None
            labels = {k: v.to(device) for k, v in answer_tensors(chunk, model.cfg.latent_steps).items()}
            right.append(model.readout_correct(thoughts, labels).cpu())
    out: dict[str, Any] = {"solved": float(np.mean(solved)), "n_eval": len(solved)}
    if shuffle:
        out["solved_shuffled_thoughts"] = float(np.mean(shuffled))
    if right:
        out["readout_exact"] = float(torch.cat(right).float().mean())
    if read:
        out["readout_solved"] = float(np.mean(read))
    return out


def eval_puzzles(cfg: VisualRunConfig, n: int | None = None) -> list:
    """The held-out puzzles of a run (or the first ``n`` of that stream)."""
    return TASKS[cfg.data.task].generate(n or cfg.data.eval_size, cfg.data.size, cfg.seed + EVAL_SEED_OFFSET)


def build_model(cfg: VisualRunConfig) -> EndoCoT:
    block = TASKS[cfg.data.task].BLOCK
    return EndoCoT(cfg.model, cfg.data.size * block, block)


def save_run(model: EndoCoT, cfg: VisualRunConfig, out_dir: str | Path) -> Path:
    """Write ``config.yaml`` and ``model.safetensors`` atomically (temporary file, then rename);
    ``save_model`` handles GPT-2's tied embedding. No pickle."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    tmp = out / f".model-{os.getpid()}.safetensors"
    save_model(model, str(tmp))
    shutil.move(tmp, out / "model.safetensors")
    return out


def weights_file(run_dir: str | Path) -> Path:
    """A run's weights: its final ``model.safetensors``, or, for a run that did not finish (killed,
    or still training), its latest checkpoint's."""
    run = Path(run_dir)
    if (run / "model.safetensors").is_file():
        return run / "model.safetensors"
    latest = ckpt.latest_checkpoint(run)
    if latest is not None and (latest / "model.safetensors").is_file():
        return latest / "model.safetensors"
    raise LatentCotError(f"{run}: not an EndoCoT run (expected config.yaml and model.safetensors, or a checkpoint "
                         "under checkpoints/)")


def run_config(run_dir: str | Path) -> VisualRunConfig:
    """The config of a run folder (checked to hold ``config.yaml`` and weights: ``model.safetensors``
    or, for an unfinished run, a checkpoint)."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise LatentCotError(f"{run}: not an EndoCoT run (expected config.yaml and model.safetensors)")
    weights_file(run)
    raw = read_yaml(run / "config.yaml")
    if isinstance(raw.get("model"), dict):  # runs saved before `conditioning` existed fed thoughts through adaLN
        raw["model"].setdefault("conditioning", "adaln")
    return from_dict(VisualRunConfig, raw, str(run / "config.yaml"))


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[EndoCoT, VisualRunConfig]:
    """Rebuild a trained model (eval mode) and its config from a run folder; a run that did not
    finish loads its latest checkpoint (said on stderr)."""
    run = Path(run_dir)
    cfg = run_config(run)
    model = build_model(cfg)
    weights = weights_file(run)
    if weights.parent != run:
        ckpt.verify_checkpoint(weights.parent)  # digests: a checkpoint cut short or changed is named
        print(f"{run}: no final model.safetensors (the run did not finish); using {weights.parent.name}",
              file=sys.stderr)
    _load_weights(model, weights)
    return model.to(resolve_device(device)).eval(), cfg


def _load_weights(model: EndoCoT, file: Path) -> None:
    """Load a run's weights with safetensors only; a corrupt, non-finite or mismatched file is a
    one-line :class:`LatentCotError` naming it."""
    state = load_tensors(file)  # read once: header, dtypes and that every weight is finite checked
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape
        raise LatentCotError(f"{file}: does not fit this run's config.yaml ({' '.join(str(err).split())[:200]})") from None
    missing = missing_keys_that_matter(model, result.missing_keys)  # a tied weight is stored once
    if missing or result.unexpected_keys:
        raise LatentCotError(f"{file}: does not fit this run's config.yaml (missing {missing[:5]}, "
                             f"unexpected {result.unexpected_keys[:5]})")


def warm_start(model: EndoCoT, cfg: VisualRunConfig) -> None:
    """Load ``cfg.init_from``'s weights into ``model``, after checking that the run folder trained
    the same model on the same puzzles (task and size)."""
    run = Path(cfg.init_from)
    try:
        old = run_config(run)
    except LatentCotError as err:
        raise LatentCotError(f"init_from: {err}") from None

    def what(c: VisualRunConfig) -> dict[str, Any]:  # what the weights depend on
        return {**{f"model.{k}": v for k, v in to_dict(c.model).items()}, "data.task": c.data.task,
                "data.size": c.data.size}

    ours, theirs = what(cfg), what(old)
    differ = [f"{k} ({theirs[k]!r} there, {v!r} here)" for k, v in ours.items() if theirs[k] != v]
    if differ:
        raise LatentCotError(f"init_from: {run / 'config.yaml'} differs from this run in {', '.join(differ)}")
    _load_weights(model, run / "model.safetensors")


def main(cfg: VisualRunConfig, log: Any = print, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Generate puzzles, train stage 1 then stage 2 through the trainer, save, evaluate the solved rate.

    Args:
        cfg: the run config.
        log: called with the closing line (the solved rate), or None.
        resume: continue the run in ``cfg.out_dir`` exactly from its latest checkpoint.
        overwrite: replace the run already in ``cfg.out_dir``.

    Returns:
        ``eval.json``'s content: solved rate, steps, seconds, the last metric line, config (under
        torchrun: on rank 0, which saves and evaluates; ``{}`` on the other ranks).

    Raises:
        LatentCotError: ``cfg.out_dir`` already holds a run and neither flag is given; or
            ``resume`` on a run saved before checkpoints existed (nothing to resume from).
    """
    out = Path(cfg.out_dir)
    if resume and (out / "model.safetensors").is_file() and ckpt.latest_checkpoint(out) is None:
        raise LatentCotError(f"{out}: a finished run without checkpoints (trained before --resume existed) has nothing "
                             "to resume from; replace it with --overwrite")
    ckpt.prepare_run_dir(out, resume, overwrite)  # before anything is written into it
    ctx = init_distributed()  # under torchrun: DDP, each rank on its own GPU (or CPU) and its own puzzles
    if overwrite and ctx.is_main:
        (out / "model.safetensors").unlink(missing_ok=True)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    device = resolve_device(cfg.device) if ctx.world_size == 1 else ctx.device
    task = TASKS[cfg.data.task]
    t0 = time.time()
    data = prepare(cfg.data.task, task.generate(cfg.data.train_size, cfg.data.size, cfg.seed), cfg.model.latent_steps)
    model = build_model(cfg)
    if cfg.init_from:  # on --resume the checkpoint's weights replace these
        warm_start(model, cfg)
    model = model.to(device)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    ctx.barrier()
    ctx = replace(ctx, device=device)
    trainer = Trainer(TrainableEndoCoT(model), PuzzleBatches(data, cfg.train, cfg.seed, device, ctx.rank, ctx.world_size),
                      cfg.train.trainer_config(cfg.seed), out, dist=ctx, run_config=to_dict(cfg), checked_run_dir=True)
    metrics = trainer.fit(resume=resume)
    model.eval()
    if not ctx.is_main:  # rank 0 saves and evaluates the model every rank holds
        ctx.close()
        return {}
    save_run(model, cfg, out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    result = {**evaluate(model, cfg.data.task, eval_puzzles(cfg), cfg.sample_steps, cfg.seed), "steps": metrics["step"],
              "train_seconds": round(metrics["seconds"], 1), "total_seconds": round(time.time() - t0, 1),
              "final": rows[-1], "device": str(device), "config": to_dict(cfg)}
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    ctx.close()
    if log is not None:
        log(f"solved {result['solved']:.3f} of {result['n_eval']} held-out {cfg.data.task} {cfg.data.size}x{cfg.data.size}")
    return result


def solve_to_files(model: EndoCoT, task: str, puzzle: Any, out_dir: str | Path, steps: int = 10,
                   seed: int = 0) -> dict[str, Any]:
    """Solve one puzzle and write ``puzzle.png``, ``answer.png`` (the drawn image) and
    ``truth.png`` (the rendered solution) into ``out_dir``.

    Returns:
        ``{"answer": parsed answer as text, "solved": checked, "truth": the true answer text, "files": [...]}``.
    """
    module = TASKS[task]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    drawn, answers, solved = solve(model, task, [puzzle], steps, seed)
    files = [render.save_png(image, out / name) for image, name in
             ((puzzle.render_puzzle(), "puzzle.png"), (drawn[0], "answer.png"), (puzzle.render_solution(), "truth.png"))]
    return {"answer": module.answer_text(answers[0]), "solved": solved[0], "truth": puzzle.answer_text(),
            "files": [str(f) for f in files]}

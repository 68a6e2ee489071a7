"""Denoisers train through the one :class:`latentcot.train.trainer.Trainer`.

A denoiser (an MLP on the JiT toy, a DiT on images) is trained with :meth:`FlowMatching.loss` on
batches drawn step by step from a sampling function. :class:`DenoiserBatches` is that stream
(a :class:`latentcot.train.trainer.BatchStream`: it owns the generator it draws data with and the
one the loss draws times and noise with, so a resumed run draws what an uninterrupted one would);
:class:`TrainableDenoiser` is the model as the trainer sees it. The trainer then gives the toys
what language models have: atomic safetensors checkpoints, ``--resume``, a time budget, JSONL +
TensorBoard logs and a progress bar. The optimisation is the toys' own: Adam (AdamW without
weight decay), one cosine from the first step to 0 at the last, no clipping.

Example::

    net, flow = MLPDenoiser(8), FlowMatching(target="x")
    result = train_denoiser(net, flow, lambda n, g: (spiral(n, g) @ P.T, None), steps=2000,
                            run_dir="runs/toy", save_every=500)
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from latentcot.diffusion.formulation import FlowMatching
from latentcot.errors import LatentCotError
from latentcot.methods.base import Batch, LossOutput
from latentcot.train.config import TrainConfig
from latentcot.train.distributed import init_distributed
from latentcot.train.trainer import Trainer, stream_generators

SampleFn = Callable[[int, torch.Generator], tuple[Tensor, "Tensor | None"]]
"""``(batch size, generator) -> (clean data x, condition or None)``: fresh training data drawn
with the generator it is given (never the global RNG: a resumed run must draw the same)."""


class DenoiserBatches:
    """Batches for a denoiser, a :class:`latentcot.train.trainer.BatchStream` of one stage.

    Args:
        sample: draws ``(x, cond)`` for a batch size with a generator (:data:`SampleFn`).
        batch_size: rows per batch.
        seed: seeds the data generator (``seed``) and the loss's times and noise (``seed + 1``).
        size: the number of examples ``sample`` draws from (0: fresh data at every step, as the
            toy's spiral); recorded in checkpoints, and a resume with another size is refused.
        device: where the loss's generator lives (the model's device).
        rank, world_size: the process this stream draws for under torchrun (its own rows, seeded
            with :func:`latentcot.train.trainer.rank_seed`); 0 and 1 for one process.
    """

    def __init__(self, sample: SampleFn, batch_size: int, seed: int = 0, size: int = 0,
                 device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1) -> None:
        self.sample, self.batch_size, self.size = sample, batch_size, size
        self.rank, self.world_size = rank, world_size
        self.data, self.noise = stream_generators(seed, rank, device)

    def __len__(self) -> int:
        return self.size

    def stage_for_step(self, step: int, progress: float) -> int:
        return 0

    def next_batch(self, stage: int) -> Batch:
        x, cond = self.sample(self.batch_size, self.data)
        return {"x": x, "cond": cond, "generator": self.noise}

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.data.get_state(), "noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.data.set_state(state["data"])
        self.noise.set_state(state["noise"])


class TrainableDenoiser(nn.Module):
    """A denoiser as the trainer trains it (a :class:`latentcot.methods.base.Trainable`): the
    network is the ``backbone`` (a checkpoint's ``model.safetensors`` holds its state dict, as
    :func:`latentcot.diffusion.models.save_denoiser` writes it) and ``forward`` is the flow's loss."""

    name = "denoiser"
    tokenizer = None
    reset_optimizer_per_stage = False

    def __init__(self, net: nn.Module, flow: FlowMatching) -> None:
        super().__init__()
        self.backbone, self.flow = net, flow
        self.config = flow.config()

    def forward(self, batch: Batch) -> LossOutput:
        loss = self.flow.loss(self.backbone, batch["x"], batch["cond"], batch["generator"])
        return LossOutput(loss, {})


def train_denoiser(
    net: nn.Module,
    flow: FlowMatching,
    sample: SampleFn,
    steps: int,
    batch: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    save_every: int = 0,
    log_every: int = 100,
    size: int = 0,
    run_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``net`` in place on ``flow.loss`` for ``steps`` steps of ``batch`` rows.

    Adam at ``lr`` decayed by one cosine to 0 at the last step (the toys' recipe), through the
    :class:`Trainer`: ``run_dir`` gets ``metrics.jsonl``, TensorBoard events and checkpoints
    every ``save_every`` steps and at the end (a temporary folder, deleted, when None), and
    ``resume`` continues exactly from its latest checkpoint. Under torchrun the processes train
    one model by DDP, each on its own ``batch`` rows per step (``run_dir`` is then required).

    Returns:
        :meth:`Trainer.fit`'s result: among others ``loss``, the mean loss of the last
        ``log_every`` steps (fewer when ``steps`` is not a multiple), and ``step``.
    """
    cfg = TrainConfig(lr=lr, weight_decay=0.0, warmup_steps=0, schedule="cosine_from_start", batch_size=batch,
                      max_steps=steps, clip_grad=0.0, bf16=False, log_every=log_every, save_every=save_every,
                      keep_last=2, seed=seed)
    ctx = init_distributed()  # the trainer's device (a GPU when there is one): the loss's generator lives there
    if ctx.world_size > 1 and run_dir is None:
        raise LatentCotError("training a denoiser under torchrun needs a run folder (run_dir): the processes share it")
    stream = DenoiserBatches(sample, batch, seed, size, ctx.device, ctx.rank, ctx.world_size)
    model = TrainableDenoiser(net.to(ctx.device), flow)
    config = run_config or {"flow": flow.config(), "train": {"steps": steps, "batch": batch, "lr": lr, "seed": seed}}
    if run_dir is not None:
        return Trainer(model, stream, cfg, run_dir, dist=ctx, run_config=config).fit(resume=resume, overwrite=overwrite)
    with tempfile.TemporaryDirectory(prefix="latentcot-denoiser-") as tmp:
        result = Trainer(model, stream, cfg, tmp, dist=ctx, run_config=config).fit()
    return {**result, "checkpoint": None}

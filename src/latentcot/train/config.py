"""The trainer's typed config: one dataclass, every field with a default and a help string.

YAML (the ``train:`` section of a run config) overrides the defaults and dotted CLI keys
(``train.lr=3e-4``) override the YAML; see :mod:`latentcot.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from latentcot.config import option
from latentcot.errors import LatentCotError


@dataclass
class TrainConfig:
    """Optimisation, curriculum, logging and distribution settings shared by every method."""

    lr: float = option(1e-4, "peak learning rate of AdamW")
    weight_decay: float = option(0.01, "AdamW decoupled weight decay (not on biases and norms unless decay_all_params)")
    decay_all_params: bool = option(
        False, "weight decay on every parameter, biases and norm scales too (the Coconut reference code)"
    )
    optimizer_reset: Literal["method", "none", "stage", "epoch"] = option(
        "method",
        "when AdamW starts afresh: as the method asks (Coconut: each stage), never, at each curriculum "
        "stage, or every epoch (the Coconut reference code)",
    )
    drop_last: bool = option(
        True, "drop the examples that cannot fill a whole optimizer step; False keeps the last partial "
        "batch (the Coconut reference code; needs grad_accum 1 on one process)",
    )
    betas: list[float] = option([0.9, 0.999], "AdamW (beta1, beta2)")
    warmup_steps: int = option(0, "optimizer steps of linear warm-up from lr/warmup_steps to lr")
    rewarm_steps: int = option(
        0, "after every optimizer reset (train.optimizer_reset), ramp the learning rate linearly again over "
        "this many steps, from 1/rewarm_steps of the schedule's value; 0: no ramp after a reset"
    )
    stage_retries: int = option(
        0, "rewind a curriculum stage whose training loss (train.stage_retry_metric), averaged over its last "
        "epoch, is still above train.stage_retry_loss when it ends: the weights and AdamW go back to where the stage started and "
        "the stage runs again on the next epochs' data order, at most this many times per stage; the "
        "epochs come out of the last stage, so the run keeps its length (a rewind that would leave the last "
        "stage fewer epochs than the rewound stage has is not made); 0: never (every paper's loop)"
    )
    stage_retry_loss: float = option(
        0.5, "the bound of train.stage_retries: a stage whose last epoch's mean of train.stage_retry_metric "
        "is above it is rewound"
    )
    stage_retry_metric: str = option(
        "loss", "what train.stage_retries watches: the training loss, or any value the method logs "
        "(SIM-CoT: answer_loss, the answer token's cross-entropy; step_loss, the step decoder's)"
    )
    stage_retry_from: Literal["stage", "previous", "extend"] = option(
        "stage", "where train.stage_retries rewinds a stage that ends unlearned: to its own start, or to the "
        "start of the stage before it (which then runs again on new data orders, and the stage after it; "
        "the first stage of the run goes back to its own start); 'extend' rewinds nothing: the stage goes on "
        "from where it is for as many epochs again, as if it had been that much longer. On the 8-number chain "
        "a SIM-CoT stage that stalled at the same loss from its own start learned once the stage before it ran "
        "again; at two thoughts per step, stalled stages learned when they went on longer (docs/latent_methods.md)"
    )
    schedule: Literal["cosine", "linear", "constant", "cosine_from_start", "wsd"] = option(
        "constant", "learning-rate decay after warm-up, down to 0 at the last step; cosine_from_start: one "
        "cosine over the whole run with the warm-up ramp multiplied in (the EndoCoT recipe); wsd (warm-up, "
        "stable, decay): constant, then linear to 0 over the last train.decay_fraction of the run"
    )
    decay_fraction: float = option(
        0.2, "schedule wsd: the share of the run's steps (or of max_seconds) over which the lr decays to 0"
    )
    batch_size: int = option(8, "examples per micro-batch on each process")
    grad_accum: int = option(1, "micro-batches accumulated per optimizer step")
    max_steps: int = option(0, "total optimizer steps; 0 means epochs x steps per epoch")
    epochs: int = option(1, "passes over the training set (used when max_steps is 0)")
    max_seconds: float = option(
        0.0, "time budget in seconds of training, summed over resumes (0: none): the run stops when it is "
        "spent, and the learning-rate decay (and a batch stream's stage) follows the further of the step "
        "and time fractions, so a run cut short still decays to 0; not reproducible, being timed"
    )
    clip_grad: float = option(1.0, "clip the global gradient norm to this value; 0 disables")
    bf16: bool = option(True, "bfloat16 autocast for forward passes (CUDA only; ignored on CPU)")
    fused_optimizer: bool = option(
        False, "fused AdamW kernel on CUDA (fewer kernel launches, faster for tiny models; ignored on CPU)"
    )
    log_every: int = option(10, "optimizer steps between metric lines (metrics.jsonl, TensorBoard)")
    save_every: int = option(0, "optimizer steps between checkpoints; 0 saves only at the end")
    keep_last: int = option(2, "checkpoints kept in run_dir/checkpoints; 0 keeps all")
    eval_every: int = option(0, "optimizer steps between eval_fn calls; 0 evaluates only at the end")
    num_workers: int = option(0, "DataLoader worker processes that run the method's collate")
    distributed: Literal["none", "ddp", "fsdp"] = option(
        "ddp", "how to wrap the method when torchrun starts several processes (ignored on one)"
    )
    find_unused_parameters: bool = option(
        False, "DDP: allow parameters without gradient in a step (e.g. a module unused in stage 0)"
    )
    seed: int = option(0, "seed for initialisation, data order and sampling (each rank uses seed + rank)")

    def __post_init__(self) -> None:
        positive = ("batch_size", "grad_accum", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise LatentCotError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "warmup_steps", "rewarm_steps", "stage_retries", "save_every", "keep_last", "eval_every", "num_workers",
                     "max_seconds"):
            if getattr(self, name) < 0:
                raise LatentCotError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.max_steps == 0 and self.epochs < 1:
            raise LatentCotError("set max_steps > 0 or epochs >= 1: the run has no length")
        if self.stage_retry_loss <= 0:
            raise LatentCotError(f"stage_retry_loss must be positive, got {self.stage_retry_loss}")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise LatentCotError(f"decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if self.lr <= 0:
            raise LatentCotError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise LatentCotError(f"weight_decay must be 0 or more, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise LatentCotError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.clip_grad < 0:
            raise LatentCotError(f"clip_grad must be 0 (off) or positive, got {self.clip_grad}")
        if not self.drop_last and self.grad_accum != 1:
            raise LatentCotError(f"drop_last: false needs grad_accum 1, got {self.grad_accum}")
        # cosine_from_start multiplies the ramp into its cosine: a warm-up longer than the run just ramps part way
        if self.max_steps and self.warmup_steps >= self.max_steps and self.schedule in ("cosine", "linear"):
            raise LatentCotError(
                f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps}) "
                f"for the {self.schedule} schedule to decay"
            )


# The Coconut reference code's training loop (github.com/facebookresearch/coconut, run.py): a fresh
# AdamW every epoch with weight decay on every parameter, a constant learning rate without
# warm-up, no gradient clipping, and the last partial batch kept. Use it as dotted overrides
# (`latentcot train cfg.yaml train.optimizer_reset=epoch ...`, see REFERENCE_LOOP_OVERRIDES) or
# as ``TrainConfig(**REFERENCE_LOOP, lr=..., ...)``.
REFERENCE_LOOP: dict[str, object] = {
    "optimizer_reset": "epoch",
    "decay_all_params": True,
    "schedule": "constant",
    "warmup_steps": 0,
    "clip_grad": 0.0,
    "drop_last": False,
}
REFERENCE_LOOP_OVERRIDES = [f"train.{k}={str(v).lower()}" for k, v in REFERENCE_LOOP.items()]

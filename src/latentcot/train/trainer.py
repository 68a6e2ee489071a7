"""One training loop for every model: AdamW, warm-up + decay, accumulation, curriculum,
DDP/FSDP under torchrun, exact resume, a time budget, JSONL + TensorBoard logs.

The model is a :class:`latentcot.methods.base.Trainable`: an ``nn.Module`` with ``name``,
``config``, ``backbone``, ``tokenizer`` (or None), ``reset_optimizer_per_stage`` and ``forward(batch)
-> LossOutput``. Its batches come in one of two ways:

- a list of examples: epochs over a seeded permutation, each micro-batch made by the method's
  ``collate(examples, stage)``, the stage by its ``stage_for_epoch(epoch)`` (a language-model
  :class:`latentcot.methods.base.Method`; the method owns its curriculum, and with
  ``train.stage_retries`` the trainer rewinds a stage that ends unlearned);
- a :class:`BatchStream`: batches drawn step by step, the stage by ``stage_for_step`` (EndoCoT
  samples its puzzles with replacement); under torchrun each rank's stream draws its own batches
  (:func:`rank_seed`), DDP only.

The trainer needs nothing else. Launch::

    latentcot train cfg.yaml                                     # one process
    torchrun --nproc_per_node N -m latentcot.cli train cfg.yaml  # N processes (DDP or FSDP)

Example::

    trainer = Trainer(method, examples, TrainConfig(lr=3e-4, epochs=3), "runs/coconut")
    metrics = trainer.fit(resume=True)
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from latentcot.config import to_dict
from latentcot.errors import LatentCotError
from latentcot.train import checkpoint as ckpt
from latentcot.train.config import TrainConfig
from latentcot.train.distributed import DistContext, init_distributed, seed_everything

if TYPE_CHECKING:
    from latentcot.methods.base import Batch, Method, Trainable

EvalFn = Callable[[Any], dict[str, float]]  # called with the trained model (a Trainable)


def _warmup(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up: (step + 1) / warmup_steps, then 1."""
    return min(1.0, (step + 1) / max(1, cfg.warmup_steps))


def _decay(step: int, cfg: TrainConfig, total_steps: int, time_fraction: float) -> float:
    """The decay part of the schedule; ``time_fraction`` (of ``cfg.max_seconds``) moves it on when
    time runs out faster than steps."""
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine_from_start":  # over the whole run, the warm-up ramp multiplied in
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(step / total_steps, time_fraction))))
    if step < cfg.warmup_steps:
        return 1.0
    if cfg.schedule == "wsd":  # stable until the last decay_fraction of the run, then linear to 0
        stable = 1.0 - cfg.decay_fraction
        done = max(step / max(1, total_steps), time_fraction)
        return 1.0 - min(1.0, max(0.0, (done - stable) / cfg.decay_fraction))
    progress = min(1.0, max((step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps), time_fraction))
    if cfg.schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(step: int, cfg: TrainConfig, total_steps: int, time_fraction: float = 0.0) -> float:
    """Multiplier of ``cfg.lr`` for optimizer step ``step`` (0-based): linear warm-up, then decay.

    ``cosine`` and ``linear`` decay after the warm-up, to 0 at ``total_steps``; ``cosine_from_start``
    decays over the whole run with the warm-up multiplied in; ``wsd`` holds the lr until the last
    ``cfg.decay_fraction`` of the steps and then decays it linearly to 0. ``time_fraction``: the share of
    ``cfg.max_seconds`` spent (the decay follows it when it is ahead of the steps).
    """
    return _warmup(step, cfg) * _decay(step, cfg, total_steps, time_fraction)


def learning_rate(step: int, cfg: TrainConfig, total_steps: int, time_fraction: float = 0.0) -> float:
    """The learning rate of optimizer step ``step``: ``cfg.lr`` x warm-up x decay, multiplied left to
    right (so EndoCoT's own loop, ``lr * warm-up * 0.5 * (1 + cos)``, is matched bit for bit; for
    the other schedules one factor is 1 and this equals ``cfg.lr * lr_factor(...)`` exactly)."""
    return cfg.lr * _warmup(step, cfg) * _decay(step, cfg, total_steps, time_fraction)


class StepLR(torch.optim.lr_scheduler.LRScheduler):
    """Sets every group's learning rate to ``lr_at(step)``: an absolute value, not a factor of a
    base lr (``LambdaLR`` multiplies ``base_lr * factor``, which rounds a product of three
    differently). Its state is the step count; ``lr_at`` is rebuilt with the trainer."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float]) -> None:
        self.lr_at = lr_at
        super().__init__(optimizer)

    def get_lr(self) -> list[float | torch.Tensor]:
        return [self.lr_at(self.last_epoch)] * len(self.optimizer.param_groups)

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "lr_at"}

    def refresh(self) -> None:
        """Set the current step's learning rate again, after something ``lr_at`` reads has changed."""
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr


@runtime_checkable
class BatchStream(Protocol):
    """Training batches drawn step by step instead of epochs over a list of examples.

    EndoCoT samples its puzzles with replacement and switches from stage 1 to stage 2 after a
    number of steps (or a share of the time budget). The stream owns its random generators, those
    it draws batches with and any it hands the loss inside a batch, and returns their state from
    ``state_dict``: checkpoints keep it, so a resumed run draws what an uninterrupted one would.

    Under torchrun (DDP) every rank draws its own ``batch_size`` rows, so a step sees
    ``batch_size x world_size`` of them, as with a list of examples: a stream used there has
    ``rank`` and ``world_size`` attributes naming the process it draws for (seeded with
    :func:`rank_seed`), which the trainer checks; checkpoints keep every rank's stream state.
    """

    def __len__(self) -> int:
        """The number of examples batches are drawn from (recorded in checkpoints; resume checks it)."""
        ...

    def stage_for_step(self, step: int, progress: float) -> int:
        """The curriculum stage of 0-based optimizer step ``step``; ``progress`` in [0, 1] is the
        share of the run done: ``step / total_steps``, or of ``train.max_seconds`` when further."""
        ...

    def next_batch(self, stage: int) -> Batch:
        """The next micro-batch of ``stage``, handed as it is to the model's ``forward``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The stream's random state (tensors and plain values)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        ...


def rank_seed(seed: int, rank: int) -> int:
    """The seed rank ``rank`` of a job seeds its batch stream's generators with: ``seed`` itself on
    rank 0 (one process draws what it always drew); on the others a 32-bit seed derived from
    ``(seed, rank)`` by numpy's ``SeedSequence`` (torch's CPU generator keeps only 32 bits of a
    seed, so ``seed + rank * 2**32`` would draw rank 0's rows again)."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(1)[0])


def stream_generators(seed: int, rank: int, device: torch.device | str) -> tuple[torch.Generator, torch.Generator]:
    """A batch stream's two generators for rank ``rank``: one on CPU that draws the batches (seeded
    :func:`rank_seed`) and one on ``device`` that the loss draws with inside a batch (that seed + 1)."""
    base = rank_seed(seed, rank)
    return torch.Generator().manual_seed(base), torch.Generator(device=device).manual_seed(base + 1)


def epoch_batches(
    num_examples: int, epoch: int, cfg: TrainConfig, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This rank's micro-batches (example indices) for one epoch.

    The order is a permutation seeded by (seed, epoch); the tail that cannot fill a whole
    optimizer step on every rank is dropped (kept, as a last partial batch, when ``drop_last`` is
    off), and rank r takes every world_size-th example
    (as ``DistributedSampler`` does). So one optimizer step sees the same examples whatever the
    split between batch_size, grad_accum and world_size.
    """
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    order = torch.randperm(num_examples, generator=generator).tolist()
    per_step = cfg.batch_size * cfg.grad_accum * world_size
    usable = (num_examples // per_step) * per_step
    if not cfg.drop_last:  # keep the last partial batch (Coconut's reference loop)
        if world_size > 1:
            raise LatentCotError("train.drop_last: false runs on one process only (the ranks would take unequal steps)")
        usable = num_examples
    if usable == 0:
        raise LatentCotError(
            f"{num_examples} training examples are fewer than one optimizer step needs "
            f"(batch_size {cfg.batch_size} x grad_accum {cfg.grad_accum} x {world_size} processes)"
        )
    shard = order[:usable][rank::world_size]
    return [shard[i : i + cfg.batch_size] for i in range(0, len(shard), cfg.batch_size)]


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool = False) -> list[dict[str, Any]]:
    """AdamW groups: matrices decay, vectors (biases, norm scales) do not — unless ``decay_all``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_all:
        return [{"params": params, "weight_decay": weight_decay}]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Trains one model on a list of examples or a batch stream; the whole loop is :meth:`fit`.

    Args:
        method: the model (a :class:`latentcot.methods.base.Trainable`: owns ``backbone`` and any
            extra trainable parts); with a list of examples, a language-model ``Method``.
        train_examples: records handed to ``method.collate`` in micro-batches, or a
            :class:`BatchStream` that supplies the batches itself (``cfg.max_steps`` then sets the
            run's length; one process).
        cfg: the trainer config.
        run_dir: where metrics, TensorBoard events and checkpoints go.
        eval_fn: called as ``eval_fn(method)`` on every rank every ``cfg.eval_every`` steps and
            at the end (method in eval mode, no grad); returns numbers to log (rank 0's are kept).
        dist: the process context; by default :func:`init_distributed` is called.
        run_config: the full resolved run config to record in the run folder and checkpoints
            (defaults to ``{"method": method.config, "train": cfg}``).
        checked_run_dir: the caller has already run :func:`checkpoint.prepare_run_dir` (the
            recipe does, before writing its config); otherwise :meth:`fit` does.
    """

    def __init__(
        self,
        method: Trainable,
        train_examples: Sequence[Any] | BatchStream,
        cfg: TrainConfig,
        run_dir: str | Path,
        eval_fn: EvalFn | None = None,
        dist: DistContext | None = None,
        run_config: dict[str, Any] | None = None,
        checked_run_dir: bool = False,
    ) -> None:
        self.method = method
        self.stream = train_examples if isinstance(train_examples, BatchStream) else None
        self.examples = train_examples
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.eval_fn = eval_fn
        self.dist = dist or init_distributed()
        self.run_config = run_config or {"method": to_dict(method.config), "train": to_dict(cfg)}
        self.checked_run_dir = checked_run_dir
        world = self.dist.world_size
        self.fsdp = world > 1 and cfg.distributed == "fsdp"
        if self.fsdp and cfg.stage_retries:
            raise LatentCotError("train.stage_retries is not supported with train.distributed=fsdp yet (use ddp)")
        if self.stream is not None:
            if not cfg.max_steps or cfg.optimizer_reset == "epoch":
                raise LatentCotError("a batch stream needs train.max_steps > 0 and no train.optimizer_reset=epoch "
                                     "(it has no epochs)")
            drawn_for = (getattr(self.stream, "rank", 0), getattr(self.stream, "world_size", 1))
            if world > 1 and (cfg.distributed != "ddp" or drawn_for != (self.dist.rank, world)):
                raise LatentCotError(
                    f"a batch stream trains under torchrun with train.distributed=ddp (got {cfg.distributed}) and "
                    f"draws this rank's own batches: built for rank {drawn_for[0]} of {drawn_for[1]}, this is rank "
                    f"{self.dist.rank} of {world} (give the stream rank= and world_size=)")
            self.steps_per_epoch = cfg.max_steps
            if cfg.stage_retries:
                raise LatentCotError("train.stage_retries rewinds the stages of an epoch curriculum; a batch stream "
                                     "has no epochs (set it to 0)")
        else:
            self.steps_per_epoch = len(epoch_batches(len(train_examples), 0, cfg, 0, world)) // cfg.grad_accum
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.total_epochs = math.ceil(self.total_steps / max(1, self.steps_per_epoch))
        self.effective_batch_size = cfg.batch_size * cfg.grad_accum * world
        self.step = self.epoch = self.position = 0  # position: micro-batches done in this epoch
        self.stage: int | None = None  # a stream's stage at the last step (None before the first)
        self.reset_step: int | None = None  # the step at which AdamW last started afresh (None: never)
        # train.stage_retries: epochs spent on rewound stages (the curriculum's epoch is epoch minus
        # these), rewinds done per stage, and train.stage_retry_metric over this epoch so far (sum,
        # steps) and its mean over the last whole epoch
        self.epochs_repeated = 0
        self.retries: dict[int, int] = {}
        self.epoch_loss: list[float] = [0.0, 0]
        self.last_epoch_loss: float | None = None
        self.seconds = 0.0  # training time before this fit() (restored on resume)
        self._clock = time.perf_counter()  # when this fit() started counting
        self.last_metrics: dict[str, float] = {}
        # the log window at the last checkpoint: summed loss and logs over its steps (restored on resume)
        self.window: dict[str, Any] = {"loss": 0.0, "sums": {}, "steps": 0}

    # --- set-up ---------------------------------------------------------------------------

    @property
    def _module(self) -> nn.Module:
        """The method as the ``nn.Module`` every method is (see :mod:`latentcot.methods.base`)."""
        return cast(nn.Module, self.method)

    @property
    def _lm(self) -> Method:
        """The method as a language-model ``Method`` (``collate``, ``stage_for_epoch``): what a list of
        examples comes with, and the only kind several processes train."""
        return cast("Method", self.method)

    def _training_seconds(self) -> float:
        return self.seconds + time.perf_counter() - self._clock

    def _time_fraction(self) -> float:
        return self._training_seconds() / self.cfg.max_seconds if self.cfg.max_seconds else 0.0

    def _progress(self) -> float:
        """The share of the run done: of its steps, or of its time budget when that is further."""
        return max(self.step / self.total_steps, self._time_fraction())

    def _wrap(self) -> nn.Module:
        self._module.to(self.dist.device)
        if self.dist.world_size == 1 or self.cfg.distributed == "none":
            return self._module
        if self.fsdp:
            from torch.distributed.fsdp import fully_shard

            for tensor in self._module.state_dict().values():  # FSDP does not sync the init itself
                dist.broadcast(tensor, src=0)
            block_names = set(self._lm.backbone._no_split_modules or ())
            for module in self._lm.backbone.modules():
                if type(module).__name__ in block_names:
                    fully_shard(module)
            # fully_shard returns its argument, its class swapped for one deriving from both
            # FSDPModule and the module's own class
            return cast(nn.Module, fully_shard(self._module))
        device_ids = [self.dist.local_rank] if self.dist.device.type == "cuda" else None
        return DistributedDataParallel(
            self._module, device_ids=device_ids, find_unused_parameters=self.cfg.find_unused_parameters
        )

    def _sync_gradients(self, model: nn.Module, sync: bool) -> Any:
        """Skip the gradient all-reduce on all but the last micro-batch of a step."""
        if self.fsdp:
            model.set_requires_gradient_sync(sync)  # type: ignore[operator]
            return nullcontext()
        if isinstance(model, DistributedDataParallel) and not sync:
            return model.no_sync()
        return nullcontext()

    # --- checkpoints ------------------------------------------------------------------------

    def _save(self, model: nn.Module, window: dict[str, Any], root: Path | None = None, keep_last: int | None = None
              ) -> Path | None:
        """Write a checkpoint (into ``root``, by default the run folder); ``window`` is this rank's log
        window so far (summed loss and logs, steps), kept so that a resumed run logs the same means as an
        uninterrupted one."""
        method_state = None
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

            options = StateDictOptions(full_state_dict=True, cpu_offload=True)
            full_state, optimizer_state = get_state_dict(model, self.optimizer, options=options)
            method_state = cast(dict[str, torch.Tensor], full_state)  # full_state_dict: plain tensors
        else:
            optimizer_state = self.optimizer.state_dict()
        rng: list[dict[str, Any] | None] = [_rng_state()]
        windows: list[dict[str, Any] | None] = [window]
        local_stream = self.stream.state_dict() if self.stream is not None else None
        streams: list[dict[str, Any] | None] = [local_stream]
        if self.dist.world_size > 1:
            # every rank's RNG, log window and batch stream go into the checkpoint; all_gather_object
            # pickles in memory between the job's own processes, nothing pickled is ever written or read back
            rng, windows = [None] * self.dist.world_size, [None] * self.dist.world_size
            dist.all_gather_object(rng, _rng_state())
            dist.all_gather_object(windows, window)
            if self.stream is not None:
                streams = [None] * self.dist.world_size
                dist.all_gather_object(streams, local_stream)
        path = None
        if self.dist.is_main:
            stage = self._lm.stage_for_epoch(self._curriculum_epoch()) if self.stream is None else self.stage
            info = {
                "config": self.run_config,
                "step": self.step,
                "epoch": self.epoch,
                "stage": stage,
                "position": self.position,
                "world_size": self.dist.world_size,
                "batch_size": self.cfg.batch_size,
                "grad_accum": self.cfg.grad_accum,
                "num_examples": len(self.examples),
                "seconds": self._training_seconds(),
                "reset_step": self.reset_step,
                "epochs_repeated": self.epochs_repeated,
                "stage_retries": {str(k): v for k, v in self.retries.items()},
                "epoch_loss": self.epoch_loss,
                "last_epoch_loss": self.last_epoch_loss,
            }
            state: dict[str, Any] = {"optimizer": optimizer_state, "scheduler": self.scheduler.state_dict(), "rng": rng,
                     "log_window": windows}
            if self.stream is not None:  # one process: its stream's state; several: a list by rank
                state["stream"] = streams[0] if self.dist.world_size == 1 else streams
            path = ckpt.save_checkpoint(root or self.run_dir, self.method, info, state, method_state,
                                        self.cfg.keep_last if keep_last is None else keep_last)
        self.dist.barrier()
        return path

    def _restore(self, model: nn.Module, path: Path) -> None:
        info = ckpt.verify_checkpoint(path)
        now = {"world_size": self.dist.world_size, "batch_size": self.cfg.batch_size,
               "grad_accum": self.cfg.grad_accum, "num_examples": len(self.examples)}
        for key, value in now.items():
            if info[key] != value:
                raise LatentCotError(
                    f"{path}: cannot resume exactly with {key}={value}; the checkpoint used {info[key]}"
                )
        state = ckpt.load_trainer_state(path)
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

            options = StateDictOptions(full_state_dict=True, strict=False)
            model_state: dict[str, Any] = ckpt.read_method_state(path)
            set_state_dict(model, self.optimizer, model_state_dict=model_state,
                           optim_state_dict=state["optimizer"], options=options)
        else:
            ckpt.load_checkpoint(path, self.method)
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"][self.dist.rank])
        if "log_window" in state:  # checkpoints written before it have none: the window restarts
            self.window = state["log_window"][self.dist.rank]
        if self.stream is not None:
            stream = state["stream"]
            self.stream.load_state_dict(stream[self.dist.rank] if isinstance(stream, list) else stream)
            self.stage = info["stage"]
        self.step, self.epoch, self.position = info["step"], info["epoch"], info["position"]
        self.seconds = info.get("seconds", 0.0)  # checkpoints written before the time budget have none
        self.reset_step = info.get("reset_step")  # None in checkpoints written before train.rewarm_steps
        # none of these in checkpoints written before train.stage_retries
        self.epochs_repeated = info.get("epochs_repeated", 0)
        self.retries = {int(k): v for k, v in info.get("stage_retries", {}).items()}
        self.epoch_loss = info.get("epoch_loss", [0.0, 0])
        self.last_epoch_loss = info.get("last_epoch_loss")

    # --- logging ----------------------------------------------------------------------------

    def _log(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        # strict JSON: a non-finite number is written as null, never as a bare NaN
        row = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row, allow_nan=False) + "\n")
        for key, value in row.items():
            if key != "step" and value is not None:
                self.writer.add_scalar(key, value, row["step"])

    def _trim_metrics(self) -> None:
        """On resume: drop the rows logged after the checkpoint (they are logged again) and any
        line a kill cut short, so each step appears once."""
        path = self.run_dir / "metrics.jsonl"
        if not self.dist.is_main or not path.is_file():
            return
        keep = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                continue
            # a stage-end row at the checkpoint's step came after it was written: logged again
            if row["step"] < self.step or (row["step"] == self.step and "stage_end_loss" not in row):
                keep.append(line + "\n")
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(keep))
        tmp.replace(path)

    def _stop_non_finite(self, loss: float, grad_norm: float) -> None:
        latest = ckpt.latest_checkpoint(self.run_dir)
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet (train.save_every)"
        raise LatentCotError(
            f"step {self.step + 1}: loss {loss:.4g}, gradient norm {grad_norm:.4g} is not finite; training stopped "
            f"before this step changed the weights and {kept} (try a lower train.lr or train.clip_grad > 0)"
        )

    def _evaluate(self) -> None:
        self.method.eval()
        with torch.no_grad():
            results = self.eval_fn(self.method)  # type: ignore[misc]
        self.method.train()
        row = {"step": self.step, **{f"eval/{k}": float(v) for k, v in results.items()}}
        self._log(row)
        self.last_metrics.update(row)

    # --- the loop ---------------------------------------------------------------------------

    def _lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step``: the schedule's (:func:`learning_rate`), ramped
        again over ``train.rewarm_steps`` after the last optimizer reset."""
        lr = learning_rate(step, self.cfg, self.total_steps, self._time_fraction())
        if self.cfg.rewarm_steps and self.reset_step is not None and step - self.reset_step < self.cfg.rewarm_steps:
            lr *= (step - self.reset_step + 1) / self.cfg.rewarm_steps
        return lr

    def _start_optimizer_afresh(self) -> None:
        """Clear AdamW's moments before step ``self.step`` (and restart the lr ramp there)."""
        self.optimizer.state.clear()
        self.reset_step = self.step
        if self.cfg.rewarm_steps:  # the scheduler set this step's lr before it knew of the reset
            self.scheduler.refresh()

    def _reset_optimizer(self, stage: int, previous: int | None) -> bool:
        """Whether AdamW starts afresh now, at an epoch (or a stream's step) of ``stage`` that
        follows one of ``previous`` (``train.optimizer_reset``)."""
        when = self.cfg.optimizer_reset
        if when == "method":
            when = "stage" if self.method.reset_optimizer_per_stage else "none"
        return when == "epoch" or (when == "stage" and stage != previous)

    def _curriculum_epoch(self) -> int:
        """The epoch the method's curriculum sees: the trainer's, less the epochs of rewound stages."""
        return self.epoch - self.epochs_repeated

    def _end_epoch_loss(self, loss_sum: float, steps: float) -> float:
        """The mean of train.stage_retry_metric over the epoch just ended (and over every process)."""
        mean = torch.tensor(loss_sum / max(steps, 1), dtype=torch.float64, device=self.dist.device)
        if self.dist.world_size > 1:
            dist.all_reduce(mean)
            mean /= self.dist.world_size
        return float(mean)

    def _rewind_stage(self, model: nn.Module) -> bool:
        """At the first epoch of a new stage: whether the stage just ended is rewound
        (``train.stage_retries``): the mean of ``train.stage_retry_metric`` over its last epoch is above
        ``train.stage_retry_loss``, it has retries left, and the run has epochs enough to run it again
        and still give the last stage as many as that stage has. A rewind loads the weights and AdamW
        state saved where that stage began (``train.stage_retry_from: previous``: where the stage
        before it began) and moves the curriculum back to that stage's first epoch; the step count
        runs on. ``extend`` loads nothing: the curriculum goes back to the ended stage's first epoch
        with the weights and AdamW as they are, so the stage is that much longer. Every stage end
        above the bound logs a row (rewound or not)."""
        cfg, lm, epoch = self.cfg, self._lm, self._curriculum_epoch()
        ended = lm.stage_for_epoch(epoch - 1)
        loss = self.last_epoch_loss
        if lm.stage_for_epoch(epoch) == ended or loss is None or loss <= cfg.stage_retry_loss:
            return False
        done = self.retries.get(ended, 0)

        def stage_start(e: int) -> int:  # the first epoch of the stage that epoch e is in
            while e > 0 and lm.stage_for_epoch(e - 1) == lm.stage_for_epoch(e):
                e -= 1
            return e

        first = stage_start(epoch - 1)
        span, target = epoch - first, ended  # the ended stage's epochs; the stage whose start the run goes back to
        if cfg.stage_retry_from == "previous" and first > 0:
            # the stage before, when this run trained it (its start snapshot is kept beside this stage's)
            before = lm.stage_for_epoch(first - 1)
            if self._stage_snapshot(before) is not None:
                target, first = before, stage_start(first - 1)
        # the last stage must keep at least one such stage's epochs after the rewind
        last, to_last = lm.stage_for_epoch(1 << 30), 0
        while lm.stage_for_epoch(first + to_last) != last and to_last <= self.total_epochs:
            to_last += 1
        room = self.total_epochs - self.epoch - to_last >= span
        rewind = done < cfg.stage_retries and room
        # a row of its own in metrics.jsonl: the stage, its last epoch's loss, whether it was rewound
        row = {"step": self.step, "epoch": self.epoch, "stage": ended, "stage_end_loss": loss,
               "stage_rewound": int(rewind), "stage_retries": done + int(rewind)}
        if not rewind:
            self._log(row)
            if self.dist.is_main:
                why = (f"after {done} retries (train.stage_retries={cfg.stage_retries})" if room else
                       f"with too few epochs left to run it again and still give the last stage {span}")
                print(f"stage {ended} ended with {cfg.stage_retry_metric} {loss:.4f} > "
                      f"train.stage_retry_loss={cfg.stage_retry_loss} {why}: going on")
            return False
        if cfg.stage_retry_from == "extend":
            what = f"it goes on for {span} more epochs"
        else:
            snapshot = self._stage_snapshot(target)
            if snapshot is None:
                found = ckpt.list_checkpoints(self.run_dir / ckpt.STAGE_START)
                raise LatentCotError(f"{self.run_dir / ckpt.STAGE_START}: no snapshot of the start of stage {target} to "
                                     f"rewind to (found {[str(f) for f in found] or 'none'}); was the folder removed?")
            info = ckpt.read_info(snapshot)
            ckpt.load_checkpoint(snapshot, self.method)
            self.optimizer.load_state_dict(ckpt.load_trainer_state(snapshot)["optimizer"])
            if target != ended:  # the ended stage's start is stale: it is saved again when the run gets there
                self.dist.barrier()  # every process has read its snapshot
                if self.dist.is_main:
                    for later in ckpt.list_checkpoints(self.run_dir / ckpt.STAGE_START):
                        if later != snapshot:
                            shutil.rmtree(later)
            what = (f"rewound to {'its start' if target == ended else f'the start of stage {target}'} at step "
                    f"{info['step']}; it runs again from step {self.step}")
        self.epochs_repeated += epoch - first
        self.retries[ended] = done + 1
        self._log(row)
        if self.dist.is_main:
            print(f"stage {ended} ended with {cfg.stage_retry_metric} {loss:.4f} > "
                  f"train.stage_retry_loss={cfg.stage_retry_loss}: {what} (retry {done + 1} of {cfg.stage_retries})")
        return True

    def _stage_snapshot(self, stage: int) -> Path | None:
        """The saved start of ``stage`` in ``run_dir/stage_start`` (the newest, should there be two), or None."""
        found = [p for p in ckpt.list_checkpoints(self.run_dir / ckpt.STAGE_START) if ckpt.read_info(p).get("stage") == stage]
        return found[-1] if found else None

    def fit(self, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
        """Train to ``total_steps``; with ``resume`` continue exactly from the latest checkpoint.

        Args:
            resume: continue the run in ``run_dir`` (a fresh start when it has no checkpoint).
            overwrite: replace a run already in ``run_dir``; without either flag such a run is refused.

        Returns:
            The last logged training metrics and evaluation results, plus the final step,
            epoch, training seconds (summed over resumes) and checkpoint path.

        Raises:
            LatentCotError: ``run_dir`` holds another run; or a step's loss or gradient norm is
                not finite (the run stops before that step changes the weights; checkpoints
                written so far are kept).
        """
        cfg, ctx, method = self.cfg, self.dist, self.method
        if not self.checked_run_dir:
            ckpt.prepare_run_dir(self.run_dir, resume, overwrite)
            self.dist.barrier()
        model = self._wrap()
        method.train()
        beta1, beta2 = cfg.betas  # two numbers (checked by TrainConfig)
        fused = True if cfg.fused_optimizer and ctx.device.type == "cuda" else None  # None: torch's default
        self.optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.decay_all_params), lr=cfg.lr,
                                           betas=(beta1, beta2), fused=fused)
        self.seconds, self._clock = 0.0, time.perf_counter()
        self.scheduler = StepLR(self.optimizer, self._lr_at)
        latest = ckpt.latest_checkpoint(self.run_dir) if resume else None
        if latest is not None:
            self._restore(model, latest)
        else:
            seed_everything(cfg.seed + ctx.rank)
            if ctx.is_main:  # a fresh start: no stage of this run has begun (stage_retries)
                shutil.rmtree(self.run_dir / ckpt.STAGE_START, ignore_errors=True)
        if resume:
            self._trim_metrics()
        if ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.run_dir.mkdir(parents=True, exist_ok=True)
            meta = {"method": method.name, "config": self.run_config}
            (self.run_dir / "config.json").write_text(json.dumps(meta, indent=2))
            self.writer = SummaryWriter(self.run_dir / "tb", purge_step=self.step if latest else None)
            print(json.dumps(meta))
            data = (f"{self.steps_per_epoch} per epoch" if self.stream is None
                    else f"batches drawn from {len(self.examples)} examples")
            print(f"{'resuming from ' + str(latest) if latest else 'starting'}: {self.total_steps} steps, "
                  f"{data}, effective batch size {self.effective_batch_size} "
                  f"= {cfg.batch_size} x {cfg.grad_accum} accumulation x {ctx.world_size} processes")
        # in a log file (no terminal) a bar line every 30 s, not one per step
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not ctx.is_main, dynamic_ncols=True,
                   mininterval=0.1 if sys.stderr.isatty() else 30)
        autocast = partial(torch.autocast, ctx.device.type, torch.bfloat16, cfg.bf16 and ctx.device.type == "cuda")
        # a resumed run carries on the window its checkpoint was written in (so it logs the same means)
        loss_sum = torch.tensor(float(self.window["loss"]), device=ctx.device)
        log_sums: dict[str, float] = {k: float(v) for k, v in self.window["sums"].items()}
        log_steps, timed_steps, log_start = int(self.window["steps"]), 0, time.perf_counter()
        checkpoint = None
        micro_batches: Iterator[Batch]
        self._clock = time.perf_counter()  # time spent setting up is not training time
        finished = self.step >= self.total_steps or 0 < cfg.max_seconds <= self.seconds

        while not finished:
            if self.stream is not None:  # one step per pass: a stream's stage may change at any step
                stage = self.stream.stage_for_step(self.step, self._progress())
                if self.stage is not None and self._reset_optimizer(stage, self.stage):
                    self._start_optimizer_afresh()
                self.stage = stage
                micro_batches = (self.stream.next_batch(stage) for _ in range(cfg.grad_accum))
            else:
                lm = self._lm
                rewound = self.position == 0 and self.epoch > 0 and cfg.stage_retries > 0 and self._rewind_stage(model)
                epoch = self._curriculum_epoch()
                stage = lm.stage_for_epoch(epoch)  # the method owns its curriculum (Coconut)
                previous = lm.stage_for_epoch(epoch - 1) if epoch > 0 else None
                if rewound and cfg.stage_retry_from == "extend":
                    previous = stage  # the stage goes on: no fresh AdamW, no re-warm-up
                if self.position == 0 and self.epoch > 0 and self._reset_optimizer(stage, previous):
                    self._start_optimizer_afresh()  # fresh AdamW moments (Coconut)
                if (cfg.stage_retries and cfg.stage_retry_from != "extend" and self.position == 0
                        and stage != previous and not rewound):
                    # where this stage starts: what train.stage_retries rewinds to
                    self._save(model, {"loss": 0.0, "sums": {}, "steps": 0}, self.run_dir / ckpt.STAGE_START,
                               keep_last=2 if cfg.stage_retry_from == "previous" else 1)
                batches = epoch_batches(len(self.examples), self.epoch, cfg, ctx.rank, ctx.world_size)
                batches = batches[: self.steps_per_epoch * cfg.grad_accum]
                loader: DataLoader[Any] = DataLoader(
                    self.examples,  # type: ignore[arg-type]
                    batch_sampler=batches[self.position :],
                    collate_fn=partial(lm.collate, stage=stage),
                    num_workers=cfg.num_workers,
                    # own generator: creating the iterator must not draw from the global RNG
                    generator=torch.Generator().manual_seed(cfg.seed + self.epoch),
                )
                micro_batches = iter(loader)
            while True:
                step_loss = torch.zeros((), device=ctx.device)
                watched = 0.0  # train.stage_retry_metric, when it is one of the method's logs
                for i in range(cfg.grad_accum):
                    batch = {k: v.to(ctx.device) if isinstance(v, torch.Tensor) else v
                             for k, v in next(micro_batches).items()}
                    with self._sync_gradients(model, i == cfg.grad_accum - 1), autocast():
                        out = model(batch)
                    (out.loss / cfg.grad_accum).backward()
                    step_loss += out.loss.detach() / cfg.grad_accum
                    for key, value in out.logs.items():
                        log_sums[key] = log_sums.get(key, 0.0) + float(value) / cfg.grad_accum
                    if cfg.stage_retries and cfg.stage_retry_metric != "loss":
                        if cfg.stage_retry_metric not in out.logs:
                            raise LatentCotError(
                                f"train.stage_retry_metric={cfg.stage_retry_metric!r}: method '{method.name}' logs no "
                                f"such value (it logs: {', '.join(['loss', *sorted(set(out.logs) - {'loss'})])})")
                        watched += float(out.logs[cfg.stage_retry_metric]) / cfg.grad_accum
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad or math.inf)
                norm = grad_norm.full_tensor() if isinstance(grad_norm, DTensor) else grad_norm
                finite = (torch.isfinite(step_loss) & torch.isfinite(norm)).float()
                if ctx.world_size > 1:  # every rank stops together, none waits for the others
                    dist.all_reduce(finite, op=dist.ReduceOp.MIN)
                if not bool(finite):
                    bar.close()
                    if ctx.is_main:
                        self.writer.close()
                    self._stop_non_finite(float(step_loss), float(norm))
                loss_sum += step_loss
                if cfg.stage_retries:
                    value = float(step_loss) if cfg.stage_retry_metric == "loss" else watched
                    self.epoch_loss = [self.epoch_loss[0] + value, self.epoch_loss[1] + 1]
                lr = float(self.scheduler.get_last_lr()[0])
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                if self.stream is None:
                    self.position += cfg.grad_accum
                    if self.position == len(batches):
                        self.epoch, self.position = self.epoch + 1, 0
                        if cfg.stage_retries:
                            self.last_epoch_loss = self._end_epoch_loss(*self.epoch_loss)
                            self.epoch_loss = [0.0, 0]
                log_steps += 1
                timed_steps += 1
                bar.update(1)
                last = finished = self._progress() >= 1.0  # every step done, or the time budget spent

                if self.step % cfg.log_every == 0 or last:
                    if ctx.world_size > 1:
                        dist.all_reduce(loss_sum)
                        loss_sum /= ctx.world_size
                    elapsed = time.perf_counter() - log_start
                    row = {
                        "step": self.step, "epoch": self.epoch, "stage": stage,
                        "loss": loss_sum.item() / log_steps, "lr": lr,
                        "grad_norm": float(norm),
                        "examples_per_s": timed_steps * self.effective_batch_size / elapsed,
                        **{k: v / log_steps for k, v in log_sums.items()},
                    }
                    self._log(row)
                    self.last_metrics.update(row)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}", ex_s=f"{row['examples_per_s']:.1f}")
                    loss_sum.zero_()
                    log_sums, log_steps, timed_steps, log_start = {}, 0, 0, time.perf_counter()
                if self.eval_fn is not None and ((cfg.eval_every and self.step % cfg.eval_every == 0) or last):
                    self._evaluate()
                if (cfg.save_every and self.step % cfg.save_every == 0) or last:
                    checkpoint = self._save(model, {"loss": float(loss_sum), "sums": log_sums, "steps": log_steps})
                if last or self.position == 0:
                    break

        bar.close()
        if ctx.is_main:
            self.writer.close()
        if self.retries and ctx.is_main:
            print(f"stage retries: {dict(sorted(self.retries.items()))}; the run ended in stage "
                  f"{self._lm.stage_for_epoch(self._curriculum_epoch())}")
        return {**self.last_metrics, "step": self.step, "epoch": self.epoch, "stage_retries": dict(self.retries),
                "effective_batch_size": self.effective_batch_size, "seconds": self._training_seconds(),
                "checkpoint": str(checkpoint or ckpt.latest_checkpoint(self.run_dir))}

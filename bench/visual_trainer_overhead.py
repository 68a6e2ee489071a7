"""EndoCoT's training step through the one trainer against its former own loop, side by side.

    python bench/visual_trainer_overhead.py                      # maze 4x4 recipe, 200 steps, 3 rounds
    python bench/visual_trainer_overhead.py --steps 20 --rounds 1 --threads 1   # a quick check

Issue 15 asked that visual training gain checkpoints, resume and logs "with <= 5% overhead per
step against today's loops". The former loop (``visual.train.train`` before it moved into
:class:`latentcot.train.trainer.Trainer`) is kept below only as the timing reference; it is the
loop ``tests/test_visual_trainer.py`` checks the trainer against bit for bit. Both train the same
model from the same initial weights on the same puzzles for ``--steps`` steps (stage 1 then stage
2, the recipe's split), alternating ``--rounds`` times; each side keeps its best round. The
trainer runs as ``latentcot visual train`` does (metrics and TensorBoard every ``log_every``
steps), with no periodic checkpoint (``--save-every`` adds them). Writes
bench/results/visual_trainer_overhead.json and docs/results/visual_trainer_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_speed import machine_name  # noqa: E402

from latentcot.config import load_config, to_dict  # noqa: E402
from latentcot.train.distributed import DistContext  # noqa: E402
from latentcot.train.trainer import Trainer  # noqa: E402
from latentcot.visual.endocot import EndoCoT  # noqa: E402
from latentcot.visual.tasks import TASKS  # noqa: E402
from latentcot.visual.train import (  # noqa: E402
    PuzzleBatches,
    TrainableEndoCoT,
    VisualRunConfig,
    VisualTrainConfig,
    batch_of,
    build_model,
    prepare,
)

ROOT = Path(__file__).resolve().parents[1]


def former_loop(model: EndoCoT, data: dict[str, torch.Tensor], cfg: VisualTrainConfig, seed: int,
                record: bool = False) -> list[dict[str, float]]:
    """The former ``visual.train.train`` (commit 1d5c823), without its log lines and time limit;
    with ``record``, every step's stage, lr and unrounded losses (tests/test_visual_trainer.py
    checks the trainer against them bit for bit)."""
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    total = cfg.stage1_steps + cfg.stage2_steps
    g_cpu, g_dev = torch.Generator().manual_seed(seed), torch.Generator(device=device).manual_seed(seed + 1)
    n, steps = data["puzzle"].shape[0], []
    model.train()
    for step in range(total):
        progress = step / total
        stage = 1 if step < cfg.stage1_steps and progress < cfg.stage1_steps / total else 2
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps)) * 0.5 * (1 + math.cos(math.pi * progress))
        out = model.loss(batch_of(data, torch.randint(n, (cfg.batch_size,), generator=g_cpu), device), stage, g_dev)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        opt.step()
        if record:
            steps.append({"stage": stage, "lr": opt.param_groups[0]["lr"], **{k: v.item() for k, v in out.items()}})
    model.eval()
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs/visual/endocot_maze4.yaml"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--save-every", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench/results/visual_trainer_overhead.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs/results/visual_trainer_overhead.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    split = max(1, args.steps // 3)
    cfg = load_config(VisualRunConfig, args.config, [
        "device=cpu", "data.train_size=1000", f"train.stage1_steps={split}", f"train.stage2_steps={args.steps - split}",
        f"train.save_every={args.save_every}",
    ])
    torch.manual_seed(cfg.seed)
    data = prepare(cfg.data.task, TASKS[cfg.data.task].generate(cfg.data.train_size, cfg.data.size, cfg.seed),
                   cfg.model.latent_steps)
    start = build_model(cfg).state_dict()
    times: dict[str, list[float]] = {"former loop": [], "trainer": []}
    for _ in range(args.rounds):
        for side in times:
            model = build_model(cfg)
            model.load_state_dict(start)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                if side == "former loop":
                    former_loop(model, data, cfg.train, cfg.seed)
                else:
                    Trainer(TrainableEndoCoT(model), PuzzleBatches(data, cfg.train, cfg.seed, torch.device("cpu")),
                            cfg.train.trainer_config(cfg.seed), Path(tmp) / "run", dist=DistContext(),
                            run_config=to_dict(cfg), checked_run_dir=True).fit()
                times[side].append(time.perf_counter() - t0)
    best = {side: min(ts) for side, ts in times.items()}
    ratio = best["trainer"] / best["former loop"]
    result = {"config": args.config, "steps": args.steps, "rounds": args.rounds, "threads": args.threads,
              "save_every": args.save_every, "machine": machine_name(torch.device("cpu"), args.threads), "seconds": times,
              "ms_per_step": {side: 1000 * t / args.steps for side, t in best.items()}, "trainer_over_former": ratio}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# EndoCoT training step: the one trainer against the former own loop",
        "",
        f"Command: `python bench/visual_trainer_overhead.py --steps {args.steps} --rounds {args.rounds} "
        f"--threads {args.threads} --save-every {args.save_every}` ({Path(args.config).name}, full model, "
        f"CPU; best of {args.rounds} alternating rounds).",
        f"Machine: {machine_name(torch.device('cpu'), args.threads)}.",
        "",
        "| loop | ms per step | relative |",
        "|---|---|---|",
        f"| former own loop | {result['ms_per_step']['former loop']:.1f} | 1.00 |",
        f"| the trainer (metrics, TensorBoard{', checkpoints' if args.save_every else ''}) | "
        f"{result['ms_per_step']['trainer']:.1f} | {ratio:.3f} |",
        "",
    ]
    Path(args.doc).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

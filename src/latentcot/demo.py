"""`latentcot demo` (and `make demo`): the main job, end to end on CPU in minutes.

Trains micro (2-layer, 64-wide GPT-2) no-CoT, CoT and Coconut models from scratch on generated
2×2-digit multiplication in the iCoT format (digits reversed, partial products as steps),
evaluates each on held-out products not seen in training, prints one table of accuracy and
efficiency, and shows one question with each Coconut latent's nearest vocabulary tokens.

Why this task: it is the largest one a model learns on two CPU cores in a couple of minutes per
method. ProsQA (the real validation file is in the data directory) and 3×3/4×4 multiplication
stay near 0% for every method at this budget (measured: docs/results.md), so they could not
show a difference; there is no real validation file for 2×2, so the held-out set is generated
with another seed and filtered against the training questions. Nothing is precomputed: every number is measured in
this run. Checkpoints stay in ``<out>/<method>/checkpoints/`` for ``latentcot eval``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from latentcot.config import load_config
from latentcot.eval.evaluate import format_table
from latentcot.latent.diagnostics import nearest_tokens
from latentcot.train.recipe import RunConfig, load_trained, main

# one shared set-up, then what differs per method; every key is a RunConfig override
COMMON = [
    "data.task=multiplication",
    "data.generator={digits: 2}",
    "model.name_or_path=micro",
    "train.lr=1e-3",
    "train.schedule=cosine",
    "train.warmup_steps=20",
    "train.log_every=50",
    "eval.max_new_tokens=16",
    "eval.batch_size=256",
]
METHODS: dict[str, list[str]] = {
    "nocot": ["method={name: nocot}"],
    "cot": ["method={name: cot}", "eval.max_new_tokens=48"],
    # 2 steps -> stages 0, 1, 2 (4 epochs each), then the all-latent stage for the rest
    "coconut": ["method={name: coconut, c_thought: 1, max_latent_stage: 2, epochs_per_stage: 4}"],
}
# 2x2 digits has only 8,100 distinct questions: 6,000 draws cover about half of them, and the
# held-out 500 come from the other half, so a right answer there is computed, not remembered
SIZES = {  # (training records, epochs per method, held-out records)
    "full": (6000, {"nocot": 20, "cot": 20, "coconut": 20}, 500),
    "quick": (64, {"nocot": 1, "cot": 1, "coconut": 4}, 16),
}


def demo_config(method: str, out_dir: Path, quick: bool) -> RunConfig:
    """The resolved config of one demo run (also what ``<out>/<method>/config.yaml`` records)."""
    train_size, epochs, eval_size = SIZES["quick" if quick else "full"]
    overrides = [
        *COMMON,
        *METHODS[method],
        f"out_dir={out_dir / method}",
        f"data.train_size={train_size}",
        f"data.eval_size={eval_size}",
        f"train.epochs={epochs[method]}",
        f"train.batch_size={8 if quick else 32}",
    ]
    return load_config(RunConfig, None, overrides)


def run_demo(out_dir: Path = Path("runs/demo"), quick: bool = False) -> dict[str, Any]:
    """Train and compare the three methods; returns the per-method summaries (also in ``summary.json``)."""
    torch.manual_seed(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries, results, source = {}, [], ""
    began = time.perf_counter()
    for method in METHODS:
        cfg = demo_config(method, out_dir, quick)
        print(f"\n=== {method}: {cfg.model.name_or_path} preset from scratch, {cfg.data.train_size} generated "
              f"{cfg.data.task} {cfg.data.generator} records, {cfg.train.epochs} epochs, batch {cfg.train.batch_size}",
              flush=True)
        started = time.perf_counter()
        run = main(cfg)
        run["train_seconds_including_eval"] = time.perf_counter() - started
        summaries[method] = run
        source = run["eval_source"]
        from latentcot.eval.evaluate import EvalResult

        results.append(EvalResult(**run["eval"]))
    lines = [
        f"Trained from scratch in {time.perf_counter() - began:.0f} s on {_machine()}; held-out: {source}.",
        "",
        format_table(results),
        "",
    ]
    for method, run in summaries.items():
        t = run["train"]
        lines.append(f"- {method}: {t['step']} optimizer steps, final training loss {t['loss']:.3f}, "
                     f"{run['train_seconds_including_eval']:.0f} s (training + evaluation)")
    print("\n=== latentcot demo\n" + "\n".join(lines))
    _show_latents(out_dir / "coconut", source)
    (out_dir / "summary.json").write_text(json.dumps(summaries, indent=2, default=str))
    command = "latentcot demo" + (" --quick" if quick else "")
    (out_dir / "summary.md").write_text(
        f"## The demo (`{command}`, also `make demo`)\n\n" + "\n".join(lines) + "\n"
    )
    print(f"\ncheckpoints: {out_dir}/<method>/checkpoints/ ; try: latentcot eval {out_dir}/coconut --data <file>")
    return summaries


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _show_latents(run_dir: Path, source: str) -> None:
    method, cfg = load_trained(run_dir)
    predictions = json.loads((run_dir / "eval.json").read_text())["predictions"]
    example = predictions[0]
    out = method.reason([example["question"]], max_new_tokens=cfg.eval.max_new_tokens)
    print(f"\none held-out question ({source}):\n  {example['question'][-160:]}")
    print(f"  gold: {example['gold']}   coconut: {out.answers[0]}")
    assert out.latents is not None
    for i, words in enumerate(nearest_tokens(method.backbone, method.tokenizer, out.latents[0], k=4)):
        print(f"  latent {i}: " + "  ".join(f"{w} ({p:.2f})" for w, p in words))

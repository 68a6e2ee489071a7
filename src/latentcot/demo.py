"""`latentcot demo` (and `make demo`): the main job, end to end on CPU in minutes.

Trains small (2-layer, 128-wide GPT-2, preset ``shallow-128``) no-CoT and CoT models from
scratch on generated running sums ``a + b + c + d + e (mod 10)`` (the ``chain`` task: four
one-line steps ``a + b = x.``, then the answer), then SIM-CoT (on Coconut) from the CoT model
(Coconut's stage 0 *is* CoT, so it starts at stage 1), evaluates each on held-out questions not
seen in training, prints one table of accuracy and efficiency, and shows one question with each
SIM-CoT latent's nearest vocabulary tokens and decoded step. ``--coconut`` also trains plain
Coconut on the same schedule. ``--seed N`` changes the training data, initialisation and data
order (the held-out questions use N + 1).

Why this task: the answer needs four chained additions, which a 2-layer model cannot do in one
pass (no-CoT stays near the 10% of guessing) but learns at once when the steps are written (CoT)
— and every latent's true content is known, so the step decoder's text can be checked by eye.
It is also where, at this size, plain Coconut collapses once its last step is replaced (it
answers the same digit for every question; the Coconut reference code does the same on this
setup; hence not run by default), while SIM-CoT's step supervision keeps the steps in the
latents and its fifth thought, trained to write ``### answer``, carries the answer (``docs/latent_methods.md``).

The latent methods feed each thought back at the norm of the token embeddings
(``latent_scale: embedding``, a named departure from the paper): a model trained from scratch
ends with hidden states ~20x larger than its token embeddings, which drowns the position
embedding of every latent position (the runs that chose this: docs/latent_methods.md, "The
demo's settings"; a finished raw-vs-scaled comparison over seeds is not run yet).
ProsQA (its real validation file is in the data directory) and 3×3/4×4 multiplication stay near
0% for every method at this budget, so they could not show a difference; ``chain`` has no real
validation file, so the held-out set is generated with another seed and filtered against the
training questions. CODI is left out only for time (it runs teacher and student: about 2×
SIM-CoT's cost here). Nothing is precomputed: every number is measured in this run. Checkpoints
stay in ``<out>/<method>/checkpoints/`` for ``latentcot eval`` and ``latentcot inspect``.
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
    "data.task=chain",
    "data.generator={length: 5}",
    "model.name_or_path=shallow-128",
    "train.lr=1e-3",
    "train.warmup_steps=100",
    "train.log_every=100",
    "eval.max_new_tokens=8",
    "eval.batch_size=256",
]
# 4 steps, 5 thoughts -> Coconut stages 0 (CoT), 1..4 (the first s steps as s thoughts; 3 epochs
# each), 5 (all four steps as five thoughts; 3 epochs), then the all-latent stage (the same rows, a
# fresh AdamW; the remaining 25 of 40 epochs: the answer is read out of the thoughts only once no
# step is written, and that readout is what takes time). 3 epochs per stage rather than 2: with 2
# the early stages end before their thoughts are learned on some seeds, and the all-latent stage
# then sits at chance for thousands of steps (seed 3: 43.8% at 40 epochs; with 3, seeds 0-4 all
# learn; docs/latent_methods.md, "The demo's settings"). SIM-CoT adds the step
# decoder on the same schedule; its fifth thought, past the last step, is trained to write
# '### answer' (missing_steps: answer, the reference code's rule): the decoder writes a step's
# result from the operands it has just written, so without that thought the answer need not be
# in any latent (docs/latent_methods.md). Stage 0 *is* CoT, so both start from the demo's own
# trained CoT model at stage 1 (model.init_from, start_stage: 1), as the Coconut paper's GSM8k
# recipe starts from a CoT-tuned model. SIM-CoT's step loss is weighted 3 (the paper's lambda is 1):
# at 1, a stage whose thought is not learned (its step loss stays at 1-1.5 while the written steps
# after it still give the answer) sends the answer to chance at the next stage, for good (seed 1
# with the presets' fused GELU: 11.2%); at 3 the same seed ends at 99.8% (docs/latent_methods.md)
COCONUT = "c_thought: 1, max_latent_stage: 5, epochs_per_stage: 3, start_stage: 1, latent_scale: embedding"
WARM_START = "model.init_from={out}/cot"  # filled in with the demo's folder
METHODS: dict[str, list[str]] = {
    "nocot": ["method={name: nocot}"],
    "cot": ["method={name: cot}", "eval.max_new_tokens=48"],
    "coconut": [f"method={{name: coconut, {COCONUT}}}", WARM_START],  # only with --coconut
    "simcot": [f"method={{name: simcot, base: coconut, base_options: {{{COCONUT}}}, step_loss_weight: 3}}", WARM_START],
}
# Coconut on the same schedule collapses on this task (one digit for every question: 7.4-12.2% on
# seeds 0-2; docs/latent_methods.md); it would cost ~4 of the demo's minutes, which go to SIM-CoT's
# all-latent stage instead, so it runs only when asked for (``coconut=True``, ``--coconut``)
DEFAULT_METHODS = ("nocot", "cot", "simcot")
# 10^5 distinct questions: the held-out 500 are drawn with another seed and filtered against the
# 3,000 training questions, so a right answer there is computed, not remembered
SIZES = {  # (training records, epochs per method, held-out records)
    "full": (3000, {"nocot": 4, "cot": 8, "coconut": 40, "simcot": 40}, 500),
    "quick": (64, {"nocot": 1, "cot": 1, "coconut": 6, "simcot": 6}, 16),
}


def demo_config(method: str, out_dir: Path, quick: bool, seed: int = 0) -> RunConfig:
    """The resolved config of one demo run (also what ``<out>/<method>/config.yaml`` records)."""
    train_size, epochs, eval_size = SIZES["quick" if quick else "full"]
    overrides = [
        *COMMON,
        *(o.replace("{out}", str(out_dir)) for o in METHODS[method]),
        f"seed={seed}",
        f"out_dir={out_dir / method}",
        f"data.train_size={train_size}",
        f"data.eval_size={eval_size}",
        f"train.epochs={epochs[method]}",
        f"train.batch_size={8 if quick else 32}",
    ]
    return load_config(RunConfig, None, overrides)


def run_demo(
    out_dir: Path = Path("runs/demo"), quick: bool = False, seed: int = 0, coconut: bool = False
) -> dict[str, Any]:
    """Train and compare no-CoT, CoT and SIM-CoT (and Coconut with ``coconut``); returns the
    per-method summaries (also in ``summary.json``).

    ``seed`` drives the training data, initialisation and data order; the held-out questions are
    generated with ``seed + 1`` and filtered against the training ones.
    """
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries, results, source = {}, [], ""
    began = time.perf_counter()
    methods = [m for m in METHODS if m in DEFAULT_METHODS or (coconut and m == "coconut")]
    for method in methods:
        cfg = demo_config(method, out_dir, quick, seed)
        start = f"from {cfg.model.init_from}" if cfg.model.init_from else f"{cfg.model.name_or_path} preset from scratch"
        print(f"\n=== {method}: {start}, {cfg.data.train_size} generated "
              f"{cfg.data.task} {cfg.data.generator} records, {cfg.train.epochs} epochs, batch {cfg.train.batch_size}",
              flush=True)
        started = time.perf_counter()
        run = main(cfg, overwrite=True)  # the demo always starts its runs afresh
        run["train_seconds_including_eval"] = time.perf_counter() - started
        summaries[method] = run
        source = run["eval_source"]
        from latentcot.eval.evaluate import EvalResult

        results.append(EvalResult(**run["eval"]))
    lines = [
        f"Trained in {time.perf_counter() - began:.0f} s on {_machine()}; held-out: {source}.",
        "",
        format_table(results),
        "",
    ]
    for method, run in summaries.items():
        t = run["train"]
        lines.append(f"- {method}: {t['step']} optimizer steps, final training loss {t['loss']:.3f}, "
                     f"{run['train_seconds_including_eval']:.0f} s (training + evaluation)")
    if not coconut:
        lines.append("- coconut: not run (`--coconut` adds it, ~4 min): on this task it collapses to one digit "
                     "for every question (docs/latent_methods.md)")
    print("\n=== latentcot demo\n" + "\n".join(lines))
    _show_latents(out_dir, source, list(summaries))
    (out_dir / "summary.json").write_text(json.dumps(summaries, indent=2, default=str))
    command = ("latentcot demo" + (" --quick" if quick else "") + (f" --seed {seed}" if seed else "")
               + (" --coconut" if coconut else ""))
    (out_dir / "summary.md").write_text(
        f"## The demo (`{command}`, also `make demo`)\n\n" + "\n".join(lines) + "\n"
    )
    print(f"\ncheckpoints: {out_dir}/<method>/checkpoints/ ; try: latentcot inspect {out_dir}/simcot --data <file>")
    return summaries


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _show_latents(out_dir: Path, source: str, methods: list[str]) -> None:
    """One held-out question: each latent method's thoughts through the LM head (nearest tokens)
    and, for SIM-CoT, through its step decoder."""
    from latentcot.methods.simcot import with_step_decoder

    predictions = json.loads((out_dir / "simcot" / "eval.json").read_text())["predictions"]
    example = predictions[0]
    print(f"\none held-out question ({source}):\n  {example['question'][-160:]}   gold: {example['gold']}")
    for name in (m for m in ("coconut", "simcot") if m in methods):
        method, cfg = load_trained(out_dir / name)
        out = method.reason([example["question"]], max_new_tokens=cfg.eval.max_new_tokens)
        assert out.latents is not None
        print(f"  {name}: answer {out.answers[0]}")
        decoder = with_step_decoder(method)
        steps = None if decoder is None else decoder.latent_steps(out.latents)[0]
        for i, words in enumerate(nearest_tokens(method.backbone, method.tokenizer, out.latents[0], k=3)):
            decoded = f"   decoder writes: {steps[i]!r}" if steps is not None else ""
            print(f"    latent {i}: " + "  ".join(f"{w} ({p:.2f})" for w, p in words) + decoded)

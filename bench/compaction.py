"""Greedy decoding with and without dropping finished rows from the batch, side by side.

    python bench/compaction.py                          # trains its CoT model first (~5 minutes, one thread)
    python bench/compaction.py --run runs/compaction/cot --repeats 3

``generate_from_cache`` drops rows that have written their eos from the batch and the KV cache
once a quarter of the rows still decoding have finished (``compact=True``, greedy only). That
matters when the rows of one batch stop at different steps. The workload here is running sums of
3 to 8 terms mixed (2 to 7 written steps: 20 to 62 tokens of CoT per question), the shape of
GSM8k-style CoT whose length varies from question to question: a shallow-128 CoT model is trained
on 3,000 of them (500 per length, seed 0; ``--epochs``) and evaluated on 600 others (seed 1, 100
per length, shuffled). ``evaluate`` runs the same model and questions with compaction on and off (the same
code with ``compact=False`` passed through), alternately, ``--repeats`` times per setting, with
length bucketing on (the default: batches of similar prompts, which for these questions also
means similar CoT lengths) and off (questions in the file's order, as when prompt length does
not predict answer length). Medians are reported and every prediction is compared. Writes
bench/results/compaction.json and docs/results/compaction.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mixed(seed: int, per_length: int) -> list:
    from latentcot.data.generators import generate

    rows = []
    for length in range(3, 9):
        rows += generate("chain", per_length, seed * 100 + length, length=length)
    return rows


def train(run: Path, args: argparse.Namespace) -> None:
    from latentcot.data.formats import write_examples

    run.parent.mkdir(parents=True, exist_ok=True)
    train_file, eval_file = run.parent / "train.json", run.parent / "eval.json"
    write_examples(mixed(0, 500), train_file)
    write_examples(mixed(1, 100), eval_file)
    cmd = [sys.executable, "-m", "latentcot.cli", "train", "method={name: cot}", "data.task=chain",
           f"data.train_file={train_file}", f"data.eval_file={eval_file}", "data.eval_size=0",
           "model.name_or_path=shallow-128", "train.lr=1e-3", "train.warmup_steps=100", "train.batch_size=32",
           f"train.epochs={args.epochs}", "eval.max_new_tokens=96", "eval.batch_size=256", f"out_dir={run}",
           "--overwrite"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(ROOT / "runs/compaction/cot"), help="a trained CoT run (trained here if absent)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batches", default="64,256")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--out", default=str(ROOT / "bench/results/compaction.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/compaction.md"))
    a = p.parse_args()
    import torch

    from latentcot.eval.evaluate import evaluate
    from latentcot.latent import Generation
    from latentcot.methods import sequences
    from latentcot.train import recipe

    torch.set_num_threads(a.threads)
    run = Path(a.run)
    if not (run / "eval.json").is_file():
        train(run, a)
    method, _ = recipe.load_trained(str(run))
    method.eval()
    examples = mixed(1, 100)
    random.Random(0).shuffle(examples)  # the lengths mixed in the file's order (bucketing sorts them anyway)
    shipped = sequences.generate_from_cache
    variants: dict[str, Callable[..., Generation]] = {"compact": shipped, "whole batch": functools.partial(shipped, compact=False)}
    rows, tokens = [], 0.0
    for bucket in (True, False):
        for batch in map(int, a.batches.split(",")):
            seconds: dict[str, list[float]] = {k: [] for k in variants}
            predictions: dict[str, list] = {}
            for _ in range(a.repeats):
                for name, fn in variants.items():
                    sequences.generate_from_cache = fn
                    try:
                        began = time.perf_counter()
                        result = evaluate(method, examples, "chain", batch, a.max_new_tokens, bucket=bucket)
                        seconds[name].append(time.perf_counter() - began)
                    finally:
                        sequences.generate_from_cache = shipped
                    predictions[name] = [(q["text"], q["predicted"]) for q in result.predictions]
                    accuracy = result.accuracy
                    tokens = result.tokens_per_question
            med = {k: statistics.median(v) for k, v in seconds.items()}
            rows.append({"bucket": bucket, "batch": batch, "seconds": med, "all_seconds": seconds,
                         "speedup": med["whole batch"] / med["compact"], "accuracy": accuracy, "tokens_per_question": tokens,
                         "identical": predictions["compact"] == predictions["whole batch"]})
            print(json.dumps(rows[-1]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    summary = {"command": "python bench/compaction.py " + " ".join(sys.argv[1:]), "commit": commit,
              "machine": f"x86_64 CPU, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
              "questions": len(examples), "run": str(run), "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(summary, indent=1))
    render(summary, Path(a.doc))


def render(result: dict, doc: Path) -> None:
    lines = ["| length bucketing | batch | whole batch s | compact s | speedup | accuracy | predictions identical |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {'on' if r['bucket'] else 'off'} | {r['batch']} | {r['seconds']['whole batch']:.2f} | "
                     f"{r['seconds']['compact']:.2f} | {r['speedup']:.2f}× | {r['accuracy']:.1%} | {r['identical']} |")
    text = f"""## Dropping finished rows from the batch (greedy decoding)

Generated by `bench/compaction.py`; do not edit by hand.

Command: `{result['command']}` (commit {result['commit']}); {result['machine']}.
{result['questions']} held-out running sums of 3 to 8 terms (100 per length), a shallow-128 CoT model
trained on 3,000 others; whole `evaluate` calls (tokenising to scoring), median of the repeats,
the two settings alternating. "whole batch" decodes every row until the batch's last row stops.

{chr(10).join(lines)}
"""
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

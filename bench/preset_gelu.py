"""The GPT-2 presets' fused tanh GELU: training steps with GPT-2's ``gelu_new`` and with it, side by side.

    python bench/preset_gelu.py                          # the demo's SIM-CoT and CoT steps
    python bench/preset_gelu.py --batches 4 --rounds 1   # a quick check

transformers' ``gelu_new`` writes the tanh GELU as seven element-wise operations, each saved for
backward; ``gelu_pytorch_tanh`` is the same function as one fused operation (rounding differs by at
most 2.4e-7). The presets now build with the fused one. This times, on the demo's models (preset
``shallow-128``, running sums of 5 terms, batch 32): whole training steps (collate, forward,
backward, AdamW) of SIM-CoT at its all-latent stage and of CoT, the same weights under each
activation, alternating ``--rounds`` times, best round of each kept. Writes
bench/results/preset_gelu.json and docs/results/preset_gelu.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_speed import machine_name  # noqa: E402

from latentcot.data.generators import generate  # noqa: E402
from latentcot.data.tokenizer import train_word_tokenizer  # noqa: E402
from latentcot.methods import build_method, method_config  # noqa: E402
from latentcot.models import build_preset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIMCOT = {"base": "coconut", "base_options": {"c_thought": 1, "max_latent_stage": 5, "epochs_per_stage": 3,
                                              "start_stage": 1, "latent_scale": "embedding"}}
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")


def timed(method, optimizer, batches, stage: int) -> float:
    began = time.perf_counter()
    for examples in batches:
        loss = method(method.collate(examples, stage)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - began) / len(batches)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--note", default="", help="a sentence added to the doc (e.g. what else ran on the cores)")
    p.add_argument("--out", default=str(ROOT / "bench/results/preset_gelu.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/preset_gelu.md"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    examples = generate("chain", a.batches * a.batch_size, 0, length=5)
    tokenizer = train_word_tokenizer(examples)
    batches = [examples[i : i + a.batch_size] for i in range(0, len(examples), a.batch_size)]
    setups = {}
    for name, options in (("SIM-CoT, all-latent stage", SIMCOT), ("CoT", {})):
        kind = "simcot" if options else "cot"
        for activation in ACTIVATIONS:
            torch.manual_seed(0)  # the same weights under both activations
            backbone = build_preset("shallow-128", len(tokenizer), activation=activation)
            method = build_method(kind, method_config(kind, options, "bench"), backbone, tokenizer)
            method.train()
            optimizer = torch.optim.AdamW(method.parameters(), lr=1e-3)
            stage = method.num_stages() - 1
            timed(method, optimizer, batches[:2], stage)  # warm-up (and the tokenisation memo)
            setups[(name, activation)] = (method, optimizer, stage)
    best: dict[tuple[str, str], float] = {}
    for _ in range(a.rounds):
        for (name, activation), (method, optimizer, stage) in setups.items():
            seconds = timed(method, optimizer, batches, stage)
            best[(name, activation)] = min(best.get((name, activation), float("inf")), seconds)
    names = dict.fromkeys(name for name, _ in setups)
    rows = [{"what": name, "gelu_new_ms": 1e3 * best[(name, ACTIVATIONS[0])],
             "fused_ms": 1e3 * best[(name, ACTIVATIONS[1])],
             "speedup": best[(name, ACTIVATIONS[0])] / best[(name, ACTIVATIONS[1])]} for name in names]
    result: dict[str, Any] = {"command": "python bench/preset_gelu.py " + " ".join(sys.argv[1:]),
              "machine": machine_name(torch.device("cpu"), a.threads), "args": vars(a), "rows": rows}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| training step | gelu_new (ms) | gelu_pytorch_tanh (ms) | speed-up |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['gelu_new_ms']:.1f} | {r['fused_ms']:.1f} | {r['speedup']:.2f}× |" for r in rows]
    text = "\n".join([
        "## The presets' fused tanh GELU", "",
        f"Command: `{result['command'].strip()}`. Machine: {result['machine']}.", "",
        f"The demo's models (shallow-128, running sums of 5 terms, batch {a.batch_size}), {a.batches} batches per "
        f"round; whole training steps (collate, forward, backward, AdamW) with GPT-2's `gelu_new` against the fused "
        f"`gelu_pytorch_tanh` the presets now use, the same weights, alternating, best of {a.rounds} rounds.", "",
        *lines, "", *([a.note, ""] if a.note else [])])
    Path(a.doc).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

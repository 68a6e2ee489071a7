"""The tokenisation memo in `collate`: a training step with and without it, side by side.

    python bench/collate_memo.py                              # the demo's SIM-CoT, all-latent stage
    python bench/collate_memo.py --batches 5 --rounds 1       # a quick check

Every epoch, ``collate`` tokenises each example's question, steps, answer and (SIM-CoT) step
targets again; ``latentcot.methods.sequences.encode`` now keeps them per tokenizer, so from the
second epoch on a batch is built from lookups. This measures, on the demo's SIM-CoT (preset
``shallow-128``, running sums of 5 terms, batch 32, the all-latent stage where the demo spends
25 of its 40 epochs): the time of ``collate`` alone and of a whole training step (collate,
forward, backward, AdamW), over the same ``--batches`` batches, memo off (every call tokenises)
and memo on (warm: the batches were seen once before, as from epoch 2 on), alternating
``--rounds`` times, best round of each kept. Writes bench/results/collate_memo.json and
docs/results/collate_memo.md.
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

import latentcot.methods.sequences as sequences  # noqa: E402
from latentcot.data.generators import generate  # noqa: E402
from latentcot.data.tokenizer import train_word_tokenizer  # noqa: E402
from latentcot.methods import build_method, method_config  # noqa: E402
from latentcot.models import build_preset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIMCOT = {"base": "coconut", "base_options": {"c_thought": 1, "max_latent_stage": 5, "epochs_per_stage": 3,
                                              "start_stage": 1, "latent_scale": "embedding"}}


def timed(method, optimizer, batches, stage: int, step: bool) -> float:
    began = time.perf_counter()
    for examples in batches:
        batch = method.collate(examples, stage)
        if step:
            loss = method(batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - began


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--note", default="", help="a sentence added to the doc (e.g. what else ran on the cores)")
    p.add_argument("--out", default=str(ROOT / "bench/results/collate_memo.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/collate_memo.md"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    examples = generate("chain", a.batches * a.batch_size, 0, length=5)
    tokenizer = train_word_tokenizer(examples)
    method = build_method("simcot", method_config("simcot", SIMCOT, "bench"), build_preset("shallow-128", len(tokenizer)),
                          tokenizer)
    method.train()
    stage = method.num_stages() - 1  # the all-latent stage
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-3)
    batches = [examples[i : i + a.batch_size] for i in range(0, len(examples), a.batch_size)]
    size = sequences.ENCODE_MEMO_SIZE
    timed(method, optimizer, batches, stage, step=True)  # warm-up (and fills the memo once)
    best: dict[tuple[str, bool], float] = {}
    for _ in range(a.rounds):
        for memo in (False, True):
            sequences.ENCODE_MEMO_SIZE = size if memo else 0
            sequences._ENCODED.clear()
            if memo:
                timed(method, optimizer, batches, stage, step=False)  # as from epoch 2 on: seen once
            for what, step in (("collate", False), ("training step", True)):
                seconds = timed(method, optimizer, batches, stage, step) / len(batches)
                key = (what, memo)
                best[key] = min(best.get(key, float("inf")), seconds)
    sequences.ENCODE_MEMO_SIZE = size
    rows = [{"what": what, "off_ms": 1e3 * best[(what, False)], "on_ms": 1e3 * best[(what, True)],
             "speedup": best[(what, False)] / best[(what, True)]} for what in ("collate", "training step")]
    result: dict[str, Any] = {"command": "python bench/collate_memo.py " + " ".join(sys.argv[1:]),
              "machine": machine_name(torch.device("cpu"), a.threads), "args": vars(a), "rows": rows}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| per batch | memo off (ms) | memo on (ms) | speed-up |", "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['off_ms']:.1f} | {r['on_ms']:.1f} | {r['speedup']:.2f}× |" for r in rows]
    text = "\n".join([
        "## The tokenisation memo in `collate`", "",
        f"Command: `{result['command'].strip()}`. Machine: {result['machine']}.", "",
        f"The demo's SIM-CoT (shallow-128, running sums of 5 terms, batch {a.batch_size}) at its all-latent stage, "
        f"{a.batches} batches; memo off (every piece tokenised) against memo on (warm, as from the second epoch on), "
        f"alternating, best of {a.rounds} rounds; training step = collate + forward + backward + AdamW.", "",
        *lines, "", *([a.note, ""] if a.note else [])])
    Path(a.doc).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

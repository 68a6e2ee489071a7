"""How much of the machine's arithmetic a step uses: a roofline for the model's own matmuls.

    python bench/roofline.py                           # 'tiny' preset (4 x 256), ProsQA rows, 2 threads
    python bench/roofline.py --preset shallow-128 --threads 1 --repeats 2 --batch 8   # a quick check

1. The achievable rate: every matmul of one training batch (each linear layer of the backbone at
   the batch's number of positions, and the LM head at the labelled positions), timed alone with
   ``torch.matmul`` on random tensors, best of ``--repeats``; achievable FLOP/s = their FLOPs / their
   summed time. That is the ceiling for this model on this machine at these shapes.
2. FLOPs of a step, counted from the shapes: 2 per multiply-add of every linear layer at each real
   position, the attention scores and weighted sums over each position's causal context (4 x width
   per layer per attended position), the LM head at the labelled positions only (as
   ``latentcot.latent.lm_loss`` projects only those); backward = 2 x forward.
3. Measured, side by side (interleaved, best of ``--repeats``): a plain forward+backward of the
   backbone over Coconut's stage-0 rows (``sft_loss`` without thoughts, what CoT trains with) (question, written steps, answer) and Coconut's training
   forward+backward with ``--thoughts`` continuous thoughts in place of the steps; greedy
   generation (``reason``) of Coconut at ``--gen-batch``.
   Each gets FLOP/s = its FLOPs / its time, and its fraction of the achievable rate.

The model is built from the preset with random weights (speed does not depend on training).
Writes bench/results/roofline.json and docs/results/roofline.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from transformers import PreTrainedModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_speed import machine_name  # noqa: E402

from latentcot.config import load_config  # noqa: E402
from latentcot.methods.sequences import sft_loss  # noqa: E402
from latentcot.train import recipe  # noqa: E402
from latentcot.train.run_config import RunConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def linear_shapes(backbone: PreTrainedModel) -> list[tuple[int, int]]:
    """(in, out) of every matmul weight in the transformer blocks (GPT-2 Conv1D and nn.Linear alike),
    the LM head excluded."""
    head = backbone.get_output_embeddings()
    shapes: list[tuple[int, int]] = []
    for module in backbone.modules():
        if module is head:
            continue
        if isinstance(module, nn.Linear):
            shapes.append((module.in_features, module.out_features))
        elif type(module).__name__ == "Conv1D":  # GPT-2: weight (in, out)
            assert isinstance(module.weight, torch.Tensor)
            in_features, out_features = module.weight.shape
            shapes.append((in_features, out_features))
    return shapes


def step_flops(backbone: PreTrainedModel, mask: torch.Tensor, labelled: int, backward: bool) -> float:
    """FLOPs of a forward (x3 with backward) over the real positions of ``mask`` (batch, seq)."""
    cfg = backbone.config
    width, layers = cfg.hidden_size, cfg.num_hidden_layers
    positions = int(mask.sum())
    linear = sum(2 * i * o for i, o in linear_shapes(backbone)) * positions
    lengths = mask.sum(1).double()
    attention = float((lengths * (lengths + 1) / 2).sum()) * 4 * width * layers  # QK^T and AV, causal
    head = 2 * width * backbone.get_output_embeddings().weight.shape[0] * labelled
    forward = linear + attention + head
    return forward * (3 if backward else 1)


def achievable(backbone: PreTrainedModel, positions: int, labelled: int, repeats: int) -> dict[str, float]:
    """FLOP/s of the batch's own matmuls, each timed alone (best of ``repeats``)."""
    vocab = backbone.get_output_embeddings().weight.shape[0]
    jobs = [(positions, i, o) for i, o in linear_shapes(backbone)] + [(labelled, backbone.config.hidden_size, vocab)]
    flops = seconds = 0.0
    for m, k, n in jobs:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.matmul(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - began)
        flops += 2 * m * k * n
        seconds += best
    return {"flops": flops, "seconds": seconds, "flops_per_s": flops / seconds}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--thoughts", type=int, default=6)
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench/results/roofline.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs/results/roofline.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(RunConfig, None, [
        "data.task=prosqa", f"data.train_size={max(args.batch, args.gen_batch)}", "data.eval_size=1",
        f"model.name_or_path={args.preset}", f"method={{name: coconut, c_thought: 1, max_latent_stage: {args.thoughts}}}",
    ])
    train, held_out, _ = recipe.load_examples(cfg.data, cfg.seed)
    method = recipe.build(cfg, train, held_out)
    backbone = method.backbone
    chunk = train[: args.batch]
    plain = method.collate(chunk, stage=0)  # question <bot> <eot> steps answer: no thoughts
    latent = method.collate(chunk, stage=args.thoughts + 1)  # every step replaced by thoughts
    method.train()
    module = cast(nn.Module, method)  # every method is an nn.Module (methods/base.py)
    rows: list[dict[str, Any]] = []
    work = {
        "plain forward+backward (stage-0 rows)": (
            plain, lambda: sft_loss(backbone, plain).backward()),  # the same loss path, no thoughts
        f"Coconut forward+backward, {args.thoughts} thoughts": (latent, lambda: module(latent).loss.backward()),
    }
    times: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, best of each
        for name, (_, fn) in work.items():
            t = best_time(fn, 1)
            times[name] = min(times.get(name, float("inf")), t)
            module.zero_grad(set_to_none=True)
    ceiling = achievable(backbone, int(plain["attention_mask"].sum()), int((plain["labels"] != -100).sum()), args.repeats)
    for name, (batch, _) in work.items():
        labelled = int((batch["labels"] != -100).sum())
        positions = int(batch["attention_mask"].sum())
        flops = step_flops(backbone, batch["attention_mask"], labelled, backward=True)
        rows.append({"work": name, "positions": positions, "seconds": times[name], "positions_per_s": positions / times[name],
                     "gflops": flops / 1e9, "gflops_per_s": flops / times[name] / 1e9,
                     "fraction": flops / times[name] / ceiling["flops_per_s"]})
    method.eval()
    questions = [ex.question for ex in train[: args.gen_batch]]
    out = method.reason(questions, max_new_tokens=32)
    gen_time = best_time(lambda: method.reason(questions, max_new_tokens=32), args.repeats)
    # generated FLOPs: the prompt and thoughts once, then each written token once (its own position)
    lengths = torch.tensor([len(method.tokenizer(q)["input_ids"]) + 2 + args.thoughts + n
                            for q, n in zip(questions, out.num_generated_tokens)])
    mask = (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()
    flops = step_flops(backbone, mask, int(sum(out.num_generated_tokens)), backward=False)
    rows.append({"work": f"Coconut generation, batch {args.gen_batch}", "positions": int(mask.sum()), "seconds": gen_time,
                 "positions_per_s": int(mask.sum()) / gen_time, "gflops": flops / 1e9,
                 "gflops_per_s": flops / gen_time / 1e9, "fraction": flops / gen_time / ceiling["flops_per_s"]})
    ratio = rows[1]["fraction"] / rows[0]["fraction"]
    result = {"preset": args.preset, "batch": args.batch, "thoughts": args.thoughts, "threads": args.threads,
              "repeats": args.repeats, "machine": machine_name(torch.device("cpu"), args.threads),
              "achievable_gflops_per_s": ceiling["flops_per_s"] / 1e9, "rows": rows,
              "latent_fraction_over_plain_fraction": ratio}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Roofline: the share of the machine's matmul rate each workload uses",
        "",
        f"Command: `python bench/roofline.py --preset {args.preset} --batch {args.batch} --thoughts {args.thoughts} "
        f"--gen-batch {args.gen_batch} --repeats {args.repeats} --threads {args.threads}` "
        f"(generated ProsQA rows, random weights).",
        f"Machine: {result['machine']}. Achievable rate of this batch's own matmuls, each timed alone: "
        f"**{result['achievable_gflops_per_s']:.1f} GFLOP/s**.",
        "",
        "| work | positions | seconds | positions/s | GFLOP | GFLOP/s | share of achievable |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r['work']} | {r['positions']} | {r['seconds']:.3f} | {r['positions_per_s']:.0f} | {r['gflops']:.2f} | "
          f"{r['gflops_per_s']:.1f} | {100 * r['fraction']:.1f}% |" for r in rows],
        "",
        f"Coconut's training share over the plain step's share: **{ratio:.2f}** (issue 18's goal: >= 0.60).",
        "",
    ]
    Path(args.doc).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Where a CoT model on the running-sum chain reads the sum it carries from.

Every written step ``a + b = c.`` repeats the previous step's result ``c`` as its ``a``, so the
model can take the carried sum from either copy (or add the question's numbers afresh). This
corrupts the written carry of step ``k`` to another digit ``d`` (in step ``k - 1``'s result, in step
``k``'s ``a``, or in both), feeds the rows teacher-forced in one batch, and counts how often the
predicted result of step ``k`` follows the corrupted carry (``d + b``) and how often it is still the
true result. A model that follows a corrupted ``c`` and ignores a corrupted ``a`` computes each step
from the previous step's result token; one that keeps the true result under both corruptions
computes it from the question.

    python bench/cot_carry_probe.py runs/len8_c2tt/s1_cot --data runs/chain8_s2.jsonl --n 300

Prints a Markdown table; writes the numbers as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import torch

MODES = ("both", "result_only", "a_only")  # which written copy of the carry is corrupted


def carry_positions(row: list[int], equals: int, period: int) -> list[tuple[int, int]]:
    """Per written step of one row: ``(position of its a, position of its result c)``. The result is
    the token after the step's ``=``; ``a`` is the token after the ``.`` (``period``) that ends the
    step before (-1 for the first step, whose ``a`` is the question's first number)."""
    eq = [i for i, t in enumerate(row) if t == equals]
    first = eq[0] if eq else len(row)
    dots = [i for i, t in enumerate(row) if t == period and i > first]
    return [(-1 if j == 0 else dots[j - 1] + 1, e + 1) for j, e in enumerate(eq)]


def corrupt(ids: torch.Tensor, positions: list[list[tuple[int, int]]], step: int, mode: str,
            digits: list[int], rng: random.Random) -> tuple[torch.Tensor, list[int], list[int]]:
    """A copy of ``ids`` with the carry into ``step`` (0-based, ``>= 1``) set to another digit in
    the copies ``mode`` names; returns it, the digit written per row and the true carry per row."""
    value = {t: d for d, t in enumerate(digits)}
    out, wrote, true = ids.clone(), [], []
    for r, steps in enumerate(positions):
        a_pos, _ = steps[step]
        prev_c = steps[step - 1][1]
        carry = value[int(ids[r, prev_c])]
        d = rng.choice([x for x in range(len(digits)) if x != carry])
        if mode in ("both", "result_only"):
            out[r, prev_c] = digits[d]
        if mode in ("both", "a_only"):
            out[r, a_pos] = digits[d]
        wrote.append(d)
        true.append(carry)
    return out, wrote, true


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a CoT run or checkpoint folder trained on the chain task")
    ap.add_argument("--data", required=True, help="held-out chain records (.jsonl)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="draws the corrupted digits")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the table as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from latentcot.data.formats import read_examples
    from latentcot.train.recipe import load_trained

    method, _ = load_trained(args.checkpoint)
    if method.name != "cot":
        print(f"{args.checkpoint}: a '{method.name}' model; this probe reads CoT models", file=sys.stderr)
        return 2
    tok, model = method.tokenizer, method.backbone.eval()

    def token_id(token: str) -> int:
        found = tok.convert_tokens_to_ids(token)
        assert isinstance(found, int)  # one token gives one id
        return found

    digits = [token_id(f"\u2581{d}") for d in range(10)]
    value = {t: d for d, t in enumerate(digits)}
    equals, period = token_id("="), token_id(".")
    examples = read_examples(args.data)[: args.n]
    batch = method.collate(examples)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    positions = [carry_positions(row, equals, period) for row in ids.tolist()]
    steps = min(len(p) for p in positions)
    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    for step in range(1, steps):
        row: dict[str, Any] = {"step": step + 1}
        for mode in MODES:
            fed, wrote, _ = corrupt(ids, positions, step, mode, digits, rng)
            with torch.no_grad():
                logits = model(input_ids=fed, attention_mask=mask).logits
            follows = kept = 0
            for r, p in enumerate(positions):
                c_pos = p[step][1]
                b = value[int(ids[r, c_pos - 3])]  # a + b = c: b sits three tokens before c
                pred = int(logits[r, c_pos - 1].argmax())
                follows += pred == digits[(wrote[r] + b) % 10]
                kept += pred == int(ids[r, c_pos])
            row[mode] = {"follows_corrupted": follows / len(positions), "true_result": kept / len(positions)}
        rows.append(row)
    print(f"{args.checkpoint} on {args.data} (n={len(examples)}): share of rows whose predicted result "
          "follows the corrupted carry / is still the true result")
    print("| step | both copies | previous result only | `a` only |")
    print("|---|---|---|---|")
    for row in rows:
        cells = [f"{row[m]['follows_corrupted']:.2f} / {row[m]['true_result']:.2f}" for m in MODES]
        print(f"| {row['step']} | " + " | ".join(cells) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"checkpoint": args.checkpoint, "data": args.data,
                                              "n": len(examples), "steps": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a SIM-CoT model's thoughts hold on the running-sum chain, part by part.

`latentcot inspect --data` says which latent group decodes its step exactly; this splits each
decoded step ``a + b = c.`` into its parts and counts, per group over held-out questions, how often
the decoder writes the right carried sum ``a`` (the sum so far), the right next number ``b`` (read
from the question), a result consistent with what it wrote (``c = a + b mod 10``) and the right
result. A group whose ``b`` is right and ``a`` is not has kept its place in the chain and lost the
sum it should carry.

    python bench/chain_step_parts.py runs/len8_c2ext/s4_simcot_c2_embedding --data runs/chain8_s5.jsonl \\
        --out runs/parts_s4.json

Prints a Markdown table; writes the numbers as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

STEP = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*=\s*(\d+)\s*\.?\s*$")


def parts(text: str) -> tuple[int, int, int] | None:
    """``(a, b, c)`` of a step written ``a + b = c.``; None when it is not one."""
    m = STEP.match(text)
    return None if m is None else (int(m[1]), int(m[2]), int(m[3]))


def tally(decoded: list[list[str]], targets: list[list[str]], modulus: int = 10) -> list[dict[str, float]]:
    """Per group, the share of examples whose decoded step has the right carried sum, next number,
    a self-consistent result, the right result, and is well formed at all."""
    groups = len(decoded[0]) if decoded else 0
    rows = []
    for g in range(groups):
        count = dict.fromkeys(("well_formed", "carried_sum", "carried_mod2", "carried_mod5", "next_number",
                               "consistent", "result", "exact"), 0)
        n = 0
        for ds, ts in zip(decoded, targets, strict=True):
            truth = parts(ts[g])
            if truth is None:  # a group past the last step (its target is the answer)
                continue
            n += 1
            got = parts(ds[g])
            count["exact"] += ds[g].strip() == ts[g].strip()
            if got is None:
                continue
            count["well_formed"] += 1
            count["carried_sum"] += got[0] == truth[0]
            count["carried_mod2"] += (got[0] - truth[0]) % 2 == 0
            count["carried_mod5"] += (got[0] - truth[0]) % 5 == 0
            count["next_number"] += got[1] == truth[1]
            count["consistent"] += got[2] == (got[0] + got[1]) % modulus
            count["result"] += got[2] == truth[2]
        if n:
            rows.append({"group": g + 1, "n": n, **{k: v / n for k, v in count.items()}})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a SIM-CoT run or checkpoint folder trained on the chain task")
    ap.add_argument("--data", required=True, help="held-out chain records (.jsonl)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the table as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from latentcot.data.formats import read_examples
    from latentcot.latent.diagnostics import collect_latents, decoded_steps
    from latentcot.methods.simcot import with_step_decoder
    from latentcot.train.recipe import load_trained

    method, _ = load_trained(args.checkpoint)
    decoder = with_step_decoder(method)
    if decoder is None:
        print(f"{args.checkpoint}: not a SIM-CoT model with its step decoder", file=sys.stderr)
        return 2
    examples = read_examples(args.data)[: args.n]
    latents = collect_latents(method, [ex.question for ex in examples], args.batch_size)
    rows = tally(*decoded_steps(decoder, latents, examples, args.batch_size))
    print(f"{args.checkpoint} on {args.data} (n={len(examples)}): share of questions per thought group")
    print("| group | exact | carried sum a | a mod 2 | a mod 5 | next number b | c = a + b | right result c |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['group']} | {r['exact']:.2f} | {r['carried_sum']:.2f} | {r['carried_mod2']:.2f} | "
              f"{r['carried_mod5']:.2f} | {r['next_number']:.2f} | {r['consistent']:.2f} | {r['result']:.2f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"checkpoint": args.checkpoint, "data": args.data,
                                              "n": len(examples), "groups": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

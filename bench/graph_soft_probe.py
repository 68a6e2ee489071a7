"""Where a teacher-forced soft-thought Coconut stands (``method.teacher_forcing``): feed every thought
the set it is trained on and print the loss of each labelled position — the node the root names (thought
1's set), each later thought's next node, and the answer tokens — on fresh generated graphs of the run's
own kind. A thought column far above its floor while the answer's is low means the search circuit is
not found yet and the readout is.

    python bench/graph_soft_probe.py runs/graph_matched_soft/coconut/checkpoints/step-001500
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from latentcot.data import graph as G
from latentcot.latent.loop import position_ids
from latentcot.train.recipe import load_trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a run folder or checkpoint of a teacher_forcing Coconut")
    p.add_argument("--n", type=int, default=256, help="generated graphs")
    p.add_argument("--seed", type=int, default=99)
    args = p.parse_args()
    method, cfg = load_trained(args.run)
    method.eval()  # type: ignore[attr-defined]
    if not getattr(method.config, "teacher_forcing", False):  # type: ignore[attr-defined]
        raise SystemExit(f"{args.run}: not a teacher_forcing Coconut run")
    examples = G.generate(args.n, seed=args.seed, max_hops=cfg.data.max_hops, **cfg.data.generator)
    torch.manual_seed(0)
    batch = method.collate(examples, 0)  # type: ignore[attr-defined]
    ids, labels = batch["input_ids"], batch["labels"]
    with torch.no_grad():
        embeds = method.teacher_embeds(batch)  # type: ignore[attr-defined]
        mask = batch["attention_mask"]
        logits = method.backbone(inputs_embeds=embeds, attention_mask=mask,  # type: ignore[attr-defined]
                                 position_ids=position_ids(mask)).logits
    logp = F.log_softmax(logits.float(), -1)
    first = int((ids == method.tokens.latent).nonzero()[:, 1].min())  # type: ignore[attr-defined]
    k = method.config.max_latent_stage  # type: ignore[attr-defined]
    all_sets = [method.frontier_sets(G.graph_of(ex), k) for ex in examples]  # type: ignore[attr-defined]
    nodes = sum(math.log(len(G.graph_of(ex).symbols)) for ex in examples) / len(examples)
    print(f"{args.run}: {args.n} generated graphs ({cfg.data.generator}); uniform over a graph's nodes "
          f"{nodes:.2f} nats")
    print("| position | labelled rows | loss (nats) | floor (ln of the set) |\n|---|---|---|---|")
    for j in range(first, ids.shape[1]):
        has = labels[:, j] != -100
        if not has.any():
            continue
        loss = float(-logp[has, j - 1].gather(-1, labels[has, j, None]).mean())
        if j - first < k:
            sets = [per_example[j - first + 1] for per_example in all_sets]
            floor = sum(math.log(len(s)) for s in sets if s) / max(1, sum(1 for s in sets if s))
            name = "root → set 1" if j == first else f"thought {j - first} → set {j - first + 1}"
            print(f"| {name} | {int(has.sum())} | {loss:.2f} | {floor:.2f} |")
        else:
            print(f"| answer token {j - first - k} | {int(has.sum())} | {loss:.2f} | 0 |")


if __name__ == "__main__":
    main()

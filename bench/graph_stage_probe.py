"""Probe a graph Coconut run stage by stage: how much probability it puts on the nodes each stage asks for.

    python bench/graph_stage_probe.py RUN [--stages 4] [--n 200] [--seed 777] [--min-nodes 8 --max-nodes 12]

For stage s (0 = no thought yet) it builds the stage-s training rows of ``--n`` generated graphs
(ProsQA size unless ``--min-nodes``/``--max-nodes`` say otherwise; only questions of more than s hops, where stage s names a node rather than the
answer), runs them through the latent loop, and at the position that names the node reports the
mean probability of (a) the optimal nodes of depth s + 1 (what the stage is trained on) and (b) the
whole walk frontier of s + 1 edges (for s = 0: the root's children). A model that has not found
the graph scores about the share of those nodes among all symbols. Prints one line per stage.
"""

from __future__ import annotations

import argparse

import torch

from latentcot.data import graph as G
from latentcot.latent.loop import latent_forward
from latentcot.methods.coconut import Coconut
from latentcot.train.recipe import load_trained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--stages", type=int, default=1)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--min-nodes", type=int, default=15)
    ap.add_argument("--max-nodes", type=int, default=26)
    args = ap.parse_args()
    method, _ = load_trained(args.run)
    assert isinstance(method, Coconut), f"{args.run} is not a Coconut run"
    method.eval()
    tok = method.tokenizer

    def token(node: int) -> int:
        ids = tok.convert_tokens_to_ids(tok.tokenize(str(node)))
        assert isinstance(ids, list)  # a list of tokens gives a list of ids
        return ids[0]

    examples = G.generate(args.n, seed=args.seed, min_nodes=args.min_nodes, max_nodes=args.max_nodes)
    for stage in range(args.stages):
        torch.manual_seed(0)  # the uniform-stage draws of collate
        keep = [ex for ex in examples if ex.meta["hops"] > stage]
        batch = method.collate(keep, stage)
        ids = batch["input_ids"]
        with torch.no_grad():
            out = latent_forward(method.backbone, method.backbone.get_input_embeddings()(ids), batch["attention_mask"],
                                 ids == method.tokens.latent, method.project)
            where = (batch["labels"] != -100).float().argmax(1) - 1  # the position that names the first label
            probs = method.backbone.get_output_embeddings()(out.hidden_states[torch.arange(len(keep)), where]).softmax(-1)
        optimal = frontier = 0.0
        for i, ex in enumerate(keep):
            graph = G.graph_of(ex)
            optimal += float(probs[i, [token(v) for v in G.optimal_levels(graph)[stage + 1]]].sum())
            frontier += float(probs[i, [token(v) for v in G.node_groups(graph, stage + 1)["frontier"]]].sum())
        n = len(keep)
        print(f"stage {stage}: {n} questions; probability on the optimal depth-{stage + 1} nodes {optimal / n:.3f}, "
              f"on the {stage + 1}-edge walk frontier {frontier / n:.3f}")


if __name__ == "__main__":
    main()

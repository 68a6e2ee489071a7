"""How much of ProsQA a search-free rule answers: the distractor is the candidate with a person
other than the root at most N steps above it (``latentcot.data.graph.local_guess``).

A 2-layer model can look a couple of steps up from each candidate without searching from the
root, so this rule bounds what no-CoT can reach without search. Measured on the real validation
file (questions of at most 4 hops, as in the study) and on generated graphs: the real-file-like
generator (``distractor: real``) at the default and the small CPU size, and ``distractor: matched``
(the distractor as deep below its person as the target below the root).

    python bench/graph_shortcut.py --out bench/results/graph_shortcut.json --doc docs/results/graph_shortcut.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from latentcot.data import graph as G
from latentcot.data.formats import read_examples
from latentcot.data.paths import data_dir


def score(examples: list, steps: int) -> dict[str, float]:
    """Share answered right, wrong and not guessed (a coin flip), and the accuracy with coin flips."""
    graphs = [G.graph_of(ex) for ex in examples]
    guesses = [G.local_guess(g, steps) for g in graphs]
    right = sum(guess == g.target for guess, g in zip(guesses, graphs)) / len(graphs)
    none = sum(guess is None for guess in guesses) / len(graphs)
    return {"right": right, "wrong": 1 - right - none, "no_guess": none, "accuracy": right + none / 2}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="generated questions per setting")
    p.add_argument("--steps", default="1,2,3", help="comma list of how far up the rule looks")
    p.add_argument("--out", default="bench/results/graph_shortcut.json")
    p.add_argument("--doc", default="docs/results/graph_shortcut.md")
    a = p.parse_args()
    sets: dict[str, list] = {}
    real = data_dir(None)
    if real and (real / "prosqa" / "prosqa_valid.json").is_file():
        sets["real ProsQA validation, ≤ 4 hops"] = G.to_graph_examples(
            read_examples(real / "prosqa" / "prosqa_valid.json"), max_hops=4)
    sets["generated, real-file size (15-26 nodes)"] = G.generate(a.n, seed=1)
    sets["generated, small (8-12 nodes)"] = G.generate(a.n, seed=1, min_nodes=8, max_nodes=12)
    sets["generated, small, distractor: matched"] = G.generate(a.n, seed=1, min_nodes=8, max_nodes=12,
                                                              distractor="matched")
    sets["generated, real-file size, distractor: matched"] = G.generate(a.n, seed=1, distractor="matched")
    steps = [int(s) for s in a.steps.split(",")]
    results: dict[str, dict[str, Any]] = {name: {"n": len(ex), **{f"steps_{s}": score(ex, s) for s in steps}} for name, ex in sets.items()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
    lines = ["## A search-free rule on ProsQA: the distractor sits near another person", "",
             "Command: `python bench/graph_shortcut.py` (no training; the rule is `latentcot.data.graph.local_guess`).",
             "", "The rule: the candidate with a person other than the root at most N steps above it is the distractor "
             "(no guess when both or neither are; a coin flip is counted as half right). Picking at random scores 50%.",
             "", "| questions | n | " + " | ".join(f"N = {s}" for s in steps) + " | no guess at N = 2 |",
             "|---|---|" + "---|" * len(steps) + "---|"]
    for name, r in results.items():
        cells = " | ".join(f"{100 * r[f'steps_{s}']['accuracy']:.1f}%" for s in steps)
        none = f"{100 * r['steps_2']['no_guess']:.1f}%" if "steps_2" in r else "-"
        lines.append(f"| {name} | {r['n']} | {cells} | {none} |")
    Path(a.doc).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

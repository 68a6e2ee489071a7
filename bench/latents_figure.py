"""Accuracy against the number of latents: Coconut and SIM-CoT (on Coconut), over seeds.

The figure of the SIM-CoT paper, on our chain task (running sums of 5 terms mod 10, 4 steps),
assembled from runs other scripts made and recorded (nothing is trained here):

- the demo's recipe (CoT start, ``latent_scale: embedding``, 3 epochs per stage): ``latentcot demo``
  over seeds (``bench/demo_seeds.py``: SIM-CoT with 1 thought per step) and ``bench/simcot_seeds.py``
  (``--methods coconut,simcot --cs C``); k = 4·c step latents (plus the answer thought);
- from scratch, 3,000 steps (``bench/latent_study.py``): k latents in all; Coconut's rows from the
  first study, SIM-CoT's from runs with its reference-code defaults (the first study's SIM-CoT
  rows were made before them and stay in their own tables).

Writes a Markdown table (per k: each seed's accuracy, the mean, seeds ≥ 95%) and one plot
(mean with each seed as a dot, one line per method and recipe).

    python bench/latents_figure.py --doc docs/results/latents_figure.md --plot docs/results/latents_figure.png
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEMO = "demo recipe (CoT start)"
STUDY = "from scratch, 3000 steps"


def from_simcot_seeds(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return [{"recipe": DEMO, "method": r["method"], "k": 4 * r["c"], "seed": r["seed"], "accuracy": r["accuracy"],
             "steps": r["steps"], "source": path.name} for r in data["runs"] if r["method"] != "cot"]


def from_demo_seeds(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return [{"recipe": DEMO, "method": "simcot", "k": 4, "seed": r["seed"], "accuracy": r["methods"]["simcot"]["accuracy"],
             "steps": r["methods"]["simcot"]["steps"], "source": path.name}
            for r in data["runs"] if r.get("methods") and "simcot" in r["methods"]]


def from_study(path: Path, only: str = "") -> list[dict]:
    """A latent_study JSON's Coconut and SIM-CoT rows (``only``: just this method's)."""
    data = json.loads(path.read_text())
    names = {"coconut": "coconut", "simcot-coconut": "simcot"}
    return [{"recipe": STUDY, "method": names[r["method"]], "k": r["k"], "seed": data["settings"]["seed"],
             "accuracy": r["accuracy"], "steps": data["settings"]["steps"], "source": path.name}
            for r in data["runs"] if r["method"] in names and (not only or names[r["method"]] == only)]


def load(args: argparse.Namespace) -> list[dict]:
    rows: list[dict] = []
    for name in args.simcot_seeds:
        rows += from_simcot_seeds(RESULTS / name)
    rows += from_demo_seeds(RESULTS / args.demo_seeds)
    for entry in args.study:
        name, _, only = entry.partition(":")
        rows += from_study(RESULTS / name, only)
    seen: dict[tuple, dict] = {}
    for r in rows:  # one result per (recipe, method, k, seed): the first listed wins
        seen.setdefault((r["recipe"], r["method"], r["k"], r["seed"]), r)
    return list(seen.values())


def table(rows: list[dict]) -> list[str]:
    groups: dict[tuple, dict[int, float]] = defaultdict(dict)
    steps: dict[tuple, set[int]] = defaultdict(set)
    for r in rows:
        groups[(r["recipe"], r["method"], r["k"])][r["seed"]] = r["accuracy"]
        steps[(r["recipe"], r["method"], r["k"])].add(r["steps"])
    lines = ["| recipe | method | k | training steps | seeds | accuracy per seed | mean | seeds ≥ 95% |",
             "|---|---|---|---|---|---|---|---|"]
    for key, accs in sorted(groups.items(), key=lambda g: (g[0][0] != DEMO, g[0][1], g[0][2])):
        recipe, method, k = key
        per = " / ".join(f"{100 * accs[s]:.1f}" for s in sorted(accs))
        mean = sum(accs.values()) / len(accs)
        lines.append(f"| {recipe} | {method} | {k} | {', '.join(map(str, sorted(steps[key])))} | "
                     f"{','.join(map(str, sorted(accs)))} | {per} | {100 * mean:.1f}% "
                     f"| {sum(v >= 0.95 for v in accs.values())} of {len(accs)} |")
    return lines


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    styles = {(DEMO, "simcot"): ("tab:blue", "-"), (DEMO, "coconut"): ("tab:red", "-"),
              (STUDY, "simcot"): ("tab:blue", ":"), (STUDY, "coconut"): ("tab:red", ":")}
    for (recipe, method), (color, line) in styles.items():
        mine = [r for r in rows if (r["recipe"], r["method"]) == (recipe, method)]
        if not mine:
            continue
        ks = sorted({r["k"] for r in mine})
        means = [sum(r["accuracy"] for r in mine if r["k"] == k) / sum(r["k"] == k for r in mine) for k in ks]
        name = "SIM-CoT" if method == "simcot" else "Coconut"
        ax.plot(ks, [100 * m for m in means], line, color=color, marker="o", label=f"{name}, {recipe}")
        ax.scatter([r["k"] for r in mine], [100 * r["accuracy"] for r in mine], color=color, s=10, alpha=0.4)
    ax.axhline(10, color="gray", lw=0.8, ls="--", label="chance (10%)")
    ax.set(xscale="log", xlabel="latents k", ylabel="held-out accuracy (%)", ylim=(0, 105),
           title="Running sums (4 steps): accuracy vs number of latents")
    ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(0.0, 0.55))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--simcot-seeds", nargs="*", default=["simcot_seeds.json", "simcot_seeds_c4_e80.json",
                                                          "simcot_seeds_c4.json", "simcot_seeds_coconut.json",
                                                          "simcot_seeds_coconut_c4.json"],
                   help="bench/simcot_seeds.py results (bench/results/ names; for a (method, k, seed) listed "
                        "twice the first wins: 16 latents at 80 epochs over 60); missing files are skipped")
    p.add_argument("--demo-seeds", default="demo_seeds.json")
    # Coconut's rows from the first study; SIM-CoT's from runs with its reference-code defaults
    # (commit 80d071b on): the first study's SIM-CoT rows predate them (docs/results/latent_study_chain*.md)
    p.add_argument("--study", nargs="*", default=[
        "latent_study_chain.json:coconut", "latent_study_chain_seed1.json:coconut", "latent_study_chain_seed2.json:coconut",
        "latent_study_chain_k1216_seed1.json", "latent_study_chain_k1216_seed2.json",
        "latent_study_chain_simcot_seed0.json", "latent_study_chain_simcot48_seed1.json",
        "latent_study_chain_simcot48_seed2.json"],
        help="bench/latent_study.py results (bench/results/ names; NAME.json:METHOD keeps one method's rows)")
    p.add_argument("--doc", default=str(ROOT / "docs/results/latents_figure.md"))
    p.add_argument("--plot", default=str(ROOT / "docs/results/latents_figure.png"))
    a = p.parse_args()
    a.simcot_seeds = [n for n in a.simcot_seeds if (RESULTS / n).is_file()]
    a.study = [n for n in a.study if (RESULTS / n.partition(":")[0]).is_file()]
    rows = load(a)
    plot(rows, Path(a.plot))
    sources = sorted({r["source"] for r in rows})
    text = "\n".join([
        "## Accuracy against the number of latents: Coconut and SIM-CoT over seeds", "",
        f"Command: `python bench/latents_figure.py` (assembled from {', '.join(f'`bench/results/{s}`' for s in sources)}; "
        "each names the command that trained it).", "",
        f"Running sums of 5 terms mod 10 (4 steps), held-out questions of another seed. {DEMO}: `latentcot demo`'s "
        "settings (the latent runs start from the seed's CoT model; 93 steps per epoch: 3,720 steps = 40 epochs, "
        "5,580 = 60, 7,440 = 80), k = 4·c step latents plus the answer thought. "
        f"{STUDY}: `bench/latent_study.py` (micro preset, 200 held-out questions), k latents in all; its SIM-CoT rows "
        "use SIM-CoT's reference-code defaults (step CE summed per row, step tokens through the base embedding, "
        "thoughts past the last step write the answer), the first study's older SIM-CoT rows stay in "
        "docs/results/latent_study_chain*.md. Chance is 10%.", "",
        *table(rows), "", f"![accuracy vs latents](results/{Path(a.plot).name})", ""])
    Path(a.doc).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

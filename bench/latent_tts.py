"""Parallel test-time scaling of a trained latent reasoner: accuracy against N sampled trajectories
per question for majority vote, the Latent Reward Model, latent-trajectory signals and the oracle
(coverage), with forward passes and wall time; early pruning by a signal; the cost of N samples
of one question against N distinct questions; CoT + self-consistency at equal compute as the
reference point.

Writes bench/results/latent_tts*.json, docs/results/latent_tts*.md and a plot of accuracy vs N.

    python bench/latent_tts.py --checkpoint runs/tts/simcot_s1/checkpoints/step-003000 \\
        --cot-checkpoint runs/tts/cot --out bench/results/latent_tts.json --doc docs/results/latent_tts.md

Everything held out is the run's own held-out set (questions never trained on); the noise σ,
the reward model and each signal's direction are fitted on other generated questions only.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from latentcot.data.generators import generate
from latentcot.data.record import ReasoningExample
from latentcot.eval.answers import is_correct, normalise_answer
from latentcot.eval.evaluate import evaluate
from latentcot.eval.reward import LatentRewardModel, informative_groups, reward_model_from, train_reward_model
from latentcot.eval.tts import (
    SignalChoice,
    auroc,
    best_of_n,
    collect_groups,
    latent_parts,
    majority_vote,
    sample_answers,
    sample_signals,
    signal_score,
    top_vote,
)
from latentcot.latent.sampling import Pruning, ThoughtSampler
from latentcot.latent.signals import SIGNALS
from latentcot.methods.base import Method
from latentcot.train.recipe import load_examples, load_trained

ROOT = Path(__file__).resolve().parents[1]
ALL_SIGNALS = [*SIGNALS, *(f"answer.{s}" for s in SIGNALS)]
SAMPLERS = {  # what each sampler does, and the name of its setting
    "noise": ("Gaussian noise on each fed-back thought", "σ"),
    "dropout": ("MC dropout in the thought passes", "p"),
    "gumbel": ("each soft thought a Gumbel-softmax draw of the head's distribution", "temperature"),
    "gumbel-scale": ("each soft thought softmax(logits + s·g) @ E, Gumbel noise g scaled by s at temperature 1", "s"),
}


def run_samples(method: Method, examples: Sequence[ReasoningExample], task: str, n: int, sampler: ThoughtSampler,
                batch: int, max_new_tokens: int, prune: Pruning | None = None,
                reward: LatentRewardModel | None = None) -> tuple[list[dict[str, Any]], float, float, float]:
    """Sample every question n times; per question its samples' answers, correctness, signals, rewards."""
    rows: list[dict[str, Any]] = []
    seconds = rm_seconds = 0.0
    passes = 0
    per_batch = max(1, batch // n)
    for start in range(0, len(examples), per_batch):
        chunk = examples[start : start + per_batch]
        out = sample_answers(method, [ex.question for ex in chunk], n, sampler, None, max_new_tokens, prune)
        seconds += out.seconds
        passes += out.samples.sample_passes
        signals = {k: v.tolist() for k, v in sample_signals(out.samples).items()}
        scores = None
        if reward is not None:
            began = time.perf_counter()
            scores = reward.score(out.question_ids, out.samples.thoughts).tolist()
            rm_seconds += time.perf_counter() - began
        for i, ex in enumerate(chunk):
            done = [r for r in range(i * n, (i + 1) * n) if bool(out.samples.finished[r])]
            answers = [normalise_answer(task, out.answers[r]) for r in done]
            rows.append({
                "answers": answers,
                "correct": [is_correct(task, a, ex.answer) for a in answers],
                "gold": ex.answer,
                "signals": {k: [v[r] for r in done] for k, v in signals.items()},
                "reward": [scores[r] for r in done] if scores is not None else None,
            })  # fmt: skip
    return rows, seconds, rm_seconds, passes / len(examples)


def accuracy(rows: list[dict[str, Any]], task: str, pick: Callable[[dict[str, Any]], str]) -> float:
    return sum(is_correct(task, pick(r), r["gold"]) for r in rows) / len(rows)


def signal_auroc(rows: list[dict[str, Any]]) -> dict[str, float]:
    labels = [c for r in rows for c in r["correct"]]
    return {k: auroc([s for r in rows for s in r["signals"][k]], labels) for k in ALL_SIGNALS}


def error_offsets(predictions: list[dict[str, Any]], task: str) -> dict[str, int]:
    """Chain task (sums mod 10): how far the wrong greedy answers are from the gold one, mod 10."""
    out: dict[str, int] = {}
    if task != "chain":
        return out
    for pred in predictions:
        got = normalise_answer(task, pred["predicted"])
        if not pred["correct"]:
            key = str((int(got) - int(pred["gold"])) % 10) if got.lstrip("-").isdigit() else "unparsed"
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def time_one_question_vs_distinct(method, examples, n, sampler, repeats=3) -> dict[str, float]:
    """Wall time of n samples of each of q questions against one batch of q·n distinct questions."""
    q = max(1, 256 // n)
    questions = [ex.question for ex in examples]
    distinct = (questions * ((q * n) // len(questions) + 1))[: q * n]
    sampled, plain = [], []
    for _ in range(repeats):  # interleaved, so both see the same load on the shared cores
        began = time.perf_counter()
        sample_answers(method, questions[:q], n, sampler, max_new_tokens=8)
        sampled.append(time.perf_counter() - began)
        began = time.perf_counter()
        method.reason(distinct, max_new_tokens=8)
        plain.append(time.perf_counter() - began)
    s, p = sorted(sampled)[repeats // 2], sorted(plain)[repeats // 2]
    return {"questions": q, "n": n, "sampled_s": s, "distinct_s": p, "ratio": s / p}


def cot_self_consistency(method, max_new_tokens, examples, task, ns, temperature, seed, batch) -> list[dict[str, Any]]:
    """CoT with temperature sampling, majority vote over n samples (questions repeated n times)."""
    out = []
    for n in ns:
        gen = torch.Generator().manual_seed(seed)
        per_batch = max(1, batch // n)
        rows, passes, began = [], 0, time.perf_counter()
        for start in range(0, len(examples), per_batch):
            chunk = examples[start : start + per_batch]
            qs = [ex.question for ex in chunk for _ in range(n)]
            kwargs = {"temperature": temperature, "generator": gen} if n > 1 else {}
            res = method.reason(qs, max_new_tokens=max_new_tokens, **kwargs)
            passes += res.num_forward_passes * len(qs)
            for i, ex in enumerate(chunk):
                answers = [normalise_answer(task, a) for a in res.answers[i * n : (i + 1) * n]]
                rows.append({"answers": answers, "gold": ex.answer,
                             "correct": [is_correct(task, a, ex.answer) for a in answers]})  # fmt: skip
        seconds = time.perf_counter() - began
        out.append({
            "n": n, "accuracy": accuracy(rows, task, lambda r: majority_vote(r["answers"])),
            "coverage": sum(any(r["correct"]) for r in rows) / len(rows),
            "passes_per_question": passes / len(examples), "seconds": seconds,
        })  # fmt: skip
        print(f"  cot n={n}: {out[-1]}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a trained latent reasoner (checkpoint folder)")
    p.add_argument("--cot-checkpoint", help="a trained CoT model of the same task (self-consistency reference)")
    p.add_argument("--eval-size", type=int, default=300)
    p.add_argument("--ns", default="1,2,4,8,16,32")
    p.add_argument("--sampler", choices=list(SAMPLERS), default="noise",
                   help="gumbel: Gumbel-softmax draws of soft thoughts (a thought_input: soft model); gumbel-scale: "
                   "the same at temperature 1 with the noise scaled")
    p.add_argument("--grid", default="0.5,1,2,4,8",
                   help="σ (or dropout rates, gumbel temperatures, gumbel noise scales) tried on the fitting questions")
    p.add_argument("--fit-questions", type=int, default=600, help="generated questions for σ, reward model, signal sign")
    p.add_argument("--fit-samples", type=int, default=16)
    p.add_argument("--rm-steps", type=int, default=400)
    p.add_argument("--rm-lr", type=float, default=3e-4)
    p.add_argument("--prune", default="1:4,2:4,2:8", help="after:keep pairs for early pruning at N = 16")
    p.add_argument("--cot-temperature", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=512, help="rows (questions x samples) per sampling batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="runs/tts/bench", help="folder for the reward model run")
    p.add_argument("--out", default="bench/results/latent_tts.json")
    p.add_argument("--doc", default="docs/results/latent_tts.md")
    p.add_argument("--doc-only", action="store_true", help="re-render --doc (and its plot) from the JSON at --out")
    a = p.parse_args()
    if a.doc_only:
        write_doc(json.loads(Path(a.out).read_text()), Path(a.doc))
        return
    torch.set_num_threads(a.threads)
    began = time.perf_counter()
    ns = [int(x) for x in a.ns.split(",")]
    method, cfg = load_trained(a.checkpoint)
    task = cfg.data.task
    _, held_out, source = load_examples(cfg.data, cfg.seed)
    held_out = held_out[: a.eval_size]
    seen = {ex.question for ex in held_out}
    fit = [ex for ex in generate(task, 2 * a.fit_questions, cfg.seed + 2, **cfg.data.generator) if ex.question not in seen]
    fit = fit[: a.fit_questions]
    kind = a.sampler

    def sampler_at(value: float, seed: int) -> ThoughtSampler:
        if kind == "gumbel":
            return ThoughtSampler(kind, temperature=value, seed=seed)
        if kind == "gumbel-scale":
            return ThoughtSampler("gumbel", gumbel_scale=value, seed=seed)
        return ThoughtSampler(kind, noise=value, seed=seed) if kind == "noise" else ThoughtSampler(kind, dropout=value, seed=seed)

    greedy = evaluate(method, held_out, task, 256, 8)
    print(f"greedy: {greedy.accuracy:.3f} on {len(held_out)} held-out ({source})", flush=True)
    offsets = error_offsets(greedy.predictions, task)
    print(f"wrong greedy answers by (answer - gold) mod 10: {offsets}", flush=True)
    parts = latent_parts(method)
    latents = method.reason([ex.question for ex in fit[:64]], max_new_tokens=2).latents
    assert latents is not None  # a latent reasoner
    norm = float(latents.norm(dim=-1).mean())
    print(f"mean thought norm {norm:.1f}", flush=True)

    # 1. σ (or p) chosen on the fitting questions by majority@8 accuracy
    grid = []
    for value in [float(x) for x in a.grid.split(",")]:
        rows, _, _, _ = run_samples(method, fit[:200], task, 8, sampler_at(value, a.seed + 1), a.batch, 8)
        grid.append({"value": value, "vote@8": accuracy(rows, task, lambda r: majority_vote(r["answers"])),
                     "sample_accuracy": sum(sum(r["correct"]) for r in rows) / (8 * len(rows)),
                     "coverage@8": sum(any(r["correct"]) for r in rows) / len(rows)})  # fmt: skip
        print(f"  {kind}={value}: {grid[-1]}", flush=True)
    value = max(grid, key=lambda g: (g["vote@8"], g["coverage@8"]))["value"]
    print(f"chosen {kind} = {value}", flush=True)

    # 2. the reward model on the reasoner's own samples of the fitting questions
    groups = collect_groups(method, fit, task, a.fit_samples, sampler_at(value, a.seed + 2), max(1, a.batch // a.fit_samples), 8)
    kept = informative_groups(groups)
    torch.manual_seed(a.seed)
    rm = reward_model_from(parts.backbone, parts.tokenizer, parts.bot)
    rm_began = time.perf_counter()
    rm_metrics = train_reward_model(rm, groups, Path(a.work) / "reward_model", a.rm_steps, 8, a.rm_lr, a.seed)
    rm_train_s = time.perf_counter() - rm_began
    print(f"reward model: {len(kept)} of {len(groups)} questions informative; {rm_metrics}", flush=True)

    # 3. each signal's direction from the fitting samples
    fit_rows, _, _, _ = run_samples(method, fit[:300], task, 16, sampler_at(value, a.seed + 3), a.batch, 8, reward=rm)
    fit_auroc = signal_auroc(fit_rows)
    fit_rm_auroc = auroc([s for r in fit_rows for s in r["reward"]], [c for r in fit_rows for c in r["correct"]])
    best = max(SIGNALS, key=lambda k: abs(fit_auroc[k] - 0.5))  # thought signals: usable for pruning
    choice = SignalChoice(best, "thoughts", 1.0 if fit_auroc[best] >= 0.5 else -1.0)
    sign = choice.sign
    print(f"fit AUROC {fit_auroc}, reward {fit_rm_auroc:.3f}; selection signal {choice}", flush=True)

    # 4. accuracy vs N on the held-out questions
    def s(r: dict[str, Any]) -> list[float]:
        return [sign * x for x in r["signals"][choice.name]]

    table = []
    held_rows: dict[int, list] = {}
    for n in ns:
        rows, seconds, rm_seconds, passes = run_samples(method, held_out, task, n, sampler_at(value, a.seed + 10), a.batch, 8, reward=rm)
        held_rows[n] = rows
        voters = max(1, n // 2)

        def signal_vote(r: dict[str, Any], voters: int = voters) -> str:
            return top_vote(r["answers"], s(r), voters)

        entry = {
            "n": n,
            "vote": accuracy(rows, task, lambda r: majority_vote(r["answers"])),
            "reward_best": accuracy(rows, task, lambda r: best_of_n(r["answers"], r["reward"])),
            "reward_vote": accuracy(rows, task, lambda r: majority_vote(r["answers"], torch.tensor(r["reward"]).softmax(0).tolist())),
            "signal_best": accuracy(rows, task, lambda r: best_of_n(r["answers"], s(r))),
            "signal_vote": accuracy(rows, task, signal_vote),
            "coverage": sum(any(r["correct"]) for r in rows) / len(rows),
            "sample_accuracy": sum(sum(r["correct"]) for r in rows) / sum(len(r["correct"]) for r in rows),
            "passes_per_question": passes,
            "sampling_s": seconds,
            "reward_model_s": rm_seconds,
        }  # fmt: skip
        table.append(entry)
        print(f"  N={n}: {entry}", flush=True)
    big = max(ns)
    held_auroc = signal_auroc(held_rows[big])
    held_rm_auroc = auroc([s for r in held_rows[big] for s in r["reward"]], [c for r in held_rows[big] for c in r["correct"]])

    # 5. early pruning at N = 16 by the chosen thought signal, vote among the kept
    pruning = []
    n16 = 16
    full16 = next((t for t in table if t["n"] == n16), None)
    for pair in a.prune.split(","):
        after, keep = (int(x) for x in pair.split(":"))
        prune = Pruning(after, keep, signal_score(choice))
        rows, seconds, _, passes = run_samples(method, held_out, task, n16, sampler_at(value, a.seed + 10), a.batch, 8, prune=prune)
        entry = {"after": after, "keep": keep, "vote": accuracy(rows, task, lambda r: majority_vote(r["answers"])),
                 "passes_per_question": passes, "sampling_s": seconds,
                 "passes_vs_vote16": passes / full16["passes_per_question"] if full16 else None}  # fmt: skip
        pruning.append(entry)
        print(f"  prune {pair}: {entry}", flush=True)

    # 6. cost: N samples of q questions vs q·N distinct questions, side by side
    timing = [time_one_question_vs_distinct(method, held_out, n, sampler_at(value, a.seed)) for n in (4, 16)]
    print(f"timing {timing}", flush=True)

    cot, cot_greedy = [], None
    if a.cot_checkpoint:  # decoded as far as its own config says (an 8-number chain's CoT needs 96 tokens)
        cot_method, cot_cfg = load_trained(a.cot_checkpoint)
        cot_tokens = cot_cfg.eval.max_new_tokens
        cot = cot_self_consistency(cot_method, cot_tokens, held_out, task, ns, a.cot_temperature, a.seed, a.batch)
        cot_greedy = evaluate(cot_method, held_out, task, 256, cot_tokens).accuracy

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    result = {
        "checkpoint": a.checkpoint, "cot_checkpoint": a.cot_checkpoint, "task": task, "held_out": source,
        "eval_size": len(held_out), "greedy_accuracy": greedy.accuracy,
        "greedy_passes_per_question": greedy.forward_passes_per_question, "thought_norm": norm,
        "greedy_error_offsets": offsets,
        "sampler": kind, "grid": grid, "chosen": value, "fit_questions": len(fit),
        "reward_model": {"informative_questions": len(kept), "questions": len(groups), "train": rm_metrics,
                         "train_s": rm_train_s, "fit_auroc": fit_rm_auroc, "held_out_auroc": held_rm_auroc},
        "signals": {"fit_auroc": fit_auroc, "held_out_auroc": held_auroc, "chosen": str(choice)},
        "table": table, "pruning": pruning, "timing": timing, "cot": cot, "cot_greedy": cot_greedy,
        "command": "python " + " ".join(sys.argv), "commit": commit, "seconds": time.perf_counter() - began,
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s), shared with other jobs",
    }  # fmt: skip
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    write_doc(result, Path(a.doc))
    print(f"wrote {a.out} and {a.doc}")


def write_doc(r: dict[str, Any], doc: Path) -> None:
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    lines = [
        f"## Parallel test-time scaling of a latent reasoner: `{r['checkpoint']}`, {r['sampler']} sampler",
        "",
        f"{r['task']} task, {r['eval_size']} held-out questions ({r['held_out']}); greedy accuracy "
        f"**{pct(r['greedy_accuracy'])}**. Sampler: {r['sampler']} ("
        f"{SAMPLERS[r['sampler']][0]}), {SAMPLERS[r['sampler']][1]} = {r['chosen']} (chosen by vote@8 on {r['fit_questions']} other "
        f"generated questions; mean thought norm {r['thought_norm']:.1f}). Reward model trained on the reasoner's own "
        f"samples of those questions ({r['reward_model']['informative_questions']} of {r['reward_model']['questions']} "
        f"had right and wrong samples). Selection signal `{r['signals']['chosen']}` (its direction fixed on the "
        "fitting questions). Forward passes are summed over samples (shared prefix once per question). "
        f"Timings on {r['machine']}: compare them only within this table.",
        "",
    ]
    if r.get("greedy_error_offsets"):
        offsets = ", ".join(f"{k}: {v}" for k, v in r["greedy_error_offsets"].items())
        lines += [f"Wrong greedy answers by (answer − gold) mod 10: {offsets}.", ""]
    lines += [
        "| N | vote | LatentRM best-of-N | LatentRM weighted vote | signal best-of-N | signal top-half vote | oracle (coverage) | sample accuracy | passes/question | sampling s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in r["table"]:
        lines.append(
            f"| {t['n']} | {pct(t['vote'])} | {pct(t['reward_best'])} | {pct(t['reward_vote'])} | {pct(t['signal_best'])} | "
            f"{pct(t['signal_vote'])} | {pct(t['coverage'])} | {pct(t['sample_accuracy'])} | {t['passes_per_question']:.1f} | {t['sampling_s']:.1f} |"
        )
    lines += ["", "AUROC for predicting whether a sample is right (held-out samples at the largest N; fitting samples):", "",
              "| predictor | held-out | fitting |", "|---|---|---|",
              f"| LatentRM | {r['reward_model']['held_out_auroc']:.3f} | {r['reward_model']['fit_auroc']:.3f} |"]  # fmt: skip
    for k, v in r["signals"]["held_out_auroc"].items():
        lines.append(f"| {k} | {v:.3f} | {r['signals']['fit_auroc'][k]:.3f} |")
    lines += ["", f"Early pruning at N = 16 by `{r['signals']['chosen']}` (vote among the kept samples):", "",
              "| prune after thoughts | keep | vote | passes/question | passes vs majority@16 |", "|---|---|---|---|---|"]  # fmt: skip
    for t in r["pruning"]:
        ratio = "–" if t["passes_vs_vote16"] is None else f"{100 * t['passes_vs_vote16']:.0f}%"
        lines.append(f"| {t['after']} | {t['keep']} | {pct(t['vote'])} | {t['passes_per_question']:.1f} | {ratio} |")
    lines += ["", "Cost of sampling: N samples of each of q questions against one batch of q·N distinct questions "
              "(greedy `reason`), median of 3 interleaved runs:", "",
              "| N | q | N samples of q questions (s) | q·N distinct questions (s) | ratio |", "|---|---|---|---|---|"]  # fmt: skip
    for t in r["timing"]:
        lines.append(f"| {t['n']} | {t['questions']} | {t['sampled_s']:.3f} | {t['distinct_s']:.3f} | {t['ratio']:.2f} |")
    if r["cot"]:
        lines += ["", f"Reference: CoT (greedy {pct(r['cot_greedy'])}) with temperature sampling and majority vote "
                  "(self-consistency); passes summed over samples:", "",
                  "| N | self-consistency | coverage | passes/question | s |", "|---|---|---|---|---|"]  # fmt: skip
        for t in r["cot"]:
            lines.append(f"| {t['n']} | {pct(t['accuracy'])} | {pct(t['coverage'])} | {t['passes_per_question']:.1f} | {t['seconds']:.1f} |")
    plot = doc.with_suffix(".png")
    _plot(r, plot)
    lines += ["", f"![accuracy vs N]({plot.relative_to(doc.parent.parent)})" if doc.parent.name == "results" else "",
              "", f"Command: `{r['command']}` (commit {r['commit']}, {r['seconds']:.0f} s)", ""]  # fmt: skip
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines))


def _plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [t["n"] for t in r["table"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in [("vote", "majority vote"), ("reward_best", "LatentRM best-of-N"),
                       ("signal_vote", "signal top-half vote"), ("coverage", "oracle (coverage)")]:  # fmt: skip
        ax.plot(ns, [100 * t[key] for t in r["table"]], marker="o", label=label)
    ax.axhline(100 * r["greedy_accuracy"], color="gray", linestyle="--", label="greedy")
    if r["cot"]:
        ax.plot([t["n"] for t in r["cot"]], [100 * t["accuracy"] for t in r["cot"]], marker="s", linestyle=":", label="CoT self-consistency")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("samples per question N")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

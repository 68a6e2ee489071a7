"""SIM-CoT's claim checked at small scale: Coconut, CODI, SIM-CoT(Coconut) and SIM-CoT(CODI) with
k latents, same training budget for all; accuracy and collapse diagnostics per (method, k).

Writes bench/results/latent_study.json and docs/results/latent_study.md. Every run trains from
scratch (a preset backbone, word-level tokenizer) with the same optimizer steps, batch size and
learning rate, no curriculum (every step replaced by k latents from the start, so the budget is
the same for all), then evaluates greedy answers on held-out generated records and measures the
latents (see latentcot.latent.diagnostics).

    python bench/latent_study.py                       # small CPU version (micro preset)
    python bench/latent_study.py --preset tiny --steps 2000 --device cuda --jobs 8
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from latentcot.data.generators import generate
from latentcot.data.tokenizer import train_word_tokenizer
from latentcot.eval.evaluate import evaluate
from latentcot.latent.diagnostics import dataset_diagnostics
from latentcot.methods import build_method, method_config
from latentcot.models import build_preset
from latentcot.train.config import TrainConfig
from latentcot.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["coconut", "codi", "simcot-coconut", "simcot-codi"]
BASELINES = ["nocot", "cot"]  # reference rows, trained once (k does not apply)


def options_for(method: str, k: int, num_steps: int = 0, epochs_per_stage: int = 0) -> tuple[str, dict]:
    """(method name, options) for k latents. Without a curriculum Coconut thinks k thoughts from the
    start; with one (``epochs_per_stage`` > 0) it follows the paper's stages over the task's
    ``num_steps`` steps: ``max_latent_stage = min(k, num_steps)`` stages of ``c = k // stages`` thoughts."""
    if epochs_per_stage:
        stages = max(1, min(k, num_steps))
        if k % stages:
            raise SystemExit(f"k={k} is not a multiple of the {stages} curriculum stages (task has {num_steps} steps)")
        coconut = {"c_thought": k // stages, "max_latent_stage": stages, "epochs_per_stage": epochs_per_stage}
    else:
        coconut = {"c_thought": 1, "max_latent_stage": k, "no_curriculum": True}
    codi = {"num_latents": k}
    choices: dict[str, tuple[str, dict[str, Any]]] = {
        "nocot": ("nocot", {}),
        "cot": ("cot", {}),
        "coconut": ("coconut", coconut),
        "codi": ("codi", codi),
        "simcot-coconut": ("simcot", {"base": "coconut", "base_options": coconut}),
        "simcot-codi": ("simcot", {"base": "codi", "base_options": codi}),
    }
    return choices[method]


def run_one(job: dict) -> dict:
    torch.set_num_threads(job["threads"])
    a = job["args"]
    train = generate(a["task"], a["train_size"], a["seed"], **a["generator"])
    seen = {ex.question for ex in train}
    held = [ex for ex in generate(a["task"], a["eval_size"] * 2, a["seed"] + 1, **a["generator"]) if ex.question not in seen]
    held = held[: a["eval_size"]]
    tokenizer = train_word_tokenizer([*train, *held])
    torch.manual_seed(a["seed"])
    backbone = build_preset(a["preset"], len(tokenizer), max_positions=1024)
    num_steps = max(len(ex.steps) for ex in train)
    name, options = options_for(job["method"], job["k"], num_steps, a["curriculum"])
    method = build_method(name, method_config(name, options), backbone, tokenizer)
    cfg = TrainConfig(lr=a["lr"], batch_size=a["batch_size"], max_steps=a["steps"], seed=a["seed"],
                      log_every=max(1, a["steps"] // 5), keep_last=1, warmup_steps=a["steps"] // 20,
                      schedule=a["schedule"])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        cast(nn.Module, method).to(a["device"])  # every method is an nn.Module (methods/base.py)
        metrics = Trainer(method, train, cfg, run_dir).fit()
    train_s = time.perf_counter() - start
    budget = a["max_new_tokens"] * (4 if name == "cot" else 1)  # CoT writes its steps too
    result = evaluate(method, held, a["task"], batch_size=64, max_new_tokens=budget)
    latent = name not in ("nocot", "cot")
    diag = dataset_diagnostics(method, held[: a["diag_size"]], 64, method if name == "simcot" else None) if latent else {}
    return {"method": job["method"], "k": job["k"], "accuracy": result.accuracy, "train_loss": metrics.get("loss"),
            "step_loss": metrics.get("step_loss"), "train_seconds": round(train_s, 1), **diag}


def references(rows: list[dict]) -> str:
    """The no-latent baselines (trained once with the same budget), as one line above the table."""
    found = [f"{r['method']} {r['accuracy']:.2f}" for r in rows if r["method"] in BASELINES]
    return f"Reference accuracy without latents (same steps, batch and lr): {', '.join(found)}.\n\n" if found else ""


def table(rows: list[dict]) -> str:
    ks = sorted({r["k"] for r in rows if r["method"] not in BASELINES})
    fmt = lambda v, p=2: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
    out = ["| method | " + " | ".join(f"k={k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    by = {(r["method"], r["k"]): r for r in rows}
    for m in METHODS:
        if not any((m, k) in by for k in ks):
            continue
        cells = []
        for k in ks:
            r = by.get((m, k))
            cells.append("" if r is None else f"{fmt(r['accuracy'])} / {fmt(r['mean_cosine'])} / {fmt(r['effective_rank'], 1)}"
                         + ("" if r.get("step_recovery") is None else f" / {fmt(r['step_recovery'])}"))
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="prosqa")
    p.add_argument("--generator", default="{}", help="generator options as JSON")
    p.add_argument("--preset", default="micro")
    p.add_argument("--ks", default="1,2,4,8,16")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-size", type=int, default=4000)
    p.add_argument("--eval-size", type=int, default=200)
    p.add_argument("--diag-size", type=int, default=100)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", default="constant", choices=["constant", "cosine", "linear"],
                   help="learning-rate schedule after warm-up")
    p.add_argument("--curriculum", type=int, default=0, metavar="EPOCHS",
                   help="Coconut (and SIM-CoT on it): the paper's stage curriculum with EPOCHS per stage; "
                        "0 = none (all steps replaced by k latents from the start)")
    p.add_argument("--baselines", action="store_true", help="also train nocot and cot once, as reference rows")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--out", default=str(ROOT / "bench/results/latent_study.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/latent_study.md"))
    p.add_argument("--render", metavar="JSON", help="only rewrite --doc from a finished study's JSON")
    a = p.parse_args()
    if a.render:
        write_doc(json.loads(Path(a.render).read_text()), Path(a.render), Path(a.doc))
        return
    args = {**vars(a), "generator": json.loads(a.generator)}
    jobs = [{"method": m, "k": 0, "args": args, "threads": a.threads} for m in (BASELINES if a.baselines else [])]
    jobs += [{"method": m, "k": int(k), "args": args, "threads": a.threads}
             for m in a.methods.split(",") for k in a.ks.split(",")]
    start = time.perf_counter()
    rows: list[dict] = []
    partial = Path(a.out).with_suffix(".partial.jsonl")  # finished runs, so a cut-off study keeps them
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text("")

    def done(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        with partial.open("a") as f:
            f.write(json.dumps(row) + "\n")

    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
            for future in as_completed([pool.submit(run_one, job) for job in jobs]):
                done(future.result())
    else:
        for job in jobs:
            done(run_one(job))
    order = {(j["method"], j["k"]): i for i, j in enumerate(jobs)}
    rows.sort(key=lambda r: order[(r["method"], r["k"])])
    partial.unlink()
    command = "python bench/latent_study.py " + " ".join(sys.argv[1:])
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine = f"{platform.processor() or platform.machine()}, {a.jobs} run(s) at once, {a.threads} thread(s) each" + (
        f", {gpu}" if gpu else "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    result = {"command": command, "machine": machine, "commit": commit, "settings": args,
              "wall_seconds": round(time.perf_counter() - start, 1), "runs": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    write_doc(result, Path(a.out), Path(a.doc))


def write_doc(result: dict, out: Path, doc_path: Path) -> None:
    """docs/results/<name>.md from a study's JSON (also ``--render JSON`` without training)."""
    a = result["settings"]
    curriculum = (f"Coconut's stage curriculum for coconut and simcot-coconut ({a['curriculum']} epochs per stage, "
                  "min(k, steps) stages of k // stages thoughts; CODI has none)" if a.get("curriculum")
                  else "no curriculum (all steps replaced by k latents)")
    source = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    doc = f"""## Latent study: Coconut, CODI, SIM-CoT with k latents

Generated by `bench/latent_study.py` from `{source}`; do not edit by hand.

Command: `{result['command']}` (commit {result['commit']}, {result['wall_seconds']} s)
Machine: {result['machine']}

Task `{a['task']}` {a['generator'] or ''}, preset `{a['preset']}` trained from scratch, {a['steps']} optimizer steps x batch
{a['batch_size']}, lr {a['lr']} ({a.get('schedule', 'constant')} after {a['steps'] // 20} warm-up steps), {a['train_size']} generated
training records, {curriculum}; {a['eval_size']} held-out generated records for accuracy, the first {a['diag_size']}
for the latent diagnostics.

Cell: accuracy / mean pairwise cosine of an example's latents (1 = collapsed; – for k=1) / effective rank
(max k) [/ step recovery for SIM-CoT: fraction of latents whose decoded step is exactly the true one].

{references(result['runs'])}{table(result['runs'])}
"""
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(doc)
    print(doc)


if __name__ == "__main__":
    main()

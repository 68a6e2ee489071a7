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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

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


def options_for(method: str, k: int) -> tuple[str, dict]:
    coconut = {"c_thought": 1, "max_latent_stage": k, "no_curriculum": True}
    codi = {"num_latents": k}
    return {
        "coconut": ("coconut", coconut),
        "codi": ("codi", codi),
        "simcot-coconut": ("simcot", {"base": "coconut", "base_options": coconut}),
        "simcot-codi": ("simcot", {"base": "codi", "base_options": codi}),
    }[method]


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
    name, options = options_for(job["method"], job["k"])
    method = build_method(name, method_config(name, options), backbone, tokenizer)
    cfg = TrainConfig(lr=a["lr"], batch_size=a["batch_size"], max_steps=a["steps"], seed=a["seed"],
                      log_every=max(1, a["steps"] // 5), keep_last=1, warmup_steps=a["steps"] // 20)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        metrics = Trainer(method.to(a["device"]), train, cfg, run_dir).fit()
    train_s = time.perf_counter() - start
    result = evaluate(method, held, a["task"], batch_size=64, max_new_tokens=a["max_new_tokens"])
    diag = dataset_diagnostics(method, held[: a["diag_size"]], 64, method if name == "simcot" else None)
    return {"method": job["method"], "k": job["k"], "accuracy": result.accuracy, "train_loss": metrics.get("loss"),
            "step_loss": metrics.get("step_loss"), "train_seconds": round(train_s, 1), **diag}


def table(rows: list[dict]) -> str:
    ks = sorted({r["k"] for r in rows})
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
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--out", default=str(ROOT / "bench/results/latent_study.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/latent_study.md"))
    a = p.parse_args()
    args = {**vars(a), "generator": json.loads(a.generator)}
    jobs = [{"method": m, "k": int(k), "args": args, "threads": a.threads}
            for m in a.methods.split(",") for k in a.ks.split(",")]
    start = time.perf_counter()
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(run_one, jobs))
    else:
        rows = []
        for job in jobs:
            rows.append(run_one(job))
            print(json.dumps(rows[-1]), flush=True)
    command = "python bench/latent_study.py " + " ".join(sys.argv[1:])
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads" + (f", {gpu}" if gpu else "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    result = {"command": command, "machine": machine, "commit": commit, "settings": args,
              "wall_seconds": round(time.perf_counter() - start, 1), "runs": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    doc = f"""# Latent study: Coconut, CODI, SIM-CoT with k latents

Generated by `bench/latent_study.py` from `{Path(a.out).relative_to(ROOT) if Path(a.out).is_relative_to(ROOT) else a.out}`; do not edit by hand.

Command: `{command}` (commit {commit}, {result['wall_seconds']} s)
Machine: {machine}

Task `{a.task}` {args['generator'] or ''}, preset `{a.preset}` trained from scratch, {a.steps} optimizer steps x batch
{a.batch_size}, lr {a.lr}, {a.train_size} generated training records, no curriculum (all steps replaced by k latents);
{a.eval_size} held-out generated records for accuracy, the first {a.diag_size} for the latent diagnostics.

Cell: accuracy / mean pairwise cosine of an example's latents (1 = collapsed; – for k=1) / effective rank
(max k) [/ step recovery for SIM-CoT: fraction of latents whose decoded step is exactly the true one].

{table(rows)}
"""
    Path(a.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(a.doc).write_text(doc)
    print(doc)


if __name__ == "__main__":
    main()

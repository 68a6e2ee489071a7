"""Language-model quality on the real ProsQA and ProntoQA validation sets, trained on generated data only.

    python bench/lm_quality.py --device cuda --preset tiny --budget 210 --slowdown 5 --tag gpu   # 6 runs at once on one GPU
    python bench/lm_quality.py --device cpu --preset micro --budget 60 --parallel 1 --tag cpu

For each task (ProsQA, ProntoQA) and method (no-CoT, CoT, Coconut) a model is built from a preset
and trained from scratch on generated records (``latentcot.data.generators``), then evaluated on
the real validation file from the data directory. Each run is its own process. The number of
epochs is fitted to a wall-clock ``--budget``: the run first times a few training steps (at the
heaviest curriculum stage for Coconut) and then trains ``budget / (slowdown x epoch time)`` epochs
(the probe runs before the others load the device, hence ``--slowdown``), so the
recorded config is exact and re-runnable. Writes bench/results/lm_quality[_TAG].json and
docs/results/lm_quality[_TAG].md (generated from the JSON). Reference numbers (Hao et al. 2024,
arXiv:2412.06769, Table 1, pretrained GPT-2): ProsQA Coconut 97.0, CoT 77.5, no-CoT 76.7;
ProntoQA Coconut 99.8, CoT 98.8, no-CoT 93.8.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict, cast

import torch
from torch import nn

from latentcot.config import to_dict
from latentcot.data.paths import data_dir
from latentcot.train import recipe
from latentcot.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


class Task(TypedDict):
    train_size: int
    eval_file: str


TASKS: dict[str, Task] = {  # generated training size (the papers' training-set sizes) and the real validation file
    "prosqa": {"train_size": 17886, "eval_file": "prosqa/prosqa_valid.json"},
    "prontoqa": {"train_size": 9000, "eval_file": "prontoqa/prontoqa_valid.json"},
}
METHODS = ("nocot", "cot", "coconut")
PAPER = {("prosqa", "coconut"): 97.0, ("prosqa", "cot"): 77.5, ("prosqa", "nocot"): 76.7,
         ("prontoqa", "coconut"): 99.8, ("prontoqa", "cot"): 98.8, ("prontoqa", "nocot"): 93.8}
MAX_LATENT_STAGE = 6  # the paper's setting for both tasks (c_thought = 1)


def run_config(spec: dict, epochs: int) -> recipe.RunConfig:
    method: dict = {"name": spec["method"]}
    if spec["method"] == "coconut":
        # the paper spends 30 of 50 epochs on stages 0..6 (5 each), the rest on the final stage
        per_stage = max(1, int(0.6 * epochs / (MAX_LATENT_STAGE + 1)))
        method.update(max_latent_stage=MAX_LATENT_STAGE, c_thought=1, epochs_per_stage=per_stage)
    return recipe.RunConfig(
        out_dir=spec["out_dir"],
        seed=0,
        data=recipe.DataConfig(task=spec["task"], train_size=spec["train_size"] or TASKS[spec["task"]]["train_size"],
                               eval_file=TASKS[spec["task"]]["eval_file"], eval_size=0),
        model=recipe.ModelConfig(name_or_path=spec["preset"]),
        method=method,
        train=TrainConfig(epochs=epochs, batch_size=spec["batch_size"], lr=spec["lr"], warmup_steps=100,
                          schedule="cosine", bf16=spec["bf16"], log_every=50),
        eval=recipe.EvalConfig(batch_size=300, max_new_tokens=160 if spec["method"] == "cot" else 32),
    )


def seconds_per_step(spec: dict, device: torch.device) -> float:
    """Median time of a training step at the method's heaviest stage (the last, for Coconut)."""
    cfg = run_config(spec, epochs=1)
    train, held_out, _ = recipe.load_examples(cfg.data, cfg.seed)
    method = recipe.build(cfg, train, held_out)
    module = cast(nn.Module, method).to(device)  # every method is an nn.Module (methods/base.py)
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-5)
    batch = method.collate(train[: spec["batch_size"]], stage=method.num_stages() - 1)
    batch = {k: v.to(device) for k, v in batch.items()}
    times = []
    for i in range(13):
        began = time.perf_counter()
        with torch.autocast(device.type, torch.bfloat16, enabled=spec["bf16"] and device.type == "cuda"):
            loss = module(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 3:  # warm-up first
            times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


def worker(spec: dict) -> dict:
    """One run: fit the epochs to the budget, train, evaluate on the real validation file."""
    device = torch.device(spec["device"])
    torch.set_num_threads(spec["threads"])
    started = time.time()
    step_s = seconds_per_step(spec, device)
    steps_per_epoch = (spec["train_size"] or TASKS[spec["task"]]["train_size"]) // spec["batch_size"]
    epochs = max(1, min(spec["max_epochs"], int(spec["budget"] / (step_s * steps_per_epoch))))
    if spec["method"] == "coconut":  # every curriculum stage at least once, plus the final stage
        epochs = max(epochs, MAX_LATENT_STAGE + 2)
    cfg = run_config(spec, epochs)
    probe_s = time.time() - started
    began = time.time()
    out = recipe.main(cfg)
    return {"task": spec["task"], "method": spec["method"], "config": to_dict(cfg), "probe_seconds_per_step": step_s,
            "probe_seconds": probe_s, "train_and_eval_seconds": time.time() - began, "eval": out["eval"],
            "eval_source": out["eval_source"], "final_train_loss": out["train"].get("loss"),
            "optimizer_steps": out["train"].get("step")}


def machine_name(device: str, threads: int) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    return f"{names[0] if names else 'CPU'}, {threads} thread(s) per run, torch {torch.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--budget", type=float, default=210, help="training seconds per run (epochs are fitted to it)")
    parser.add_argument("--slowdown", type=float, default=1.0,
                        help="expected slowdown of training under the parallel runs vs the probe (about 5 for 6 runs on one H100)")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=0, help="generated training records (0 = the papers' sizes)")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--no-bf16", action="store_true", help="float32 training on CUDA")
    parser.add_argument("--parallel", type=int, default=6, help="runs at once (processes)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--tasks", default="prosqa,prontoqa")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--work-dir", default="", help="run folders ('' = a fresh temporary folder)")
    parser.add_argument("--run-timeout", type=float, default=0, help="kill a run after this many seconds (0 = never)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one run, in its own process
        spec = json.loads(args.worker)
        Path(spec["result"]).write_text(json.dumps(worker(spec), indent=2, default=str))
        return 0
    if data_dir() is None:
        raise SystemExit("no data directory: set LATENTCOT_DATA_DIR to a folder with prosqa/ and prontoqa/")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="lm_quality_"))
    work.mkdir(parents=True, exist_ok=True)
    specs = [{"task": task, "method": method, "preset": args.preset, "device": args.device, "budget": args.budget / args.slowdown,
              "max_epochs": args.max_epochs, "batch_size": args.batch_size, "train_size": args.train_size, "lr": args.lr, "bf16": not args.no_bf16 and args.device == "cuda",
              "threads": args.threads, "out_dir": str(work / f"{task}_{method}"), "result": str(work / f"{task}_{method}.json")}
             for task in args.tasks.split(",") for method in args.methods.split(",")]
    started = time.time()

    def launch(spec: dict) -> dict:
        log = open(work / f"{spec['task']}_{spec['method']}.log", "w")
        try:
            code = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], stdout=log, stderr=subprocess.STDOUT,
                                  timeout=args.run_timeout or None).returncode
        except subprocess.TimeoutExpired:
            return {"task": spec["task"], "method": spec["method"], "error": f"killed after --run-timeout {args.run_timeout} s"}
        if code:
            return {"task": spec["task"], "method": spec["method"], "error": f"exit {code}, see {log.name}"}
        return json.loads(Path(spec["result"]).read_text())

    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(launch, specs))
    result = {"command": "python bench/lm_quality.py " + " ".join(sys.argv[1:]), "machine": machine_name(args.device, args.threads),
              "parallel_runs": args.parallel, "budget_s": args.budget, "slowdown": args.slowdown, "wall_seconds": time.time() - started, "paper_table1": {f"{t}/{m}": v for (t, m), v in PAPER.items()},
              "runs": runs}
    suffix = f"_{args.tag}" if args.tag else ""
    (ROOT / f"bench/results/lm_quality{suffix}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (ROOT / f"docs/results/lm_quality{suffix}.md").write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    """The Markdown section, generated from the JSON result alone."""
    lines = [f"## Language-model quality ({r['machine'].split(',')[0]})", "",
             f"`{r['command']}` on {r['machine']}; {r['parallel_runs']} runs at once, {r['wall_seconds'] / 60:.1f} min wall in all.",
             "Each model is built from a preset and trained from scratch on generated records only, then evaluated (greedy) on",
             "the whole real validation file. The paper column is Hao et al. 2024 Table 1 (pretrained GPT-2, 50 epochs).", "",
             "| task | method | preset | epochs | steps | train+eval min | bf16 | accuracy | paper | tokens/q | forward passes/q | n |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in r["runs"]:
        if "error" in run:
            lines.append(f"| {run['task']} | {run['method']} | — | — | — | — | — | failed: {run['error']} | — | — | — | — |")
            continue
        c, e = run["config"], run["eval"]
        method = c["method"]["name"] + (f" (stages 0-{c['method']['max_latent_stage']}, {c['method']['epochs_per_stage']} ep/stage)"
                                         if c["method"]["name"] == "coconut" else "")
        lines.append(f"| {run['task']} | {method} | {c['model']['name_or_path']} | {c['train']['epochs']} | {run['optimizer_steps']} | "
                     f"{run['train_and_eval_seconds'] / 60:.1f} | {c['train']['bf16']} | **{100 * e['accuracy']:.1f}%** | "
                     f"{r['paper_table1'][run['task'] + '/' + run['method']]} | {e['tokens_per_question']:.1f} | "
                     f"{e['forward_passes_per_question']:.1f} | {e['n']} |")
    lines += ["", "Exact configs (batch size, lr, schedule, curriculum, data sizes) are in the JSON next to each run."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

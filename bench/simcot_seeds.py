"""SIM-CoT and Coconut on the demo's setting, over seeds, numbers of thoughts and thought scaling.

For each seed: train the demo's CoT model once (its stage 0), then Coconut and/or SIM-CoT (on
Coconut) from it at stage 1, with the demo's schedule (``latentcot.demo``: running sums of 5
terms mod 10, 3,000 training questions, 500 held-out ones generated with seed + 1, batch 32,
lr 1e-3, ``--epochs-per-stage`` epochs per curriculum stage (the demo's 3 by default), 40 epochs), for every ``c_thought`` in ``--cs`` (5·c
thoughts: four steps and the answer thought; ``--length L`` makes it L terms, L·c thoughts; ``--max-latent-stage M``
below L gives M·c thoughts, the last of them standing for every step left, as in the reference) and every
``latent_scale`` in ``--scales``. Every
run is its own ``latentcot train`` process; ``--jobs`` run at once, each with ``--threads``.

Writes bench/results/simcot_seeds.json and docs/results/simcot_seeds.md (accuracy per seed, and
how many seeds reach 95%).

    python bench/simcot_seeds.py --seeds 0,1,2,3,4 --cs 1 --scales none,embedding --jobs 2
    python bench/simcot_seeds.py --seeds 0 --cs 1 --epochs 2 --train-size 64 --eval-size 16   # smoke
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import torch

from latentcot.demo import COMMON
from latentcot.train.checkpoint import latest_checkpoint, read_info

ROOT = Path(__file__).resolve().parents[1]


def train(name: str, overrides: list[str], out: Path, threads: int) -> dict:
    """One ``latentcot train`` run (skipped when its eval.json is there); its summary."""
    folder = out / name
    if not (folder / "eval.json").is_file():
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        with (out / f"{name}.log").open("w") as log:
            subprocess.run([sys.executable, "-m", "latentcot.cli", "train", *overrides, f"out_dir={folder}", "--overwrite"],
                           check=True, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        (folder / "wall.json").write_text(json.dumps({"wall_seconds": round(time.perf_counter() - start, 1)}))
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = [m for m in metrics if "loss" in m and "step" in m][-1]
    result = json.loads((folder / "eval.json").read_text())
    wall = json.loads((folder / "wall.json").read_text())["wall_seconds"] if (folder / "wall.json").is_file() else None
    clock = "wall"
    if wall is None and (final := latest_checkpoint(folder)) is not None:
        # a run its launcher did not see end (resumed, or collected by a later call): the trainer's own clock,
        # kept across resumes in every checkpoint (training time, without the final evaluation)
        wall, clock = read_info(final).get("seconds"), "trainer"
    return {"name": name, "accuracy": result["accuracy"], "forward_passes": result["forward_passes_per_question"],
            "steps": last["step"], "loss": last["loss"], "answer_loss": last.get("answer_loss"),
            "step_loss": last.get("step_loss"), "wall_seconds": wall, "clock": clock}


def base(seed: int, a: argparse.Namespace) -> list[str]:
    common = [o for o in COMMON if not o.startswith("data.generator=")]
    stride = f", stride: {a.stride}" if a.stride != 1 else ""
    return [*common, f"data.generator={{length: {a.length}{stride}}}", f"seed={seed}", f"data.train_size={a.train_size}",
            f"data.eval_size={a.eval_size}", f"train.batch_size={a.batch_size}", f"model.name_or_path={a.preset}"]


def written_steps(length: int, stride: int) -> int:
    """Written steps of a chain of ``length`` terms at ``stride`` additions per step (the last takes what is left)."""
    return -(-(length - 1) // stride)


def stages(a: argparse.Namespace) -> int:
    """Coconut's ``max_latent_stage``: ``--max-latent-stage``, else one stage per term."""
    return a.max_latent_stage or a.length


def latent_overrides(method: str, c: int, scale: str, cot: Path, a: argparse.Namespace) -> list[str]:
    coconut = (f"c_thought: {c}, max_latent_stage: {stages(a)}, epochs_per_stage: {a.epochs_per_stage}, start_stage: 1, "
               f"steps_per_stage: {a.steps_per_stage}, "
               f"latent_scale: {scale}")
    spec = (f"method={{name: coconut, {coconut}}}" if method == "coconut"
            else f"method={{name: simcot, base: coconut, base_options: {{{coconut}}}}}")
    return [spec, f"model.init_from={cot}", f"train.epochs={a.epochs}", "eval.max_new_tokens=8", *a.set]


def run_seed(seed: int, a: argparse.Namespace, out: Path) -> list[dict]:
    cot = train(f"s{seed}_cot", [*base(seed, a), "method={name: cot}", f"eval.max_new_tokens={12 * a.length}",
                                  f"train.epochs={a.cot_epochs}"], out, a.threads)
    rows = [{"seed": seed, "method": "cot", "c": 0, "scale": "", **cot}]
    jobs = [(m, c, s) for m in a.methods.split(",") for c in map(int, a.cs.split(",")) for s in a.scales.split(",")]
    for method, c, scale in jobs:
        name = (f"s{seed}_{method}_c{c}_{scale}" + (f"_m{stages(a)}" if stages(a) != a.length else "")
                + (f"_g{a.steps_per_stage}" if a.steps_per_stage != 1 else ""))
        r = train(name, [*base(seed, a), *latent_overrides(method, c, scale, out / f"s{seed}_cot", a)], out, a.threads)
        rows.append({"seed": seed, "method": method, "c": c, "thoughts": stages(a) * c, "scale": scale, **r})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def write_doc(result: dict, doc: Path) -> None:
    rows = [r for r in result["runs"] if r["method"] != "cot"]
    seeds = sorted({r["seed"] for r in result["runs"]})
    length = result["args"].get("length", 5)
    keys = sorted({(r["method"], r["c"], r["scale"]) for r in rows}, key=lambda k: (k[0], k[2], k[1]))
    head = "| method | thoughts | latent_scale | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | seeds ≥ 95% |"
    lines = [head, "|---" * (len(seeds) + 5) + "|"]
    for method, c, scale in keys:
        accs = {r["seed"]: r["accuracy"] for r in rows if (r["method"], r["c"], r["scale"]) == (method, c, scale)}
        cells = [f"{accs[s]:.1%}" if s in accs else "–" for s in seeds]
        mean = sum(accs.values()) / len(accs)
        thoughts = {r.get("thoughts", length * c) for r in rows if (r["method"], r["c"], r["scale"]) == (method, c, scale)}
        lines.append(f"| {method} | {'/'.join(map(str, sorted(thoughts)))} | {scale} | " + " | ".join(cells)
                     + f" | {mean:.1%} | {sum(v >= 0.95 for v in accs.values())} of {len(accs)} |")
    cots = {r["seed"]: r["accuracy"] for r in result["runs"] if r["method"] == "cot"}
    lines.append("| cot (the start) | – | – | " + " | ".join(f"{cots[s]:.1%}" if s in cots else "–" for s in seeds)
                 + f" | {sum(cots.values()) / len(cots):.1%} | {sum(v >= 0.95 for v in cots.values())} of {len(cots)} |")
    walls = [r["wall_seconds"] for r in rows if r.get("wall_seconds")]
    trainer = sum(r.get("clock") == "trainer" and bool(r.get("wall_seconds")) for r in rows)
    wall = "" if not walls else (
        f"Wall time per latent run: {min(walls):.0f}–{max(walls):.0f} s (`--jobs {result['args']['jobs']}`: this command's\n"
        f"runs at once, {result['args']['threads']} thread each; other work on the cores, if any, is in the note below"
        + (f"; {trainer} run(s) without a wall clock give their trainer's, training only" if trainer else "") + ").\n")
    m, g = result["args"].get("max_latent_stage") or length, result["args"].get("steps_per_stage", 1)
    stride = result["args"].get("stride", 1)
    n_steps = written_steps(length, stride)
    first = (m - 1) * g + 1  # the first step the last group stands for
    last_group = f"steps {first}–{n_steps}" if first < n_steps else f"step {n_steps}"
    thinking = (f"{length}·c thoughts ({length - 1} steps and the answer thought)" if m == length else
                f"{m}·c thoughts (max_latent_stage {m}, steps_per_stage {g}: {g} step(s) per group, the last standing "
                f"for {last_group})")
    steps_text = (f"{length - 1} steps" if stride == 1 else f"{length - 1} additions written as {n_steps} steps of "
                  f"{stride} (data.generator stride {stride}; the last step takes what is left)")
    source = str(result.get("json") or result["args"]["out"]).removeprefix(f"{ROOT}/")  # the JSON this was made from
    text = f"""## SIM-CoT and Coconut on the demo's setting, over seeds

Generated by `bench/simcot_seeds.py` from `{source}`; do not edit by hand.

Command: `{result['command']}` (commit {result['commit']})
Machine: {result['machine']}.

Running sums of {length} terms mod 10 ({steps_text}), {result['args']['train_size']} generated training questions
(seed N), {result['args']['eval_size']} held-out ones (seed N + 1, filtered against training), preset
`{result['args']['preset']}`. Each seed's CoT model is trained once ({result['args']['cot_epochs']} epochs); Coconut and
SIM-CoT (on Coconut) start from it at curriculum stage 1, {result['args']['epochs_per_stage']} epochs per stage,
{result['args']['epochs']} epochs in all (batch {result['args']['batch_size']}, lr 1e-3), and think {thinking}. Extra overrides of the latent runs: {', '.join(result['args'].get('set') or []) or 'none'}.
Cell: held-out accuracy.

{chr(10).join(lines)}

{wall}{result['args'].get('note') or ''}
"""
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--methods", default="simcot", help="comma list of coconut, simcot")
    p.add_argument("--cs", default="1", help="thoughts per step (c_thought); length·c thoughts in all")
    p.add_argument("--scales", default="embedding", help="comma list of latent_scale values: none, embedding")
    p.add_argument("--length", type=int, default=5, help="terms of each running sum (the demo's 5: 4 steps)")
    p.add_argument("--preset", default="shallow-128")
    p.add_argument("--max-latent-stage", type=int, default=0,
                   help="Coconut's max_latent_stage (0: --length): fewer gives max_latent_stage·c thoughts")
    p.add_argument("--steps-per-stage", type=int, default=1,
                   help="Coconut's steps_per_stage: written steps each stage (and thought group) stands for")
    p.add_argument("--stride", type=int, default=1,
                   help="additions per written step of the chain (data.generator stride); above 1 needs --max-latent-stage")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--epochs-per-stage", type=int, default=3)
    p.add_argument("--cot-epochs", type=int, default=8)
    p.add_argument("--train-size", type=int, default=3000)
    p.add_argument("--eval-size", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra override of every latent run (e.g. train.optimizer_reset=none)")
    p.add_argument("--jobs", type=int, default=2, help="seeds trained at once")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work-dir", default=str(ROOT / "runs/simcot_seeds"))
    p.add_argument("--out", default=str(ROOT / "bench/results/simcot_seeds.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/simcot_seeds.md"))
    p.add_argument("--render", metavar="JSON", help="only rewrite --doc from a finished run's JSON")
    p.add_argument("--note", default="", help="a sentence appended to --doc (how the runs were made, if not by this command alone)")
    a = p.parse_args()
    if a.render:
        result = json.loads(Path(a.render).read_text())
        if a.note:  # kept in the JSON, so a later re-render keeps it
            result["args"]["note"] = a.note
            Path(a.render).write_text(json.dumps(result, indent=2))
        result["json"] = a.render
        write_doc(result, Path(a.doc))
        return
    for m in a.methods.split(","):
        if m not in ("coconut", "simcot"):
            raise SystemExit(f"--methods: unknown method {m!r} (coconut, simcot)")
    if a.stride < 1 or (a.stride > 1 and not a.max_latent_stage):
        raise SystemExit(f"--stride {a.stride}: must be 1 or more, and above 1 needs --max-latent-stage (the chain "
                         f"has {written_steps(a.length, max(a.stride, 1))} written steps)")
    out = Path(a.work_dir)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    # without --note and its text (sys.argv[i] is the word before x)
    argv = [x for i, x in enumerate(sys.argv[1:]) if not (x.startswith("--note") or sys.argv[i] == "--note")]
    result = {"command": "python bench/simcot_seeds.py " + " ".join(argv), "commit": commit,  # the note is shown apart
              "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
              "args": vars(a), "runs": []}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(a.jobs) as pool:  # each run is its own process
        futures = [pool.submit(run_seed, seed, a, out) for seed in map(int, a.seeds.split(","))]
        for future in as_completed(futures):  # written after every seed: a study cut short keeps what finished
            result["runs"] += future.result()
            result["runs"].sort(key=lambda r: (r["seed"], r["method"], r["c"], r["scale"]))
            Path(a.out).write_text(json.dumps(result, indent=2))
            write_doc(result, Path(a.doc))


if __name__ == "__main__":
    main()

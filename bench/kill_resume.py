"""Kill -9 a training run at random moments, resume it each time, and check that the final
weights are bit-identical to an uninterrupted run of the same seed (CPU).

    python bench/kill_resume.py                      # 20 kills, at least 3 during checkpoint writes
    python bench/kill_resume.py --kills 4 --during-write 1 --steps 40   # quick (the slow test)
    python bench/kill_resume.py --model endocot      # the same for EndoCoT (`latentcot visual train`)

Each attempt starts `latentcot train ... --resume` in its own process and SIGKILLs it either at a
random moment of training or the instant a checkpoint write is under way (a `checkpoints/.tmp-*`
folder exists). After the kills the run is resumed to the end. Should a resumed run finish before
the next kill, it is compared with the uninterrupted one and a new run starts. Writes
bench/results/kill_resume.json: kills, kills during a write, resumes, and for every finished run
whether its final weights are bit-identical and metrics.jsonl holds every logged step once.

Measured (2-core CPU shared with other runs, micro Coconut with dropout on the chain task, 120
steps): 20 kills, 10 during a checkpoint write, 20/20 resumes, final weights bit-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def config(out: Path, steps: int) -> list[str]:
    return ["data.task=chain", "data.train_size=256", "data.eval_size=8", "model.name_or_path=micro",
            "model.dropout=0.1", "method={name: coconut, c_thought: 1, max_latent_stage: 2, epochs_per_stage: 1}",
            "train.batch_size=8", f"train.max_steps={steps}", "train.save_every=3", "train.keep_last=2",
            "train.log_every=1", "train.warmup_steps=5", "train.schedule=cosine", "eval.max_new_tokens=8",
            "eval.batch_size=8", f"out_dir={out}"]


def visual_config(out: Path, steps: int) -> list[str]:
    """A small EndoCoT run on 4x4 mazes: stage 1 for the first third of the steps, then stage 2."""
    return ["device=cpu", "data.train_size=256", "data.eval_size=4", "sample_steps=2", "train.batch_size=16",
            f"train.stage1_steps={steps // 3}", f"train.stage2_steps={steps - steps // 3}", "train.save_every=3",
            "train.keep_last=2", "train.log_every=1", "train.warmup_steps=5", "model.reasoner_hidden=32",
            "model.dit_hidden=32", "model.dit_depth=2", f"out_dir={out}"]


MODEL = "coconut"  # or "endocot": set by main


def start(out: Path, steps: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "ab")  # a pipe could fill and stall the run
    command = (["visual", "train", *visual_config(out, steps)] if MODEL == "endocot"
               else ["train", *config(out, steps)])
    return subprocess.Popen([sys.executable, "-m", "latentcot.cli", *command, "--resume"],
                            stdout=log, stderr=log, env=env)


def writing(out: Path) -> bool:
    root = out / "checkpoints"
    return root.is_dir() and any(p.name.startswith(".tmp-step") for p in root.iterdir())


def step_reached(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            pass
    return max(steps, default=0)


def final_weights(out: Path) -> dict:
    from latentcot.train.checkpoint import latest_checkpoint, read_method_state

    checkpoint = latest_checkpoint(out)
    if checkpoint is None:
        raise FileNotFoundError(f"no complete checkpoint in {out}")
    return read_method_state(checkpoint)


def compare(ref: Path, run: Path, steps: int, kills_so_far: int) -> dict:
    """A finished run against the uninterrupted one: weights bit-identical, each step logged once."""
    import torch

    a, b = final_weights(ref), final_weights(run)
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    return {"after_kill": kills_so_far, "identical": a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a),
            "metrics_each_step_once": logged == list(range(1, steps + 1))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--during-write", type=int, default=5, help="kills aimed at a checkpoint write")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=["coconut", "endocot"], default="coconut",
                        help="a micro Coconut through `latentcot train`, or a small EndoCoT through `latentcot visual train`")
    parser.add_argument("--work", default="runs/bench/kill_resume")
    parser.add_argument("--out", default=str(HERE / "results" / "kill_resume.json"))
    args = parser.parse_args(argv)
    global MODEL
    MODEL = args.model
    rng = random.Random(args.seed)
    work = Path(args.work)
    ref, run = work / "uninterrupted", work / "killed"
    for folder in (ref, run):
        subprocess.run(["rm", "-rf", str(folder)], check=True)

    began = time.perf_counter()
    proc = start(ref, args.steps)
    assert proc.wait() == 0, f"training failed; see the logs in {work}"
    reference_seconds = time.perf_counter() - began

    plan = ["write"] * args.during_write + ["random"] * (args.kills - args.during_write)
    rng.shuffle(plan)
    kills, during_write, attempts, log, rounds = 0, 0, 0, [], []
    while kills < args.kills:
        mode = plan[kills]
        attempts += 1
        before = step_reached(run)
        proc = start(run, args.steps)
        if mode == "write":  # poll for a checkpoint write under way, kill the instant one is seen
            while proc.poll() is None and not writing(run):
                time.sleep(0.0005)
        else:  # a random moment after training has (re)started
            while proc.poll() is None and step_reached(run) <= before:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 1.5))
        if proc.poll() is not None:  # the run finished before this kill: check it, then start a new one
            assert proc.returncode == 0, f"training failed; see the logs in {work}"
            log.append({"mode": mode, "killed": False})
            rounds.append(compare(ref, run, args.steps, kills))
            subprocess.run(["rm", "-rf", str(run)], check=True)
            continue
        in_write = writing(run)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        during_write += in_write
        log.append({"mode": mode, "killed": True, "during_write": in_write, "step_logged": step_reached(run)})
    proc = start(run, args.steps)  # the last resume runs to the end
    assert proc.wait() == 0, f"training failed; see the logs in {work}"
    rounds.append(compare(ref, run, args.steps, kills))
    result = {"model": args.model, "kills": kills, "kills_during_checkpoint_write": during_write, "resumes": kills,
              "attempts": attempts, "steps": args.steps,
              "final_weights_bit_identical": all(r["identical"] for r in rounds),
              "metrics_each_step_once": all(r["metrics_each_step_once"] for r in rounds), "runs": rounds,
              "uninterrupted_seconds": round(reference_seconds, 1), "log": log,
              "command": "python bench/kill_resume.py " + " ".join(argv or sys.argv[1:])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "log"}))
    return result


if __name__ == "__main__":
    main()

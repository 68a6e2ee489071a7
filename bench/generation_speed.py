"""Questions/s of `evaluate` against an earlier commit, side by side, and the answers checked equal.

    python bench/generation_speed.py                      # baseline: the code before length bucketing
    python bench/generation_speed.py --baseline COMMIT --coconut RUN --cot RUN

Issue 18's goal is measured against the code of its day: "generation at batch 64 >= 2x today's
questions/s on ProsQA validation prompts, with identical answers". This script puts the package
of ``--baseline`` (``git archive`` of its ``src/``) and the working tree's in two long-lived worker
processes, loads the same trained run folders in both, and times whole ``evaluate`` calls (the
first ``--n`` ProsQA validation questions, tokenising to scoring) alternately, baseline then
current, ``--repeats`` times per batch size; medians are reported. Each version runs as it
ships: the baseline without length bucketing (it had none), the current code with its
defaults. Every prediction (text and answer) of the two is compared.

Without ``--coconut``/``--cot`` it first trains the two micro models (Coconut with 6 thoughts,
no curriculum; CoT) on generated ProsQA with the *baseline's* ``latentcot train`` (~4 minutes),
so that both versions can read their checkpoints. Writes bench/results/generation_speed.json and
docs/results/generation_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_BUCKETING = "12a1275"  # the parent of 479bc3b, which added length bucketing to `evaluate`


def worker(args: argparse.Namespace) -> int:
    """Serve timed `evaluate` calls: one JSON request per stdin line, one JSON answer per line."""
    import inspect

    import torch

    from latentcot.data.formats import read_examples
    from latentcot.data.generators import generate
    from latentcot.data.paths import data_dir
    from latentcot.errors import LatentCotError
    from latentcot.eval.evaluate import evaluate
    from latentcot.train import recipe

    torch.set_num_threads(args.threads)
    root = data_dir(None)  # the same questions for both versions: the real file, else generated ones
    path = root / "prosqa/prosqa_valid.json" if root else None
    if path is not None and path.is_file():
        examples, source = read_examples(path)[: args.n], str(path)
    else:
        examples, source = generate("prosqa", args.n, 12345), "generated prosqa (seed 12345; the real file is absent)"
    models = {}
    for line in sys.stdin:
        request = json.loads(line)
        path = request["model"]
        if path not in models:
            try:
                method, cfg = recipe.load_trained(path)
            except LatentCotError as err:  # a checkpoint written by a later version than this one
                if "unknown key" not in str(err):
                    raise
                method, cfg = recipe.load_trained(known_keys_only(Path(path), recipe.RunConfig))
            models[path] = (method.eval(), cfg.data.task)
        method, task = models[path]
        kwargs = {}
        if "bucket" in inspect.signature(evaluate).parameters:
            kwargs["bucket"] = True  # the current default, named so a changed default cannot hide here
        if request.get("warm"):
            evaluate(method, examples[: request["batch"]], task, request["batch"], args.max_new_tokens, **kwargs)
        began = time.perf_counter()
        result = evaluate(method, examples, task, request["batch"], args.max_new_tokens, **kwargs)
        seconds = time.perf_counter() - began
        predictions = [(p["question"], p["text"], p["predicted"]) for p in result.predictions]
        print(json.dumps({"seconds": seconds, "predictions": predictions, "source": source,
                          "accuracy": result.accuracy}), flush=True)
    return 0


def known_keys_only(run: Path, config_type: type) -> Path:
    """A copy of run folder ``run`` whose checkpoints' recorded configs keep only the keys
    ``config_type`` (this version's ``RunConfig``) knows, so that an older version can load a
    checkpoint trained by a newer one (the weights and the method's options are untouched)."""
    import dataclasses
    import shutil
    import typing

    from latentcot.train.checkpoint import info_checksum

    def keep(value: dict, tp: type) -> dict:
        hints = typing.get_type_hints(tp)
        out = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                sub = hints[f.name]
                out[f.name] = keep(value[f.name], sub) if isinstance(sub, type) and dataclasses.is_dataclass(sub) else value[f.name]
        return out

    copy = Path(tempfile.mkdtemp(prefix="known_keys_")) / run.name
    shutil.copytree(run, copy)
    for info_file in copy.glob("checkpoints/*/latentcot.json"):
        info = json.loads(info_file.read_text())
        info["config"] = keep(info["config"], config_type)
        if "checksum" in info:  # recomputed the way the loading version checks it
            info["checksum"] = info_checksum(info)
        info_file.write_text(json.dumps(info))
    return copy


class Worker:
    """A worker process running one version of the package."""

    def __init__(self, src: Path, args: argparse.Namespace):
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(args.threads)}
        if args.data_dir:  # resolved once here: each version would look for it from its own folder
            env["LATENTCOT_DATA_DIR"] = args.data_dir
        command = [sys.executable, __file__, "--worker", "--threads", str(args.threads), "--n", str(args.n),
                   "--max-new-tokens", str(args.max_new_tokens)]
        self.process = subprocess.Popen(command, env=env, cwd=tempfile.gettempdir(), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def run(self, model: str, batch: int, warm: bool = False) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"model": model, "batch": batch, "warm": warm}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a worker ({self.process.args!r}) died; its error is above")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def checkout(commit: str, into: Path) -> Path:
    """``src/`` of ``commit`` under ``into``; returns the folder to put on PYTHONPATH."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def train_with(src: Path, work: Path, threads: int) -> dict[str, str]:
    """Micro Coconut (6 thoughts, no curriculum) and CoT on generated ProsQA, with the package at ``src``."""
    common = ["data.task=prosqa", "data.train_size=2000", "data.eval_size=64", "model.name_or_path=micro", "seed=0",
              "train.epochs=6", "train.batch_size=32", "train.lr=1e-3", "train.warmup_steps=20",
              "train.schedule=cosine", "train.log_every=50", "eval.batch_size=64", "eval.max_new_tokens=128"]
    methods = {"coconut": ["method.name=coconut", "method.no_curriculum=true", "method.max_latent_stage=6"],
               "cot": ["method.name=cot"]}
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads)}
    paths = {}
    for name, extra in methods.items():
        out = work / name
        code = "import sys; from latentcot.cli import main; sys.exit(main())"
        subprocess.run([sys.executable, "-c", code, "train", *common, *extra, f"out_dir={out}"], env=env,
                       cwd=tempfile.gettempdir(), check=True, stdout=subprocess.DEVNULL)
        paths[name] = str(out)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BEFORE_BUCKETING, help="commit to compare against")
    parser.add_argument("--coconut", default="", help="trained Coconut run folder ('' trains one)")
    parser.add_argument("--cot", default="", help="trained CoT run folder ('' trains one)")
    parser.add_argument("--n", type=int, default=300, help="validation questions")
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench/results/generation_speed.json"))
    parser.add_argument("--doc", default=str(ROOT / "docs/results/generation_speed.md"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    sys.path.insert(0, str(ROOT / "src"))
    from latentcot.data.paths import data_dir

    found = data_dir(None)
    args.data_dir = str(found) if found else ""
    work = Path(tempfile.mkdtemp(prefix="generation_speed_"))
    baseline_src = checkout(args.baseline, work / "baseline")
    current_src = ROOT / "src"
    paths = {"coconut": args.coconut, "cot": args.cot}
    if not (args.coconut and args.cot):
        trained = train_with(baseline_src, work / "runs", args.threads)
        paths = {name: path or trained[name] for name, path in paths.items()}
    workers = {"baseline": Worker(baseline_src, args), "current": Worker(current_src, args)}
    rows, source = [], ""
    try:
        for name, path in paths.items():
            for batch in (int(b) for b in args.batches.split(",")):
                seconds: dict[str, list[float]] = {"baseline": [], "current": []}
                answers: dict[str, list] = {}
                for w in workers.values():
                    w.run(path, batch, warm=True)
                for _ in range(args.repeats):
                    for version, w in workers.items():
                        out = w.run(path, batch)
                        seconds[version].append(out["seconds"])
                        answers[version], source, accuracy = out["predictions"], out["source"], out["accuracy"]
                base, cur = statistics.median(seconds["baseline"]), statistics.median(seconds["current"])
                rows.append({"method": name, "batch_size": batch, "questions": args.n,
                             "seconds_baseline": base, "seconds_current": cur,
                             "questions_per_s_baseline": args.n / base, "questions_per_s_current": args.n / cur,
                             "speedup": base / cur, "identical_predictions": answers["baseline"] == answers["current"],
                             "accuracy": accuracy, "all_seconds": seconds})
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "all_seconds"}), flush=True)
    finally:
        for w in workers.values():
            w.close()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True,
                                text=True).stdout.strip())
    import platform

    import torch

    result = {"command": "python bench/generation_speed.py " + " ".join(sys.argv[1:]),
              "baseline": args.baseline, "current": commit + (" + uncommitted changes" if dirty else ""),
              "machine": f"{platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}",
              "questions_from": source, "models": paths, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.doc).write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = ["## Generation speed against the code of issue 18's day", "",
             f"`{r['command']}`: commit {r['current']} against {r['baseline']}"
             f"{' (the code before length bucketing)' if r['baseline'] == BEFORE_BUCKETING else ''}, "
             f"{r['machine']}; questions: {r['questions_from']} (first {r['rows'][0]['questions']}).",
             "Whole `evaluate` calls (tokenising, batching, generation, scoring) of the same trained micro models,",
             "the two versions in two worker processes timed alternately; medians. 'Identical' compares every",
             "prediction (question, text, answer) of the two versions.", "",
             "| method | batch | q/s baseline | q/s current | speed-up | identical predictions | accuracy |",
             "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['method']} | {row['batch_size']} | {row['questions_per_s_baseline']:.1f} | "
                     f"{row['questions_per_s_current']:.1f} | {row['speedup']:.2f}× | "
                     f"{'yes' if row['identical_predictions'] else 'NO'} | {100 * row['accuracy']:.1f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

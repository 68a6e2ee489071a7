"""Length bucketing in `evaluate`: questions/s with and without, side by side, and the answers checked equal.

    python bench/bucketing.py                         # trains micro Coconut + CoT on generated ProsQA here (~3 min)
    python bench/bucketing.py --coconut RUN --cot RUN # trained run folders

Evaluates both models on the ProsQA validation questions (the real file in the data directory,
`prosqa/prosqa_valid.json`; generated ProsQA questions of another seed when it is absent) at
each batch size, batched in the file's order (`bucket=False`, what `evaluate` did before) and
sorted by prompt length (`bucket=True`, the default now), ``--repeats`` times each, alternating,
and keeps the median. Writes bench/results/bucketing.json and docs/results/bucketing.md.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_speed import machine_name, train_quick  # noqa: E402

from latentcot.data.formats import read_examples  # noqa: E402
from latentcot.data.generators import generate  # noqa: E402
from latentcot.data.paths import data_dir  # noqa: E402
from latentcot.eval.evaluate import evaluate  # noqa: E402
from latentcot.train import recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def held_out(n: int) -> tuple[list, str]:
    root = data_dir(None)
    path = root / "prosqa/prosqa_valid.json" if root else None
    if path is not None and path.is_file():
        return read_examples(path)[:n], str(path)
    return generate("prosqa", n, 12345), "generated prosqa (seed 12345; the real validation file is absent)"


def timed(method, examples, task: str, bs: int, tokens: int, bucket: bool) -> tuple[float, list[dict]]:
    began = time.perf_counter()
    result = evaluate(method, examples, task, bs, tokens, bucket=bucket)
    return time.perf_counter() - began, result.predictions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coconut", default="", help="trained Coconut run folder ('' trains one here)")
    parser.add_argument("--cot", default="", help="trained CoT run folder ('' trains one here)")
    parser.add_argument("--task", default="prosqa")
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n", type=int, default=500, help="validation questions")
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "bench/results/bucketing.json"))
    parser.add_argument("--doc", default=str(ROOT / "docs/results/bucketing.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="bucketing_"))
    paths = {"coconut": Path(args.coconut) if args.coconut else train_quick(
                 {"name": "coconut", "no_curriculum": True, "max_latent_stage": 6}, args, work),
             "cot": Path(args.cot) if args.cot else train_quick({"name": "cot"}, args, work)}
    examples, source = held_out(args.n)
    rows = []
    for name, path in paths.items():
        method, cfg = recipe.load_trained(path)
        cast(nn.Module, method).to(args.device).eval()  # every method is an nn.Module (methods/base.py)
        for bs in (int(b) for b in args.batches.split(",")):
            times: dict[bool, list[float]] = {False: [], True: []}
            answers: dict[bool, list[dict]] = {}
            timed(method, examples[:bs], cfg.data.task, bs, args.max_new_tokens, True)  # warm-up
            for _ in range(args.repeats):
                for bucket in (False, True):
                    seconds, answers[bucket] = timed(method, examples, cfg.data.task, bs, args.max_new_tokens, bucket)
                    times[bucket].append(seconds)
            plain, bucketed = statistics.median(times[False]), statistics.median(times[True])
            rows.append({"method": name, "batch_size": bs, "questions": len(examples),
                         "seconds_unbucketed": plain, "seconds_bucketed": bucketed,
                         "questions_per_s_unbucketed": len(examples) / plain, "questions_per_s_bucketed": len(examples) / bucketed,
                         "speedup": plain / bucketed, "identical_predictions": answers[False] == answers[True],
                         "accuracy": sum(p["correct"] for p in answers[True]) / len(examples)})
            print(rows[-1], flush=True)
    result = {"command": "python bench/bucketing.py " + " ".join(sys.argv[1:]),
              "machine": machine_name(torch.device(args.device), args.threads), "questions_from": source,
              "models": {k: str(v) for k, v in paths.items()}, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.doc).write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = ["## Length bucketing in `evaluate`", "",
             f"`{r['command']}` on {r['machine']}; questions: {r['questions_from']} (first {r['rows'][0]['questions']}).",
             "Whole `evaluate` calls (tokenising, batching, generation, scoring), medians of alternating repeats; the two",
             "columns are measured side by side in one run. 'Identical' compares every prediction (question, text, answer).", "",
             "| method | batch | q/s in file order | q/s bucketed | speed-up | identical predictions | accuracy |",
             "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['method']} | {row['batch_size']} | {row['questions_per_s_unbucketed']:.1f} | "
                     f"{row['questions_per_s_bucketed']:.1f} | {row['speedup']:.2f}× | "
                     f"{'yes' if row['identical_predictions'] else 'NO'} | {100 * row['accuracy']:.1f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

"""Generator-vs-real statistics for the three real-format generators, and generation timings.

Writes bench/results/data_stats.json and docs/results/data_stats.md. Needs the real validation
files in the data directory ($LATENTCOT_DATA_DIR, default ../shared/data); a generator whose real
file is absent is reported without its comparison.

    python bench/data_stats.py
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from latentcot.data.formats import read_examples
from latentcot.data.generators import REAL_FILES, generate
from latentcot.data.paths import real_file
from latentcot.data.stats import dataset_stats, vocabulary

ROOT = Path(__file__).resolve().parents[1]
COMPARE = [("multiplication", {"digits": 4}), ("multiplication", {"digits": 11}), ("prosqa", {}), ("prontoqa", {})]
N_COMPARE = 5000
TIMED = [("multiplication", {"digits": 4}), ("multiplication", {"digits": 11}), ("prosqa", {}),
         ("prontoqa", {}), ("arithmetic", {})]


def _row(stats, vocab_overlap=None):
    return {
        "records": stats["records"], "steps_mean": stats["steps"]["mean"],
        "steps_range": [stats["steps"]["min"], stats["steps"]["max"]],
        "steps_histogram_share": {k: round(v / stats["records"], 3) for k, v in stats["steps"]["histogram"].items()},
        "question_words_mean": stats["question_words"]["mean"],
        "step_words_mean": stats["step_words"]["mean"], "vocabulary_size": stats["vocabulary_size"],
        "vocabulary_overlap": vocab_overlap, "answer_formats": stats["answer_formats"],
    }


def compare():
    out = []
    for task, options in COMPARE:
        rel = REAL_FILES[task].format(**options)
        generated = generate(task, N_COMPARE, seed=0, **options)
        entry = {"task": task, "options": options, "real_file": rel, "generated": _row(dataset_stats(generated))}
        path = real_file(rel)
        if path is not None:
            real = read_examples(path)
            vr, vg = vocabulary(real), vocabulary(generated)
            entry["real"] = _row(dataset_stats(real))
            entry["generated"]["vocabulary_overlap"] = round(len(vr & vg) / len(vr), 3)
        out.append(entry)
    return out


def timings():
    out = []
    for task, options in TIMED:
        start = time.perf_counter()
        generate(task, 100_000, seed=0, **options)
        out.append({"what": f"generate {task} {options or ''} n=100000 (in memory)".replace("  ", " "),
                    "seconds": round(time.perf_counter() - start, 2)})
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "latentcot.cli", "data", "generate", "prosqa", "--n", "20000", "--seed", "0",
               "--out", f"{tmp}/prosqa.json"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append({"what": "latentcot data generate prosqa --n 20000 (process, incl. start-up and writing JSON)",
                    "seconds": round(time.perf_counter() - start, 2)})
    return out


def markdown(result):
    lines = ["## Data generators vs real validation files", "",
             f"`python bench/data_stats.py` on {result['machine']}; {N_COMPARE} generated records (seed 0) per row.", "",
             "| generator | source | records | steps mean | steps range | steps histogram (share) | question words | "
             "step words | vocabulary | vocab overlap | answer format |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in result["comparison"]:
        name = e["task"] + "".join(f" {k}={v}" for k, v in e["options"].items())
        for source in ("real", "generated"):
            if source not in e:
                continue
            r = e[source]
            hist = " ".join(f"{k}:{v}" for k, v in r["steps_histogram_share"].items())
            fmt = ", ".join(f"{k} {v:.0%}" for k, v in r["answer_formats"].items())
            overlap = "" if r["vocabulary_overlap"] is None else f"{r['vocabulary_overlap']:.1%}"
            label = e["real_file"] if source == "real" else "generated"
            lines.append(f"| {name} | {label} | {r['records']} | {r['steps_mean']:.2f} | {r['steps_range'][0]}-{r['steps_range'][1]} "
                         f"| {hist} | {r['question_words_mean']:.1f} | {r['step_words_mean']:.2f} | {r['vocabulary_size']} "
                         f"| {overlap} | {fmt} |")
    lines += ["", "Vocabulary overlap: share of the real file's words that the generator also produces.", "",
              "| timing | seconds |", "|---|---|"]
    lines += [f"| {t['what']} | {t['seconds']} |" for t in result["timings"]]
    return "\n".join(lines) + "\n"


def main():
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
              "comparison": compare(), "timings": timings()}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "data_stats.json").write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "docs" / "results" / "data_stats.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()

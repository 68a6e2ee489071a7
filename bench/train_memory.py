"""Peak memory of a Coconut training step at GPT-2's vocabulary, against the code of issue 18's day.

    python bench/train_memory.py                    # baseline: the code before length bucketing
    python bench/train_memory.py --batch 2 --rows 4 # a quick check

Issue 18 found our Coconut step at 6 thoughts at 0.40x the Coconut reference's peak memory with
the real GPT-2 vocabulary, and asks that it stay there. This measures the same step of the working
tree's package and of ``--baseline``'s (``git archive`` of its ``src/``), each in its own process:
a GPT-2-small-sized model built from a config (12 layers, 768 wide, 12 heads; random weights)
with a 50,257-word vocabulary (generated ProsQA's words, then filler words up to GPT-2's size),
Coconut at stage 6 (six thoughts) on ``--batch`` generated ProsQA rows. After one warm-up step
(so that AdamW's state exists), the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``)
and one more step (forward, backward, AdamW) runs; reported: the peak resident memory above the
resident memory just before that step, and the peak itself. Versions alternate ``--rounds``
times. The model keeps GPT-2's dropout (0.1), so the two versions' losses differ by their dropout
draws (the current code's prompt pass draws fewer: it skips the last layer there). Writes
bench/results/train_memory.json and docs/results/train_memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "12a1275"  # issue 18's day (the code before length bucketing)
GPT2_VOCAB = 50257


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def padded_word_tokenizer(rows: list, size: int):  # -> PreTrainedTokenizerFast
    """The project's word-level tokenizer fitted to ``rows``, padded with filler words to ``size``
    words (e.g. GPT-2's 50,257, so that the output layer costs what GPT-2's does; the methods add
    their special tokens on top). Uses only what every version of the package has."""
    from tokenizers import models
    from transformers import PreTrainedTokenizerFast

    from latentcot.data import tokenizer as tok_module

    vocab = dict(tok_module.train_word_tokenizer(rows).get_vocab())
    for i in range(size):
        if len(vocab) >= size:
            break
        vocab.setdefault(f"filler{i}", len(vocab))
    raw = tok_module._word_level_tokenizer()
    raw.model = models.WordLevel(vocab, unk_token=tok_module.UNK)
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token=tok_module.PAD, bos_token=tok_module.BOS,
                                   eos_token=tok_module.EOS, unk_token=tok_module.UNK)


def worker(a: argparse.Namespace) -> int:
    import torch
    from torch import nn
    from transformers import GPT2Config, GPT2LMHeadModel

    from latentcot.data.generators import generate
    from latentcot.methods import build_method, method_config

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = generate("prosqa", a.rows, 0)
    tokenizer = padded_word_tokenizer(rows, GPT2_VOCAB)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=12, n_embd=768, n_head=12, n_positions=1024)
    method = build_method("coconut", method_config("coconut", {"c_thought": 1, "max_latent_stage": 6}),
                          GPT2LMHeadModel(config), tokenizer).train()
    module = cast(nn.Module, method)  # every method is an nn.Module (methods/base.py)
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-4)
    batch = method.collate(rows[: a.batch], 6)

    def step() -> float:
        loss = module(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    first = step()  # warm-up: AdamW's state, the allocator's first blocks
    resting = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark to the current RSS
    loss = step()
    peak = _status("VmHWM")
    print(json.dumps({"resting": resting, "peak": peak, "above": peak - resting, "first_loss": first, "loss": loss,
                      "columns": int(batch["input_ids"].shape[1]), "vocab": len(tokenizer)}), flush=True)
    return 0


def measure(src: Path, a: argparse.Namespace) -> dict:
    # glibc keeps freed heap blocks mapped, so the resident set would remember the warm-up step's
    # peak; with every block over 64 KiB mapped on its own (and unmapped when freed) it follows the
    # memory that is live
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(a.threads),
           "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    command = [sys.executable, __file__, "--worker", "--batch", str(a.batch), "--rows", str(a.rows),
               "--threads", str(a.threads)]
    out = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", default=BASELINE)
    p.add_argument("--batch", type=int, default=8, help="rows per step")
    p.add_argument("--rows", type=int, default=64, help="generated ProsQA rows the vocabulary is built from")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--note", default="")
    p.add_argument("--out", default=str(ROOT / "bench/results/train_memory.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/train_memory.md"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)
    sys.path.insert(0, str(ROOT / "bench"))
    from generation_speed import checkout

    work = Path(tempfile.mkdtemp(prefix="train_memory_"))
    sources = {"baseline": checkout(a.baseline, work / "baseline"), "current": ROOT / "src"}
    runs: dict[str, list[dict]] = {"baseline": [], "current": []}
    for _ in range(a.rounds):
        for version, src in sources.items():
            runs[version].append(measure(src, a))
            print(version, json.dumps(runs[version][-1]), flush=True)
    best = {v: min(r["above"] for r in rs) for v, rs in runs.items()}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"command": "python bench/train_memory.py " + shlex.join(sys.argv[1:]), "baseline": a.baseline,
              "current": commit, "args": vars(a), "runs": runs, "ratio": best["current"] / best["baseline"]}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    mib = 2**20
    first = runs["current"][0]
    lines = [
        "## Peak training memory at GPT-2's vocabulary, against issue 18's day", "",
        f"Command: `{result['command'].strip()}`: commit {commit} against {a.baseline}, {a.threads} thread(s).", "",
        f"One Coconut training step at stage 6 (six thoughts; forward, backward, AdamW) of a GPT-2-small-sized model "
        f"(12 layers, 768 wide, random weights) with a {first['vocab']:,}-word vocabulary, {a.batch} generated ProsQA "
        f"rows of {first['columns']} columns, after a warm-up step; each version in its own process, "
        f"{a.rounds} rounds alternating, the smallest of each kept. Peak = the kernel's peak resident memory "
        f"(VmHWM) during the step; above resting = minus the resident memory just before it (glibc told to map "
        f"every block over 64 KiB on its own, so that freed memory leaves the resident set).", "",
        "| version | resting MiB | peak MiB | above resting MiB | warm-up loss | loss |", "|---|---|---|---|---|---|",
    ]
    for version, rs in runs.items():
        r = min(rs, key=lambda r: r["above"])
        lines.append(f"| {version} ({a.baseline if version == 'baseline' else commit}) | {r['resting'] / mib:.0f} | "
                     f"{r['peak'] / mib:.0f} | {r['above'] / mib:.0f} | {r.get('first_loss', float('nan')):.4f} | "
                     f"{r['loss']:.4f} |")
    lines += ["", f"Current over baseline, above resting: **{result['ratio']:.2f}×**.", "",
              *([a.note, ""] if a.note else [])]
    Path(a.doc).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

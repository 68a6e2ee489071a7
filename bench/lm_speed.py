"""Language-model speed, side by side in one run on the same trained models (issue 3, "Benchmarks").

    python bench/lm_speed.py --device cpu                        # trains micro coconut + cot here, ~3 min
    python bench/lm_speed.py --device cuda --coconut RUN --cot RUN --tag gpu   # trained run folders

(a) batched latent generation: questions/s of Coconut ``reason`` at batch 1/16/64 (goal at 64:
    >= 20x batch 1); (b) Coconut vs explicit CoT wall time per question at the same batch size
    (goal <= 0.35x, the Coconut paper's 0.09 s vs 0.26 s); (c) the latent loop against plain
    KV-cached greedy decoding of the same number of positions (goal <= 1.2x); (d) one training
    step (forward, backward, AdamW) and its peak memory vs the number of latents k.
Every number is a median of ``--repeats`` timed runs after warm-up, CUDA synchronised. Writes
bench/results/lm_speed[_TAG].json and docs/results/lm_speed[_TAG].md (generated from the JSON).
"""

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import torch
from torch import nn

from latentcot.data.generators import generate
from latentcot.latent import generate_from_cache, latent_forward, think
from latentcot.latent.loop import extend
from latentcot.methods.sequences import Row, answer_ids, pad_rows, question_ids, steps_ids
from latentcot.train import recipe
from latentcot.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 16, 64)
LATENT_COUNTS = (0, 1, 2, 4, 8, 16)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        began = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def train_quick(method: dict, args: argparse.Namespace, work: Path) -> Path:
    """Train a small model inside the bench (used when no checkpoint is given)."""
    cfg = recipe.RunConfig(
        out_dir=str(work / method["name"]),
        seed=0,
        data=recipe.DataConfig(task=args.task, train_size=args.train_size, eval_size=64),
        model=recipe.ModelConfig(name_or_path=args.preset),
        method=method,
        train=TrainConfig(epochs=args.epochs, batch_size=32, lr=1e-3, warmup_steps=20, schedule="cosine",
                          bf16=args.device == "cuda", log_every=50),
        eval=recipe.EvalConfig(batch_size=64, max_new_tokens=args.max_new_tokens),
    )
    out = recipe.main(cfg)
    print(f"[lm_speed] trained {method['name']}: held-out accuracy {out['eval']['accuracy']:.3f}", flush=True)
    return Path(cfg.out_dir)


def reason_row(method, questions: list[str], bs: int, args: argparse.Namespace, device: torch.device, budgets=None) -> dict:
    """Median seconds of one ``reason`` call on ``bs`` questions, with its tokens and passes.
    ``budgets`` (per question) caps the tokens written, else ``--max-new-tokens``."""
    budget = (lambda qs: max(budgets[q] for q in qs)) if budgets else (lambda qs: args.max_new_tokens)
    if bs == 1:  # a different single question each time, as a user would send them
        singles = iter(questions * (args.repeats + 4))

        def one():
            q = next(singles)
            method.reason([q], budget([q]))

        seconds = median_time(one, device, args.repeats * 4)
    else:
        seconds = median_time(lambda: method.reason(questions[:bs], budget(questions[:bs])), device, args.repeats)
    out = method.reason(questions[:bs], budget(questions[:bs]))
    return {
        "batch_size": bs, "seconds_per_batch": seconds, "seconds_per_question": seconds / bs,
        "questions_per_s": bs / seconds, "tokens_per_question": sum(out.num_generated_tokens) / bs,
        "forward_passes_per_batch": out.num_forward_passes,
    }


def gold_lengths(cot, examples) -> dict[str, int]:
    """Tokens a perfect CoT writes per question: the gold steps, ``### answer`` and eos."""
    return {ex.question: len(steps_ids(cot.tokenizer, ex.steps) + answer_ids(cot.tokenizer, ex.answer)) for ex in examples}


def bench_reason(coconut, cot, examples, args, device) -> tuple[list[dict], list[dict]]:
    """(a) Coconut questions/s per batch size; (b) Coconut vs CoT seconds per question, CoT both
    as trained (it may not stop where it should) and held to the gold chain's length."""
    questions, gold = [ex.question for ex in examples], gold_lengths(cot, examples)
    rows_a, rows_b = [], []
    for bs in BATCHES:
        latent, written = reason_row(coconut, questions, bs, args, device), reason_row(cot, questions, bs, args, device)
        at_gold = reason_row(cot, questions, bs, args, device, budgets=gold)
        rows_a.append(latent)
        rows_b.append({"batch_size": bs, "coconut": latent, "cot": written, "cot_gold_length": at_gold,
                       "ratio": latent["seconds_per_question"] / written["seconds_per_question"],
                       "ratio_vs_gold_length": latent["seconds_per_question"] / at_gold["seconds_per_question"]})
        print(rows_b[-1], flush=True)
    base = rows_a[0]["questions_per_s"]
    for row in rows_a:
        row["speedup_vs_batch_1"] = row["questions_per_s"] / base
    return rows_a, rows_b


@torch.no_grad()
def overhead_row(coconut, questions: list[str], bs: int, args: argparse.Namespace, device: torch.device) -> dict:
    """(c) think(k) + decode m tokens vs a prefix pass + greedy decode of k + m tokens (same positions)."""
    backbone, tok = coconut.backbone, coconut.tokenizer
    batch = pad_rows([Row(question_ids(tok, q) + [coconut.tokens.bot], [], []) for q in questions[:bs]], tok.pad_token_id, device)
    embeds = backbone.get_input_embeddings()(batch["input_ids"])
    mask = batch["attention_mask"]
    k, m = args.latents, args.decode_tokens
    no_latents = torch.zeros_like(mask, dtype=torch.bool)
    fixed = backbone.get_input_embeddings()(torch.full((bs, 1), tok.eos_token_id, device=device))

    def latent_path():
        out = think(backbone, embeds, mask, k)
        generate_from_cache(backbone, out.cache, out.attention_mask, out.hidden_states[:, -1], m, -1)

    def decode_path():  # eos -1 never matches, so exactly k + m tokens are written
        out = latent_forward(backbone, embeds, mask, no_latents)
        generate_from_cache(backbone, out.cache, out.attention_mask, out.hidden_states[:, -1], k + m, -1)

    def loop_only():
        think(backbone, embeds, mask, k)

    def tokens_only():  # prefix pass + k one-position passes of a fixed token, no vocabulary head
        out = latent_forward(backbone, embeds, mask, no_latents)
        full = out.attention_mask
        for _ in range(k):
            _, full = extend(backbone, out.cache, full, fixed)

    paths = {"latent_then_decode": latent_path, "decode": decode_path, "latent_loop": loop_only, "token_loop": tokens_only}
    times = {name: median_time(fn, device, args.repeats * 2) for name, fn in paths.items()}
    return {"batch_size": bs, "k": k, "m": m, "seconds": times,
            "ratio_latent_decode_vs_decode": times["latent_then_decode"] / times["decode"],
            "ratio_latent_loop_vs_token_loop": times["latent_loop"] / times["token_loop"]}


def bench_loop_overhead(coconut, questions, args, device) -> list[dict]:
    rows = [overhead_row(coconut, questions, bs, args, device) for bs in (1, 64)]
    for row in rows:
        print(row, flush=True)
    return rows


def training_row(coconut, optimizer, chunk, k: int, args: argparse.Namespace, device: torch.device) -> dict:
    """(d) one training step (forward, backward, AdamW) with k latents; the written target (all
    steps + answer) is the same for every k, so only the latents change."""
    tok, t = coconut.tokenizer, coconut.tokens
    rows = []
    for ex in chunk:
        target = steps_ids(tok, ex.steps) + answer_ids(tok, ex.answer)
        rows.append(Row(question_ids(tok, ex.question) + [t.bot], [t.latent] * k + [t.eot] + target, [-100] * (k + 1) + target))
    batch = pad_rows(rows, tok.pad_token_id, device)

    def step():
        with torch.autocast(device.type, torch.bfloat16, enabled=args.bf16 and device.type == "cuda"):
            loss = coconut(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # AdamW state exists from here on, so the resting memory below includes it
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        resting = torch.cuda.memory_allocated(device)
    seconds = median_time(step, device, args.repeats)
    row = {"k": k, "batch_size": len(chunk), "seq_len": batch["input_ids"].shape[1], "seconds_per_step": seconds}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        row.update(peak_allocated_mib=peak / 2**20, peak_above_resting_mib=(peak - resting) / 2**20)
    else:  # the process high-water mark (never falls), so only growth between rows means anything
        row["process_max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def bench_training(coconut, examples, args, device) -> list[dict]:
    coconut.train()
    optimizer = torch.optim.AdamW(coconut.parameters(), lr=1e-5)
    rows = []
    for k in LATENT_COUNTS:
        rows.append(training_row(coconut, optimizer, examples[: args.train_batch], k, args, device))
        print(rows[-1], flush=True)
    coconut.eval()
    return rows


def machine_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
    return f"{names[0] if names else platform.machine() + ' CPU'}, {threads} thread(s), torch {torch.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--coconut", default="", help="trained Coconut run/checkpoint folder ('' trains one here)")
    parser.add_argument("--cot", default="", help="trained CoT run/checkpoint folder ('' trains one here)")
    parser.add_argument("--task", default="prosqa", help="task to train on and draw questions from")
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--latents", type=int, default=6, help="k for the loop-overhead comparison")
    parser.add_argument("--decode-tokens", type=int, default=8, help="m tokens decoded after the latents")
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for the training-step rows (CUDA)")
    parser.add_argument("--tag", default="", help="suffix of the result files (e.g. cpu, gpu)")
    parser.add_argument("--render", default="", help="only regenerate the Markdown from this result JSON")
    args = parser.parse_args()
    if args.render:
        path = Path(args.render)
        (ROOT / "docs/results" / f"{path.stem}.md").write_text(render(json.loads(path.read_text())))
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    work = Path(tempfile.mkdtemp(prefix="lm_speed_"))
    started = time.time()
    coconut_path = Path(args.coconut) if args.coconut else train_quick(
        {"name": "coconut", "no_curriculum": True, "max_latent_stage": 6}, args, work)
    cot_path = Path(args.cot) if args.cot else train_quick({"name": "cot"}, args, work)
    train_seconds = time.time() - started
    (coconut, coconut_cfg), (cot, _) = recipe.load_trained(coconut_path), recipe.load_trained(cot_path)
    cast(nn.Module, coconut).to(device).eval()  # every method is an nn.Module (methods/base.py)
    cast(nn.Module, cot).to(device).eval()
    examples = generate(coconut_cfg.data.task, 64, 12345)  # unseen seed: held-out questions
    questions = [ex.question for ex in examples]
    rows_a, rows_b = bench_reason(coconut, cot, examples, args, device)
    rows_c = bench_loop_overhead(coconut, questions, args, device)
    rows_d = bench_training(coconut, examples, args, device)
    params = sum(p.numel() for p in coconut.backbone.parameters())
    command = "python bench/lm_speed.py " + " ".join(sys.argv[1:])
    result = {
        "command": command, "machine": machine_name(device, args.threads), "args": vars(args),
        "models": {"coconut": str(coconut_path), "cot": str(cot_path), "task": coconut_cfg.data.task,
                   "preset": coconut_cfg.model.name_or_path, "parameters": params,
                   "coconut_latents": coconut.config.max_latent_stage * coconut.config.c_thought,
                   "trained_here_seconds": train_seconds if not (args.coconut and args.cot) else None},
        "batched_latent_generation": rows_a, "latent_vs_cot": rows_b, "loop_overhead": rows_c, "training_step": rows_d,
    }
    suffix = f"_{args.tag}" if args.tag else ""
    json_path = ROOT / f"bench/results/lm_speed{suffix}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / f"docs/results/lm_speed{suffix}.md").write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    """The Markdown section, generated from the JSON result alone."""
    m = r["models"]
    a64 = r["batched_latent_generation"][-1]["speedup_vs_batch_1"]
    lines = [
        f"## Language-model speed ({r['machine'].split(',')[0]})", "",
        f"`{r['command']}` on {r['machine']}. Models: Coconut ({m['coconut_latents']} latents) and CoT, preset "
        f"`{m['preset']}` ({m['parameters'] / 1e6:.2f}M parameters), trained on generated {m['task']}; questions are 64 "
        "unseen generated ones. Medians of repeated runs after warm-up; every ratio is measured side by side in this one run.", "",
        "### (a) Batched latent generation (Coconut `reason`)", "",
        "| batch | questions/s | s/batch | tokens/question | forward passes/batch | × batch 1 |", "|---|---|---|---|---|---|",
    ]
    for row in r["batched_latent_generation"]:
        lines.append(f"| {row['batch_size']} | {row['questions_per_s']:.1f} | {row['seconds_per_batch']:.4f} | "
                     f"{row['tokens_per_question']:.1f} | {row['forward_passes_per_batch']} | {row['speedup_vs_batch_1']:.1f}× |")
    lines += ["", f"Goal at batch 64: ≥ 20× batch 1 — measured {a64:.1f}× ({'met' if a64 >= 20 else 'missed'}).", "",
              "### (b) Coconut vs explicit CoT, wall time per question", "",
              "CoT as trained writes until eos or the budget; 'CoT at gold length' is the same model held to the number of",
              "tokens the gold chain (steps + `### answer` + eos) has, i.e. what a CoT model that stops correctly costs.", "",
              "| batch | Coconut s/q | CoT s/q | CoT at gold length s/q | Coconut tok/q | CoT tok/q | gold tok/q | Coconut / CoT | Coconut / CoT at gold length |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in r["latent_vs_cot"]:
        c, t = row["coconut"], row["cot"]
        g = row.get("cot_gold_length")  # absent in results made before that column existed
        at_gold = f"{g['seconds_per_question']:.5f}" if g else "not measured"
        gold_tokens = f"{g['tokens_per_question']:.1f}" if g else "—"
        vs_gold = f"{row['ratio_vs_gold_length']:.2f}×" if g else "—"
        lines.append(f"| {row['batch_size']} | {c['seconds_per_question']:.5f} | {t['seconds_per_question']:.5f} | {at_gold} | "
                     f"{c['tokens_per_question']:.1f} | {t['tokens_per_question']:.1f} | {gold_tokens} | {row['ratio']:.2f}× | {vs_gold} |")
    if all("cot_gold_length" in row for row in r["latent_vs_cot"]):
        worst = max(row["ratio_vs_gold_length"] for row in r["latent_vs_cot"])
        verdict = f"worst batch size {worst:.2f}× ({'met' if worst <= 0.35 else 'missed'})"
    else:
        verdict = ("not decided by this run: its CoT model wrote the whole budget instead of stopping, and the gold-length "
                   "comparison was added to the script after it ran")
    lines += ["", f"Goal: ≤ 0.35× against CoT at gold length — {verdict}.", "",
              "### (c) Latent loop vs plain KV-cached decoding of the same positions", "",
              "`think` with k latents then greedy decoding of m tokens, against one prefix pass then greedy decoding of k + m",
              "tokens (the same positions through the same cache path); and the k-pass loop alone against k one-position passes",
              "of a fixed token (no vocabulary head on either side).", "",
              "| batch | k | m | latent+decode s | decode s | ratio | latent loop s | token loop s | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for row in r["loop_overhead"]:
        s = row["seconds"]
        lines.append(f"| {row['batch_size']} | {row['k']} | {row['m']} | {s['latent_then_decode']:.4f} | {s['decode']:.4f} | "
                     f"{row['ratio_latent_decode_vs_decode']:.2f}× | {s['latent_loop']:.4f} | {s['token_loop']:.4f} | "
                     f"{row['ratio_latent_loop_vs_token_loop']:.2f}× |")
    worst = max(max(row["ratio_latent_decode_vs_decode"], row["ratio_latent_loop_vs_token_loop"]) for row in r["loop_overhead"])
    lines += ["", f"Goal: ≤ 1.2× — worst {worst:.2f}× ({'met' if worst <= 1.2 else 'missed'}).", "",
              "### (d) Training step (forward, backward, AdamW) vs number of latents k", ""]
    gpu = "peak_allocated_mib" in r["training_step"][0]
    if gpu:
        lines += ["Peak = `torch.cuda.max_memory_allocated` during the timed steps; above resting = minus the memory held",
                  "before them (weights and AdamW state; gradients are freed after every step).", "",
                  "| k | batch | seq len | s/step | peak MiB | peak above resting MiB |", "|---|---|---|---|---|---|"]
    else:
        lines += ["CPU: the process's peak RSS high-water mark after each row (it never falls, so only its growth from one",
                  "row to the next reflects the larger k).", "", "| k | batch | seq len | s/step | process peak RSS MiB |", "|---|---|---|---|---|"]
    for row in r["training_step"]:
        memory = (f"{row['peak_allocated_mib']:.1f} | {row['peak_above_resting_mib']:.1f}" if gpu else f"{row['process_max_rss_mib']:.0f}")
        lines.append(f"| {row['k']} | {row['batch_size']} | {row['seq_len']} | {row['seconds_per_step']:.4f} | {memory} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""Issue 18's GPU check, in one run under 10 minutes: training MFU, batch scaling, CUDA graphs,
and latent against CoT wall time at GSM8k-Aug lengths.

    python bench/gpu_speed.py --tiny --out /tmp/gpu-speed        # a CPU rehearsal (seconds)
    # on the GPU machine, where ../shared does not travel: carry a copy of the validation file
    mkdir -p .gpu_data && cp ../shared/data/gsm8k_aug/gsm_valid.json .gpu_data/   # here; .gpu_data is git-ignored
    python3 bench/gpu_speed.py --out $OUT --gsm .gpu_data/gsm_valid.json          # there (carry: .gpu_data)

Without a GSM8k-Aug file the questions are generated 8-term running sums, and the JSON says so.

The model is GPT-2-small-sized, built from a config with random weights (12 layers, 768 wide, 12
heads, 1,024 positions; ``--tiny``: 2 × 64): nothing can be downloaded on the device machine, and
speed does not depend on the weights. Its tokenizer is the project's word-level one, fitted to
the questions and padded with filler words to GPT-2's 50,257 words, so the output layer costs
what GPT-2's does. Reported (``gpu_speed.json`` and ``gpu_speed.md`` under ``--out``):

* **Training MFU**: one Coconut step at 6 thoughts (``c_thought`` 1, stage 6; forward through
  the latent loop, backward, fused AdamW) on generated ProsQA-size rows at ``--train-batch``,
  bf16 autocast over float32 weights (float32 on CPU). FLOPs per step are counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (every matmul and attention that ran, forward and
  backward); MFU = FLOPs per step ÷ seconds per step ÷ the chip's dense bf16 peak
  (``--peak-tflops``, default from the device name), and also as a fraction of the bf16 matmul
  rate measured here. The plain forward+backward of the same ids (one ordinary pass, the same
  labels) is timed beside it: the latent loop's share of that rate.
* **Generation** (bf16 weights): Coconut (6 thoughts, then ``<eot>`` and the answer) and CoT
  (the steps and the answer) on the GSM8k-Aug validation questions at batch 1, 16 and 64, three
  ways: ``library`` (``latentcot.methods.sequences.complete``, what ``reason``/``eval`` run),
  ``static`` (the same computation on a transformers ``StaticCache``, one position per pass,
  eager) and ``graphs`` (that static pass captured once as a CUDA graph per batch size and
  replayed; on CPU it is skipped). Random weights never write ``<eos>``, so every row writes
  its batch's budget: the longest reference (CoT: steps and answer; Coconut: the answer) in the
  batch plus 2 tokens — the time a trained model writing the reference's length takes. Answers
  are compared as texts: ``graphs`` against ``static`` (the same kernels: should be identical)
  and ``static`` against ``library`` (bf16 rounding may differ; the fraction identical is given).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from latentcot.data.paths import real_file  # noqa: E402

# dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets (SXM parts)
PEAKS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A10": 125.0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Mean seconds of ``fn`` over ``repeats`` calls (after the caller's warm-up)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


# ----------------------------------------------------------------------------- the model
def build(args: argparse.Namespace, device: torch.device) -> tuple[Any, Any, Any, list, list, str]:
    """(coconut, cot, tokenizer, training rows, questions, where the questions came from); both
    methods share one backbone."""
    from train_memory import GPT2_VOCAB, padded_word_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    from latentcot.data.formats import read_examples
    from latentcot.data.generators import generate
    from latentcot.methods import build_method, method_config

    train_rows = generate("prosqa", max(args.train_batch, 8), 0)
    gsm = Path(args.gsm) if args.gsm else real_file("gsm8k_aug/gsm_valid.json")
    if gsm is not None and gsm.is_file():
        questions, source = read_examples(gsm)[: args.questions], f"GSM8k-Aug validation ({gsm.name})"
    else:
        questions = generate("chain", args.questions, 1, length=8)
        source = "generated 8-term running sums (no GSM8k-Aug file given)"
    tokenizer = padded_word_tokenizer([*train_rows, *questions], 0 if args.tiny else GPT2_VOCAB)
    layers, width, heads = (2, 64, 4) if args.tiny else (12, 768, 12)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=layers, n_embd=width, n_head=heads, n_positions=1024,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        # taken (PretrainedConfig.__post_init__'s kwargs) but not in the typed signature
                        attn_implementation="sdpa",  # type: ignore[call-arg]
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    backbone = GPT2LMHeadModel(config)
    coconut = build_method("coconut", method_config("coconut", {"c_thought": 1, "max_latent_stage": 6}),
                           backbone, tokenizer)
    cot = build_method("cot", method_config("cot", {}), backbone, tokenizer)
    backbone.to(device)  # type: ignore[arg-type]  # transformers' @wraps(nn.Module.to) leaves .to unbound
    return coconut, cot, tokenizer, train_rows, questions, source


# ----------------------------------------------------------------------------- training
def matmul_rate(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """Achieved FLOP/s of an n×n×n matmul in ``dtype`` (the roofline's ceiling here)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    repeats = 20 if device.type == "cuda" else 3
    seconds = timed(lambda: a @ b, device, repeats)
    return 2 * n**3 / seconds


def training(coconut: Any, rows: list, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    backbone = coconut.backbone
    coconut.train()
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in coconut.collate(rows[: args.train_batch], 6).items()}
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=1e-4, weight_decay=0.01, fused=fused)
    bf16 = device.type == "cuda"

    def latent_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = coconut(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def plain_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    out: dict[str, Any] = {"batch": args.train_batch, "columns": int(batch["input_ids"].shape[1]),
                           "thoughts": int((batch["input_ids"] == coconut.tokens.latent).sum(1).max())}
    for name, step in (("coconut", latent_step), ("plain", plain_step)):
        for _ in range(args.warmup):
            step()
        with FlopCounterMode(display=False) as counter:
            step()
        seconds = timed(step, device, args.train_repeats)
        flops = counter.get_total_flops()
        out[name] = {"seconds_per_step": seconds, "flops_per_step": flops, "flops_per_second": flops / seconds}
    coconut.eval()
    return out


# ----------------------------------------------------------------------------- generation
@dataclass
class Prompts:
    """A padded batch: ``ids`` (batch, prefix) left-padded up to the first thought, then
    ``thoughts`` continuous thoughts, then ``tail`` ids (the same for every row, e.g. ``<eot>``)."""

    ids: torch.Tensor
    mask: torch.Tensor
    thoughts: int
    tail: list[int]


class StaticRunner:
    """Greedy latent-then-token decoding on a transformers ``StaticCache`` with one position per
    pass, every buffer at a fixed address, so that a thought pass and a token pass can each be
    captured once as a CUDA graph and replayed (``graphs=True``, CUDA only). Computes what
    ``latentcot.methods.sequences.complete`` computes (the prompt pass, the thoughts fed back
    through ``project``, the tail, greedy tokens with per-row stop at eos); the library folds the
    tail into the last thought's pass, this runner gives it a pass of its own."""

    def __init__(self, backbone: Any, batch: int, max_len: int, project: Callable | None, eos: int,
                 max_new: int, graphs: bool) -> None:
        from transformers import StaticCache
        from transformers.cache_utils import StaticLayer

        self.backbone, self.project, self.eos, self.graphs = backbone, project, eos, graphs
        device, dtype, width = backbone.device, backbone.dtype, backbone.config.hidden_size
        self.max_len = max_len
        self.cache = StaticCache(config=backbone.config, max_cache_len=max_len)
        self.layers: list[StaticLayer] = []  # the cache's layers, whose cumulative_length is a tensor
        for layer in self.cache.layers:
            assert isinstance(layer, StaticLayer)
            self.layers.append(layer)
        self.mask = torch.full((batch, 1, 1, max_len), float("-inf"), dtype=dtype, device=device)
        self.pos = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.x = torch.zeros(batch, 1, width, dtype=dtype, device=device)
        self.h = torch.zeros(batch, width, dtype=dtype, device=device)
        self.tokens = torch.zeros(batch, max_new, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.count = torch.zeros(batch, dtype=torch.long, device=device)
        self._graphs: dict[str, torch.cuda.CUDAGraph] = {}
        self.head = backbone.get_output_embeddings()
        self.embed = backbone.get_input_embeddings()

    # the passes (each one a graph when captured)
    def _advance(self) -> None:
        written = self.layers[0].cumulative_length.reshape(1)  # the column this pass writes
        self.mask.index_fill_(3, written, 0.0)
        out = self.backbone.base_model(inputs_embeds=self.x, attention_mask=self.mask, position_ids=self.pos,
                                       cache=self.cache, use_cache=True)
        self.pos.add_(1)
        self.h.copy_(out.last_hidden_state[:, -1])

    def _thought(self) -> None:
        thought = self.project(self.h) if self.project is not None else self.h
        self.x.copy_(thought[:, None])
        self._advance()

    def _token(self) -> None:
        token = self.head(self.h).float().argmax(-1)
        token = torch.where(self.finished, self.eos, token)
        self.count.add_((~self.finished).long())
        self.tokens.index_copy_(1, self.step, token[:, None])
        self.step.add_(1)
        self.finished.logical_or_(token == self.eos)
        self.x.copy_(self.embed(token)[:, None])
        self._advance()

    def _run(self, name: str, fn: Callable[[], None]) -> None:
        if not self.graphs:
            fn()
            return
        graph = self._graphs.get(name)
        if graph is None:  # warm up on a side stream, undo what the warm-up wrote, capture
            buffers = [self.mask, self.pos, self.x, self.h, self.tokens, self.step, self.finished, self.count,
                       *(layer.cumulative_length for layer in self.layers)]
            saved = [b.clone() for b in buffers]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    fn()
            torch.cuda.current_stream().wait_stream(stream)
            for b, s in zip(buffers, saved):
                b.copy_(s)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            self._graphs[name] = graph
        graph.replay()

    @torch.no_grad()
    def generate(self, p: Prompts, max_new: int) -> tuple[list[list[int]], int]:
        """(each row's tokens up to its eos, forward passes)."""
        batch, prefix = p.ids.shape
        self.cache.reset()
        keys = torch.arange(self.max_len, device=p.ids.device)
        real = torch.zeros(batch, self.max_len, dtype=torch.bool, device=p.ids.device)
        real[:, :prefix] = p.mask.bool()
        queries = keys[:prefix, None]
        allowed = ((keys[None, :] <= queries)[None] & real[:, None, :]) | (keys[None, :] == queries)[None]
        from latentcot.latent.loop import attention_mask_from, position_ids

        prompt_mask = attention_mask_from(self.backbone, allowed[:, None], self.backbone.dtype, "gpu_speed")
        positions = position_ids(p.mask)
        out = self.backbone.base_model(inputs_embeds=self.embed(p.ids), attention_mask=prompt_mask,
                                       position_ids=positions, cache=self.cache, use_cache=True)
        self.h.copy_(out.last_hidden_state[:, -1])
        self.mask.copy_(torch.where(real, 0.0, float("-inf")).to(self.mask.dtype)[:, None, None, :])
        self.pos.copy_(p.mask.long().sum(-1, keepdim=True))
        self.tokens.zero_()
        self.step.zero_()
        self.finished.zero_()
        self.count.zero_()
        passes = 1
        for _ in range(p.thoughts):
            self._run("thought", self._thought)
            passes += 1
        for token in p.tail:  # fixed tokens (<eot>): eager, one pass each
            self.x.copy_(self.embed(torch.full((batch, 1), token, device=p.ids.device)))
            self._advance()
            passes += 1
        for step in range(max_new):
            self._run("token", self._token)
            passes += 1
            if step % 8 == 7 and bool(self.finished.all()):
                break
        from latentcot.latent.generate import Generation

        return Generation(self.tokens, self.count, passes, self.eos).rows(), passes


def prompts_for(method: Any, questions: list[str], device: torch.device) -> Prompts:
    """The prompts ``reason`` builds, split where the static runner needs them split."""
    from latentcot.methods.sequences import Row, pad_rows, question_ids

    if method.name == "coconut":
        bot, end, _ = method.thought_frame()
        k = method.config.max_latent_stage * method.config.c_thought
        rows = [Row(question_ids(method.tokenizer, q) + ([] if bot is None else [bot]), [], []) for q in questions]
    else:
        k, end = 0, []
        rows = [Row(question_ids(method.tokenizer, q), [], []) for q in questions]
    batch = pad_rows(rows, method.tokenizer.pad_token_id, device)
    return Prompts(batch["input_ids"], batch["attention_mask"], k, list(end))


def budget(method: Any, examples: list) -> int:
    """The batch's budget: its longest reference (CoT: steps and answer; Coconut: the answer) + 2."""
    from latentcot.methods.sequences import answer_ids, steps_ids

    tok = method.tokenizer
    if method.name == "coconut":
        return max(len(answer_ids(tok, ex.answer)) for ex in examples) + 2
    return max(len(steps_ids(tok, ex.steps)) + len(answer_ids(tok, ex.answer)) for ex in examples) + 2


def timed_mode(mode: str, method: Any, chunks: list[list], prompts: list[Prompts], budgets: list[int],
               device: torch.device) -> tuple[list[str], int, float]:
    """One way of answering every chunk: (texts, forward passes, seconds after a warm-up chunk)."""
    tokenizer = method.tokenizer
    runner = None
    if mode != "library":
        max_len = max(p.ids.shape[1] for p in prompts) + prompts[0].thoughts + len(prompts[0].tail) + max(budgets) + 1
        project = method.project if method.name == "coconut" else None
        runner = StaticRunner(method.backbone, len(chunks[0]), max_len, project, tokenizer.eos_token_id,
                              max(budgets), graphs=mode == "graphs")

    def run(i: int) -> tuple[list[str], int]:
        if runner is None:
            out = method.reason([ex.question for ex in chunks[i]], max_new_tokens=budgets[i])
            return out.texts, out.num_forward_passes
        ids, passes = runner.generate(prompts[i], budgets[i])
        return tokenizer.batch_decode(ids, skip_special_tokens=True), passes

    run(0)  # warm-up (and the graphs' capture)
    sync(device)
    start = time.perf_counter()
    texts, passes = [], 0
    for i in range(len(chunks)):
        got, k = run(i)
        texts += got
        passes += k
    sync(device)
    return texts, passes, time.perf_counter() - start


def generation(methods: dict[str, Any], questions: list, args: argparse.Namespace,
               device: torch.device) -> dict[str, Any]:
    modes = ["library", "static"] + (["graphs"] if device.type == "cuda" else [])
    results: dict[str, Any] = {}
    for name, method in methods.items():
        results[name] = {}
        for size in args.batches:
            n = args.batch1_questions if size == 1 else min(len(questions), size * args.batches_per_size)
            chunks = [questions[i : i + size] for i in range(0, n, size)]
            chunks = [c for c in chunks if len(c) == size]  # whole batches only (one graph per batch size)
            n = sum(len(c) for c in chunks)
            prompts = [prompts_for(method, [ex.question for ex in c], device) for c in chunks]
            budgets = [budget(method, c) for c in chunks]
            row: dict[str, Any] = {"questions": n, "budget_tokens_mean": sum(budgets) / len(budgets)}
            texts: dict[str, list[str]] = {}
            for mode in modes:
                try:
                    texts[mode], passes, seconds = timed_mode(mode, method, chunks, prompts, budgets, device)
                except RuntimeError as error:  # e.g. a capture that fails: the other modes still report
                    row[mode] = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
                    print(f"{name} batch {size} {mode}: {row[mode]['error']}", flush=True)
                    continue
                row[mode] = {"seconds": seconds, "questions_per_second": n / seconds, "passes": passes}
            if "static" in texts and "library" in texts:
                row["static_equals_library"] = sum(a == b for a, b in zip(texts["static"], texts["library"])) / n
            if "graphs" in texts and "static" in texts:
                row["graphs_equal_static"] = texts["graphs"] == texts["static"]
            results[name][str(size)] = row
            print(name, size, json.dumps(row), flush=True)
    return results


# ----------------------------------------------------------------------------- report
def render(result: dict[str, Any]) -> str:
    t = result["training"]
    peak = result["peak_flops"]
    lines = [
        "## GPU speed (issue 18's GPU check)",
        "",
        "Generated by `bench/gpu_speed.py`; do not edit by hand.",
        "",
        f"Command: `{result['command']}`",
        f"Device: {result['device']}; torch {result['torch']}; questions: {result['questions_source']}.",
        f"Model: {result['model']}.",
        "",
        f"**Training** (Coconut, {t['thoughts']} thoughts, batch {t['batch']}, {t['columns']} columns; "
        f"{'bf16 autocast' if result['bf16'] else 'float32'}; fused AdamW where CUDA):",
        "",
        "| step | s/step | TFLOP/step | TFLOP/s | MFU (of peak) | of measured matmul |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("coconut", "plain"):
        s = t[name]
        lines.append(f"| {name} | {s['seconds_per_step']:.4f} | {s['flops_per_step'] / 1e12:.3f} | "
                     f"{s['flops_per_second'] / 1e12:.1f} | {s['flops_per_second'] / peak:.1%} | "
                     f"{s['flops_per_second'] / result['matmul_flops']:.1%} |")
    lines += ["", f"Peak: {peak / 1e12:.1f} TFLOP/s ({result['peak_source']}); measured {result['matmul_dtype']} matmul "
              f"({result['matmul_n']}³): {result['matmul_flops'] / 1e12:.1f} TFLOP/s. Coconut's rate is "
              f"{t['coconut']['flops_per_second'] / t['plain']['flops_per_second']:.2f}× the plain step's.", "",
              "**Generation** (questions/s; passes are backbone calls over the set):", "",
              "| method | batch | questions | budget (mean) | library q/s | static q/s | graphs q/s | "
              "static = library | graphs = static |", "|---|---|---|---|---|---|---|---|---|"]
    gen = result["generation"]
    def qps(r: dict[str, Any], mode: str) -> str:
        cell = r.get(mode)
        if cell is None:
            return "–"
        return "failed" if "error" in cell else f"{cell['questions_per_second']:.1f}"

    for name, rows in gen.items():
        for size, r in rows.items():
            same = r.get("static_equals_library")
            lines.append(f"| {name} | {size} | {r['questions']} | {r['budget_tokens_mean']:.1f} | {qps(r, 'library')} | "
                         f"{qps(r, 'static')} | {qps(r, 'graphs')} | {'–' if same is None else f'{same:.0%}'} | "
                         f"{r.get('graphs_equal_static', '–')} |")
    errors = [f"{name} batch {size} {mode}: {r[mode]['error']}" for name, rows in gen.items()
              for size, r in rows.items() for mode in ("library", "static", "graphs") if "error" in r.get(mode, {})]
    lines += [f"- failed: {e}" for e in errors]
    summary = result["summary"]
    lines += ["", "Against the goals: " + "; ".join(f"{k}: {v}" for k, v in summary.items()) + ".", ""]
    return "\n".join(lines)


def summarize(result: dict[str, Any]) -> dict[str, str]:
    gen, out = result["generation"], {}
    t = result["training"]
    out["training MFU (goal ≥ 35%)"] = f"{t['coconut']['flops_per_second'] / result['peak_flops']:.1%}"
    def rate(name: str, size: str, mode: str) -> float | None:
        cell = gen.get(name, {}).get(size, {}).get(mode)
        return None if cell is None or "error" in cell else cell["questions_per_second"]

    for name in gen:
        for mode in ("library", "graphs"):
            big, one = rate(name, "64", mode), rate(name, "1", mode)
            if big and one:
                out[f"{name} batch 64 / batch 1, {mode} (goal ≥ 25×)"] = f"{big / one:.1f}×"
    for size in gen["cot"]:
        for mode in ("library", "graphs"):
            latent, cot = rate("coconut", size, mode), rate("cot", size, mode)
            if latent and cot:
                out[f"Coconut / CoT wall time per question, batch {size}, {mode} (goal ≤ 0.4×)"] = f"{cot / latent:.2f}×"
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs/gpu-out"), help="folder for gpu_speed.json and gpu_speed.md")
    p.add_argument("--tiny", action="store_true", help="a 2 x 64 model, few questions: a CPU rehearsal in seconds")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--gsm", help="GSM8k-Aug validation JSON (default: the data directory's gsm8k_aug/gsm_valid.json)")
    p.add_argument("--questions", type=int, default=256, help="questions read (batch 16/64 use up to batches-per-size batches)")
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--batches-per-size", type=int, default=3)
    p.add_argument("--batch1-questions", type=int, default=16)
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--train-repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, help="the chip's dense bf16 peak (default: by device name)")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.tiny:
        args.questions, args.train_batch, args.train_repeats, args.warmup = min(args.questions, 24), 4, 2, 1
        args.batch1_questions, args.batches, args.batches_per_size = 3, [1, 4], 2
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    coconut, cot, tokenizer, train_rows, questions, source = build(args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU"
    peak_source = "--peak-tflops"
    if args.peak_tflops:
        peak = args.peak_tflops * 1e12
    else:
        hit = next((k for k in PEAKS if k in name), None)
        peak = (PEAKS[hit] if hit else 1.0) * 1e12
        peak_source = f"{hit} dense bf16 data-sheet peak" if hit else "unknown device: 1 TFLOP/s placeholder"
    matmul_n = 256 if args.tiny else 8192
    mm_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    print(f"device {name}; questions: {source}", flush=True)
    train = training(coconut, train_rows, args, device)
    print("training", json.dumps(train), flush=True)
    if device.type == "cuda":
        coconut.backbone.to(torch.bfloat16)
    gen = generation({"coconut": coconut, "cot": cot}, questions, args, device)
    cfg = coconut.backbone.config
    result = {
        "command": "python bench/gpu_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": name, "torch": torch.__version__, "questions_source": source,
        "model": f"GPT-2 {cfg.n_layer} layers × {cfg.n_embd} wide, {cfg.n_head} heads, vocabulary {cfg.vocab_size}, random weights",
        "bf16": device.type == "cuda", "peak_flops": peak, "peak_source": peak_source,
        "matmul_n": matmul_n, "matmul_dtype": str(mm_dtype).replace("torch.", ""), "matmul_flops": matmul_rate(device, mm_dtype, matmul_n),
        "training": train, "generation": gen,
    }
    result["summary"] = summarize(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_speed.json").write_text(json.dumps(result, indent=1))
    (out / "gpu_speed.md").write_text(render(result))
    print(render(result))
    return result


if __name__ == "__main__":
    main()

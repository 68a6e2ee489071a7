"""`latentcot inspect CKPT "question"` and `latentcot inspect CKPT --data FILE`: look inside the
latents of a trained model (see :mod:`latentcot.latent.diagnostics`)."""

from __future__ import annotations

import argparse
import json
import sys

from latentcot.errors import LatentCotError


def _one(method, args: argparse.Namespace, options: dict) -> None:  # noqa: ANN001
    from latentcot.latent.diagnostics import describe_latents
    from latentcot.methods.simcot import with_step_decoder

    out = method.reason([args.question], max_new_tokens=args.max_new_tokens, **options)
    print(f"answer: {out.answers[0]}")
    print(f"text:   {out.texts[0]}")
    if out.latents is None or not out.latents.shape[1]:
        print("(no latents)")
        return
    latents = out.latents[0]
    decoder = with_step_decoder(method)
    steps = None if decoder is None else decoder.latent_steps(out.latents)[0]
    for info in describe_latents(method.backbone, method.tokenizer, latents, args.top_k, steps):
        print(f"latent {info.index}: norm {info.norm:.2f} ({info.relative_norm:.2f}x token embeddings)")
        if info.decoded_step is not None:
            print(f"  step:    {info.decoded_step}")
        print("  nearest: " + "  ".join(f"{w} ({p:.2f})" for w, p in info.nearest))
        print("  cosine:  " + " ".join(f"{s:+.2f}" for s in info.similarity))


def _superposition_table(thoughts: list[dict]) -> str:
    from latentcot.latent.diagnostics import SUPERPOSITION_GROUPS

    lines = ["| thought | questions | " + " | ".join(SUPERPOSITION_GROUPS) + " |", "|---" * (2 + len(SUPERPOSITION_GROUPS)) + "|"]
    for row in thoughts:
        cells = " | ".join(f"{row['mean'][g]:+.2f}" for g in SUPERPOSITION_GROUPS)
        lines.append(f"| {row['thought']} | {row['questions']} | {cells} |")
    return "\n".join(lines)


def _one_graph(method, args: argparse.Namespace, options: dict) -> None:  # noqa: ANN001
    from latentcot.data.graph import example_from_question
    from latentcot.latent.diagnostics import plot_superposition, superposition

    example = example_from_question(args.question)
    result = superposition(method, [example], **options)
    print(f"superposition (inner product of each thought with node embeddings; target {example.answer}, "
          f"{example.meta['hops']} hops):")
    print(_superposition_table(result["thoughts"]))
    if args.plot:
        plot_superposition(result["per_question"][0], args.plot, f"{args.checkpoint}: one question")
        print(f"plot: {args.plot}")


def _inspect(args: argparse.Namespace) -> int:
    from latentcot.train.recipe import load_trained

    if (args.question is None) == (args.data is None):
        raise LatentCotError("inspect: give either a question or --data FILE")
    method, cfg = load_trained(args.checkpoint)
    graph_task = cfg.data.task == "prosqa_graph"
    if args.plot and not (graph_task and args.question is not None):
        raise LatentCotError("inspect: --plot draws one question's superposition bars (a prosqa_graph run and a question)")
    options = {"n_latents": args.n_latents} if args.n_latents is not None else {}
    if args.question is not None:
        _one(method, args, options)
        if graph_task:
            _one_graph(method, args, options)
        return 0
    from latentcot.latent.diagnostics import dataset_diagnostics
    from latentcot.methods.simcot import with_step_decoder
    from latentcot.train.recipe import read_run_examples

    examples = read_run_examples(args.data, cfg.data)[: args.n]
    probe = method.reason([examples[0].question], max_new_tokens=1, **options)
    if probe.latents is None or not probe.latents.shape[1]:
        raise LatentCotError(f"inspect: method '{method.name}' produced no latents to diagnose")
    result = dataset_diagnostics(method, examples, args.batch_size, with_step_decoder(method), **options)
    if graph_task:
        from latentcot.latent.diagnostics import superposition

        result["superposition"] = superposition(method, examples, args.batch_size, **options)["thoughts"]
        print(_superposition_table(result["superposition"]), file=sys.stderr)
    print(json.dumps({"checkpoint": args.checkpoint, "data": args.data, **result}, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="look inside a checkpoint's latents: decoded steps, nearest tokens, collapse diagnostics",
        description="With a question: per latent, the step a SIM-CoT decoder writes (when the checkpoint "
        "has one), the nearest vocabulary tokens, its norm and cosine similarity to the other latents. "
        "With --data: mean pairwise cosine, effective rank, relative norm (and step recovery: overall, per latent "
        "group, and where each chain of decoded steps first goes wrong) over records. "
        "For a prosqa_graph run, also the superposition look: each thought's mean inner product with the "
        "embeddings of optimal-path, frontier, reachable and unreachable nodes, and of the mirror nodes "
        "(unreachable, as many steps below another person) (a table; --plot draws one question's bars).",
    )
    p.add_argument("checkpoint", help="checkpoint folder or run folder (its latest checkpoint)")
    p.add_argument("question", nargs="?", help="one question to look inside")
    p.add_argument("--data", help="records (.json, .jsonl or iCoT .txt) for collapse diagnostics; a relative path not found here is read from the data directory")
    p.add_argument("--n", type=int, default=200, help="first N records of --data")
    p.add_argument("--n-latents", type=int, help="continuous thoughts at inference (default: the method's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--top-k", type=int, default=5, help="nearest vocabulary tokens per latent")
    p.add_argument("--plot", help="prosqa_graph run and a question: save its superposition bars to this PNG")
    p.set_defaults(handler=_inspect)

"""`latentcot train | eval | generate | demo`: thin wrappers over the language-model recipe."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentcot.config import describe, load_config


def _train(args: argparse.Namespace) -> int:
    from latentcot.train.recipe import RunConfig, check_paths, main, summary_json

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config:  # no YAML given: the first word is an override
        config, overrides = None, [config, *overrides]
    cfg = load_config(RunConfig, config, overrides)
    check_paths(cfg)
    if args.dry_run:
        from latentcot.config import to_dict

        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    print(summary_json(main(cfg, resume=args.resume, overwrite=args.overwrite)))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from latentcot.cli.tts import evaluate_sampled, wants_sampling
    from latentcot.eval.evaluate import evaluate, format_table, write_result
    from latentcot.train.recipe import load_trained, read_run_examples

    method, cfg = load_trained(args.checkpoint)
    examples = read_run_examples(args.data, cfg.data)  # a graph run reads the file in graph form
    if args.n:
        examples = examples[: args.n]
    options = {"n_latents": args.n_latents} if args.n_latents is not None else {}
    if wants_sampling(args):  # test-time scaling: N sampled trajectories per question
        result = evaluate_sampled(args, method, examples, args.task or cfg.data.task)
    else:
        result = evaluate(method, examples, args.task or cfg.data.task, args.batch_size, args.max_new_tokens, **options)
    print(format_table([result]))
    if args.out:
        write_result(result, args.out)
        print(f"wrote {args.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from latentcot.latent.diagnostics import nearest_tokens
    from latentcot.train.recipe import load_trained

    method, _ = load_trained(args.checkpoint)
    options = {"n_latents": args.n_latents} if args.n_latents is not None else {}
    out = method.reason([args.question], max_new_tokens=args.max_new_tokens, **options)
    print(f"answer: {out.answers[0]}")
    print(f"text:   {out.texts[0]}")
    if out.latents is not None and out.latents.shape[1]:
        for i, words in enumerate(nearest_tokens(method.backbone, method.tokenizer, out.latents[0], k=args.top_k)):
            print(f"latent {i}: " + "  ".join(f"{w} ({p:.2f})" for w, p in words))
    if args.samples > 1:  # test-time scaling: N sampled latent trajectories and their vote
        from latentcot.cli.tts import print_samples

        print_samples(args, method)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from latentcot.demo import run_demo

    run_demo(out_dir=Path(args.out), quick=args.quick, seed=args.seed, coconut=args.coconut)
    return 0


class _HelpWithConfigKeys(argparse.Action):
    """``train --help``: lists every config key; the recipe (and torch) is imported only then."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from latentcot.train.run_config import RunConfig

        keys = "\n".join(f"  {k} (default {d}): {h}" for k, d, h in describe(RunConfig))
        parser.epilog = "config keys (override with key=value):\n" + keys
        parser.print_help()
        parser.exit()


def register(sub: argparse._SubParsersAction) -> None:
    from latentcot.cli.tts import add_eval_arguments, add_sampling_arguments
    p = sub.add_parser(
        "train",
        help="train a language-model method from a YAML recipe",
        description="Train a method (nocot, cot, pause, coconut, ...) and evaluate it on held-out data. "
        "Same command on one process or under `torchrun --nproc_per_node N -m latentcot.cli train ...`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument("-h", "--help", action=_HelpWithConfigKeys, help="show this help (with every config key) and exit")
    p.add_argument("config", nargs="?", help="YAML recipe (see configs/); defaults when omitted")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=3e-4 method.c_thought=2")
    p.add_argument("--resume", action="store_true", help="continue exactly from the run folder's latest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in out_dir (without --resume or this, an existing run is refused)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(handler=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a data file (accuracy and efficiency)")
    p.add_argument("checkpoint", help="checkpoint folder or run folder (its latest checkpoint)")
    p.add_argument("--data", required=True, help="records to evaluate (.json, .jsonl or iCoT .txt); a relative path not found here is read from the data directory ($LATENTCOT_DATA_DIR or ../shared/data)")
    p.add_argument("--task", help="answer rule (prosqa, prontoqa, multiplication, gsm8k); default: the run's task")
    p.add_argument("--n", type=int, default=0, help="evaluate only the first N records")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--n-latents", type=int, help="continuous thoughts at inference (latent methods)")
    p.add_argument("--out", help="write the summary and predictions as JSON here")
    add_eval_arguments(p)  # --samples, --sampler, --aggregate, ... (test-time scaling)
    p.set_defaults(handler=_eval)

    p = sub.add_parser("generate", help="answer one question; show each latent's nearest tokens")
    p.add_argument("checkpoint", help="checkpoint folder or run folder")
    p.add_argument("question")
    p.add_argument("--n-latents", type=int, help="continuous thoughts at inference (latent methods)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--top-k", type=int, default=5, help="nearest vocabulary tokens shown per latent")
    add_sampling_arguments(p)  # --samples N: also N sampled answers and their vote
    p.set_defaults(handler=_generate)

    p = sub.add_parser(
        "demo",
        help="the main job: train small nocot/cot/simcot models on CPU and compare them",
        description="Trains small (2-layer, 128-wide) nocot and cot models from scratch, then simcot (on "
        "coconut; with --coconut also plain coconut) from that cot model, on generated running sums mod 10 (the chain task; it has no real validation file, so the held-out questions are "
        "generated with another seed and kept out of training), prints one table, and shows each latent's "
        "nearest tokens and SIM-CoT's decoded steps for one question. About 8 to 9 minutes on 2 CPU cores (hosts vary).",
    )
    p.add_argument("--out", default="runs/demo", help="folder for the demo's runs and checkpoints")
    p.add_argument("--quick", action="store_true", help="a much smaller run (seconds), for smoke tests")
    p.add_argument("--seed", type=int, default=0, help="seed of the training data, initialisation and data order")
    p.add_argument("--coconut", action="store_true",
                   help="also train plain Coconut on SIM-CoT's schedule (about 4 more minutes; it collapses on this task)")
    p.set_defaults(handler=_demo)

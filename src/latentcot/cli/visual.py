"""`latentcot visual train | eval | solve`: thin wrappers over the EndoCoT recipe.

    latentcot visual train data.size=6 model.latent_steps=4 out_dir=runs/endocot-maze6 [--resume | --overwrite]
    latentcot visual eval runs/endocot-maze6 --n 500 [--latent-steps 12]
    latentcot visual solve runs/endocot-maze6 --index 3 --out solve/
"""

from __future__ import annotations

import argparse
import json

LATENT_STEPS_HELP = ("think for T latent steps instead of the run's model.latent_steps (a looped grid reasoner "
                     "can think longer at test time than it was trained to)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("visual", help="EndoCoT on visual puzzles: train, evaluate, solve one puzzle")
    sub = parser.add_subparsers(dest="visual_command", metavar="SUBCOMMAND")

    train = sub.add_parser("train", help="train stage 1 then stage 2 and report the solved rate")
    train.add_argument("config", nargs="?", default=None, help="YAML run config (optional; key=value works without)")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.size=6 model.latent_steps=4")
    train.add_argument("--resume", action="store_true", help="continue exactly from out_dir's latest checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run already in out_dir (without --resume or this, an existing run is refused)")
    train.add_argument("--dry-run", action="store_true", help="print the resolved config and every key's help, then stop")
    train.set_defaults(handler=_train)

    ev = sub.add_parser("eval", help="solved rate of a trained run on held-out puzzles (with a reasoner also "
                        "the solved rate with shuffled thoughts; with a readout its exact-answer rate)")
    ev.add_argument("run", help="run folder written by `latentcot visual train`")
    ev.add_argument("--n", type=int, default=None, help="puzzles (default: the run's eval_size)")
    ev.add_argument("--steps", type=int, default=None, help="Euler steps (default: the run's sample_steps)")
    ev.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ev.add_argument("--latent-steps", type=int, default=None, metavar="T", help=LATENT_STEPS_HELP)
    ev.set_defaults(handler=_eval)

    solve = sub.add_parser("solve", help="draw one held-out puzzle's answer: PNGs + parsed, checked answer")
    solve.add_argument("run", help="run folder written by `latentcot visual train`")
    solve.add_argument("--index", type=int, default=0, help="which held-out puzzle (0-based)")
    solve.add_argument("--out", default="solve", help="folder for puzzle.png, answer.png, truth.png")
    solve.add_argument("--steps", type=int, default=None, help="Euler steps (default: the run's sample_steps)")
    solve.add_argument("--seed", type=int, default=0, help="sampling noise seed")
    solve.add_argument("--latent-steps", type=int, default=None, metavar="T", help=LATENT_STEPS_HELP)
    solve.set_defaults(handler=_solve)


def _train(args: argparse.Namespace) -> int:
    from latentcot.config import describe, load_config, to_dict
    from latentcot.visual.train import VisualRunConfig, main

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config:  # no YAML given: the first word is an override
        config, overrides = None, [config, *overrides]
    cfg = load_config(VisualRunConfig, config, overrides)
    if args.dry_run:
        print(json.dumps(to_dict(cfg), indent=2))
        for key, default, text in describe(VisualRunConfig):
            print(f"  {key} (default {default}): {text}")
        return 0
    result = main(cfg, resume=args.resume, overwrite=args.overwrite)
    if result:  # under torchrun only rank 0 has one
        print(json.dumps({k: v for k, v in result.items() if k != "config"}))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from latentcot.errors import LatentCotError
    from latentcot.visual.train import eval_puzzles, evaluate, load_run

    if (args.n is not None and args.n < 1) or (args.steps is not None and args.steps < 1):
        raise LatentCotError("--n and --steps must be at least 1")
    model, cfg = load_run(args.run, args.device)
    if args.latent_steps is not None:
        model.set_latent_steps(args.latent_steps)
    puzzles = eval_puzzles(cfg, args.n)
    result = evaluate(model, cfg.data.task, puzzles, args.steps or cfg.sample_steps, cfg.seed)
    n = result.pop("n_eval")
    print(json.dumps({"run": args.run, "task": cfg.data.task, "size": cfg.data.size, "n": n,
                      "latent_steps": model.cfg.latent_steps, **result}))
    return 0


def _solve(args: argparse.Namespace) -> int:
    from latentcot.errors import LatentCotError
    from latentcot.visual.train import eval_puzzles, load_run, solve_to_files

    if args.index < 0:
        raise LatentCotError(f"--index must be 0 or more, got {args.index}")
    model, cfg = load_run(args.run)
    if args.latent_steps is not None:
        model.set_latent_steps(args.latent_steps)
    puzzle = eval_puzzles(cfg, args.index + 1)[args.index]
    result = solve_to_files(model, cfg.data.task, puzzle, args.out, args.steps or cfg.sample_steps, args.seed)
    print(f"answer: {result['answer']}  ({'solved' if result['solved'] else 'wrong'}; truth {result['truth']})")
    print("files: " + " ".join(result["files"]))
    return 0

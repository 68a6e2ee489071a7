"""The one `latentcot` command. Each subcommand group lives in its own module of this package
and exposes ``register(subparsers)``; every handler is a thin wrapper over a library function a
Python user can call directly. Nothing in the library imports this package."""

from __future__ import annotations

import argparse
import importlib
import sys

from latentcot.errors import LatentCotError

# subcommand group -> module in this package that registers it
GROUPS = {
    "data": "latentcot.cli.data",
    "lm": "latentcot.cli.lm",  # train, eval, generate, inspect, demo
    "diffusion": "latentcot.cli.diffusion",
    "inspect": "latentcot.cli.inspect",
    "visual": "latentcot.cli.visual",
    "report": "latentcot.cli.report",
    "view": "latentcot.cli.view",
    "tts": "latentcot.cli.tts",  # reward (test-time scaling)
}


# command -> (the group that registers it, its line in `latentcot --help`). Only the group of the
# command being run is imported, so `latentcot --help` and the data commands never import torch.
COMMANDS = {
    "data": ("data", "generate, validate, convert and inspect data sets"),
    "train": ("lm", "train a language-model method from a YAML recipe"),
    "eval": ("lm", "evaluate a checkpoint on a data file (accuracy and efficiency)"),
    "generate": ("lm", "answer one question; show each latent's nearest tokens"),
    "demo": ("lm", "the main job: train small nocot/cot/simcot models on CPU and compare them"),
    "diffusion": ("diffusion", "JiT toy (x/eps/v prediction) and CoTj schedule planning"),
    "inspect": ("inspect", "look inside a checkpoint's latents: decoded steps, nearest tokens, collapse diagnostics"),
    "visual": ("visual", "EndoCoT on visual puzzles: train, evaluate, solve one puzzle"),
    "report": ("report", "an HTML report (training curves, evaluation table, config diff) over run folders"),
    "view": ("view", "a static site over run folders: curves, evaluation table, each question's thoughts"),
    "reward": ("tts", "train a Latent Reward Model on a latent reasoner's own sampled trajectories"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `latentcot` parser.

    Args:
        argv: the arguments about to be parsed: only the group of their command is imported and
            the other commands are listed by name and help. None imports every group.
    """
    parser = argparse.ArgumentParser(
        prog="latentcot",
        description="Train, evaluate and look inside models that reason in latent space.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is None:
        groups = list(GROUPS)
    else:
        command = next((a for a in argv if not a.startswith("-")), None)
        # a command missing from COMMANDS (a group's newest) still works: every group is imported
        groups = [COMMANDS[command][0]] if command in COMMANDS else list(GROUPS) if command else []
    for group in groups:
        module = GROUPS[group]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue  # group not built yet
        mod.register(sub)
    if argv is not None:
        for name, (_, help) in COMMANDS.items():
            if name not in sub.choices:
                sub.add_parser(name, help=help)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    # `train cfg.yaml --resume train.lr=1e-4`: overrides after a flag are still overrides (argparse
    # alone stops filling the positional list at the first flag)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
        "=" in e and not e.startswith("-") for e in extra
    ):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.handler(args) or 0)
    except LatentCotError as err:
        print(f"latentcot: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentcot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

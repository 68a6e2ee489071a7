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
    "tts": "latentcot.cli.tts",  # reward (test-time scaling)
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentcot",
        description="Train, evaluate and look inside models that reason in latent space.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in GROUPS.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue  # group not built yet
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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

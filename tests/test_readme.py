"""The README's tour runs as written, in order, from a fresh clone: every line parses, every file
or run it reads is written by a line above it (or ships with the repository), and the data lines
run for real (with fewer records)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml

from latentcot.cli import build_parser
from latentcot.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def tour() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## A short tour of the CLI.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def latentcot_argv(words: list[str]) -> list[str]:
    if words[0] == "torchrun":
        return words[words.index("latentcot.cli") + 1:]
    assert words[0] == "latentcot", words
    return words[1:]


def test_every_tour_line_parses():
    commands = tour()
    assert len(commands) >= 15
    for words in commands:
        argv = latentcot_argv(words)
        parser = build_parser(argv)
        if "--help" in argv:
            with pytest.raises(SystemExit) as exit, contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
            assert exit.value.code == 0
            continue
        args = parser.parse_args(argv)
        assert getattr(args, "handler", None), words


def test_every_input_is_made_by_an_earlier_line():
    made: set[str] = set()
    for words in tour():
        argv = latentcot_argv(words)
        args = build_parser(argv).parse_args(argv) if "--help" not in argv else None
        if args is None:
            continue
        command = [a for a in argv if not a.startswith("-")][:2]
        reads: list[str] = []
        if command[0] == "data" and command[1] in ("validate", "stats"):
            reads = args.files
        elif command[0] == "data" and command[1] == "convert":
            reads = [args.input]
        elif command[0] in ("eval", "generate", "inspect"):
            reads = [args.checkpoint] + ([args.data] if command[0] == "eval" else [])
        elif command[0] in ("report", "view"):
            reads = args.runs
        elif command[0] in ("diffusion", "visual") and command[1] in ("plan", "eval"):
            reads = [getattr(args, "checkpoint", None) or args.run]
        elif command[0] in ("train", "visual"):
            config = args.config
            assert (ROOT / config).is_file(), config
            if not getattr(args, "resume", False):
                made.add(yaml.safe_load((ROOT / config).read_text())["out_dir"])
        for path in reads:
            assert path in made, f"{' '.join(words)}: reads {path}, which no earlier line makes"
        if getattr(args, "out", None):
            made.add(args.output if command[:2] == ["data", "convert"] else args.out)
        if command[:2] == ["data", "convert"]:
            made.add(args.output)


def test_the_data_lines_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = 0
    for words in tour():
        argv = latentcot_argv(words)
        if argv[0] != "data" or argv[1] == "download":  # download needs the internet
            continue
        if "--n" in argv:
            argv[argv.index("--n") + 1] = "40"
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(argv) == 0, words
        ran += 1
    assert ran == 7
    assert (tmp_path / "runs/data/mult4.jsonl").is_file() and (tmp_path / "runs/data/mult2_more.txt").is_file()

"""`latentcot data`: generate, validate, convert, show statistics of and download data sets."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from latentcot.data import paths
from latentcot.data.download import download
from latentcot.data.formats import FORMATS, read_examples, write_examples
from latentcot.data.stats import dataset_stats, format_table
from latentcot.data.validate import validate_file
from latentcot.errors import LatentCotError


class _Tasks:
    """The generator names, imported only when argparse looks at them (``data generate``), so
    the other data commands never import the generators (and what they import)."""

    def _names(self) -> list[str]:
        from latentcot.data.generators import GENERATORS

        return sorted(GENERATORS)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):  # noqa: ANN204
        return iter(self._names())


def _generate(args: argparse.Namespace) -> int:
    from latentcot.data.generators import generate

    if args.n < 1:
        raise LatentCotError(f"--n must be at least 1, got {args.n}")
    given = (("digits", args.digits), ("max_steps", args.max_steps), ("length", args.length), ("modulus", args.modulus),
             ("stride", args.stride))
    options = {k: v for k, v in given if v is not None}
    start = time.perf_counter()
    examples = generate(args.task, args.n, args.seed, **options)
    write_examples(examples, args.out, args.format)
    print(f"wrote {len(examples)} {args.task} records to {args.out} in {time.perf_counter() - start:.2f} s")
    return 0


def _validate(args: argparse.Namespace) -> int:
    total = 0
    for path in args.files:
        problems = validate_file(path, args.format)
        for problem in problems:
            print(problem)
        total += len(problems)
        if not problems:
            print(f"{path}: ok")
    if total:
        print(f"{total} problem(s) found", file=sys.stderr)
    return 1 if total else 0


def _convert(args: argparse.Namespace) -> int:
    examples = read_examples(args.input, args.input_format)
    write_examples(examples, args.output, args.output_format)  # refuses what would not read back identical
    dropped = sorted({k for ex in examples for k in ex.meta if not k.startswith("_")})
    if dropped and (args.output_format or Path(args.output).suffix) in ("icot", ".txt"):
        print(f"note: iCoT text has no place for the extra fields {', '.join(dropped)}; they are not written")
    print(f"converted {len(examples)} records: {args.input} -> {args.output}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    for path in args.files:
        stats = dataset_stats(read_examples(path, args.format))
        print(json.dumps({"file": path, **stats}) if args.json else format_table(stats, title=path))
    return 0


def _download(args: argparse.Namespace) -> int:
    dest = args.dest or paths.data_dir(args.data_dir) or Path("../shared/data")
    for path in download(dest, timeout=args.timeout):
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `latentcot data` and its subcommands to the top-level parser."""
    data = subparsers.add_parser("data", help="generate, validate, convert and inspect data sets",
                                 description="Data sets in Coconut JSON (.json), iCoT text (.txt) and JSONL (.jsonl).")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    fmt_help = f"file format ({', '.join(FORMATS)}); by default from the extension and content"

    g = sub.add_parser("generate", help="write N generated records (format from --out's extension)",
                       description="Generate seeded, checked training data in the real formats.")
    g.add_argument("task", metavar="TASK", choices=_Tasks(), help="what to generate: %(choices)s")
    g.add_argument("--n", type=int, default=1000, help="number of records (default 1000)")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same file")
    g.add_argument("--out", required=True, help="output file: .json (Coconut), .txt (iCoT) or .jsonl")
    g.add_argument("--format", choices=FORMATS, help="output format, overriding the extension")
    g.add_argument("--digits", type=int, help="multiplication: operand length N for N x N (default 4)")
    g.add_argument("--max-steps", type=int, help="arithmetic: the most operations per problem (default 4)")
    g.add_argument("--length", type=int, help="chain: terms per running sum (default 8)")
    g.add_argument("--modulus", type=int, help="chain: sums taken modulo this (default 10)")
    g.add_argument("--stride", type=int, help="chain: additions per written step (default 1; the questions do not change)")
    g.set_defaults(handler=_generate)

    v = sub.add_parser("validate", help="report every problem in data files (exit 1 if any)",
                       description="Check every record; each problem names file, record (or line) and field.")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("--format", choices=FORMATS, help=fmt_help)
    v.set_defaults(handler=_validate)

    c = sub.add_parser("convert", help="convert between formats (by extension)",
                       description="Read IN and write OUT; formats follow the extensions unless given.")
    c.add_argument("input", metavar="IN")
    c.add_argument("output", metavar="OUT")
    c.add_argument("--input-format", choices=FORMATS, help=fmt_help)
    c.add_argument("--output-format", choices=FORMATS, help="output format; by default from OUT's extension")
    c.set_defaults(handler=_convert)

    s = sub.add_parser("stats", help="counts, steps per record, lengths, vocabulary, answer format",
                       description="Statistics of data files, as a table or JSON.")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--format", choices=FORMATS, help=fmt_help)
    s.add_argument("--json", action="store_true", help="print one JSON object per file")
    s.set_defaults(handler=_stats)

    d = sub.add_parser("download", help="fetch the public validation files (needs the internet)",
                       description="Download the real validation files from their public repositories.")
    d.add_argument("--dest", help="where to put them (default: the data directory)")
    d.add_argument("--data-dir", help=f"the data directory (default ${paths.ENV_VAR}, else ../shared/data)")
    d.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per file (default 30)")
    d.set_defaults(handler=_download)
    data.set_defaults(handler=lambda args: data.print_help() or 0)

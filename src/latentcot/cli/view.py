"""`latentcot view RUN... --out DIR`: a static site over run folders (see :mod:`latentcot.eval.viewer`)."""

from __future__ import annotations

import argparse


def _view(args: argparse.Namespace) -> int:
    from latentcot.eval.viewer import build_site

    index = build_site(args.runs, args.out, args.title, args.questions, args.top_k, args.batch_size)
    print(f"wrote {index} (open it in a browser; it needs no server)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="a static site over run folders: curves, evaluation table, each question's thoughts",
        description="Writes DIR/index.html and the JSON it shows (under DIR/data): every logged metric's "
        "training curve (runs of one task overlaid), the evaluation table (sortable), the configs (their "
        "differences side by side) and a question browser over each run's held-out questions (eval.json): "
        "per thought its nearest tokens, norm, cosine similarity to the other thoughts, the SIM-CoT decoder's "
        "step and, for prosqa_graph runs, the superposition bars. Open index.html offline; no server needed. "
        "E.g. `latentcot view runs/demo/* --out runs/demo/site`.",
    )
    p.add_argument("runs", nargs="+", help="run folders written by `latentcot train` or `latentcot demo`")
    p.add_argument("--out", default="site", help="the folder to write the site into")
    p.add_argument("--title", default="latentcot view")
    p.add_argument("--questions", type=int, help="browse the first N held-out questions of each run (default: all)")
    p.add_argument("--top-k", type=int, default=5, help="nearest vocabulary tokens per thought")
    p.add_argument("--batch-size", type=int, default=64, help="questions per forward batch while precomputing")
    p.set_defaults(handler=_view)

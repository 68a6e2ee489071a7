"""`latentcot report RUN... --out report.html`: one HTML page over run folders."""

from __future__ import annotations

import argparse


def _report(args: argparse.Namespace) -> int:
    from latentcot.eval.report import build_report

    path = build_report(args.runs, args.out, args.title)
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="an HTML report (training curves, evaluation table, config diff) over run folders",
        description="Reads metrics.jsonl, eval.json and config.yaml of each run folder and writes one "
        "self-contained HTML page (it opens offline): a curve per logged metric, the evaluation table "
        "(sortable), the config keys that differ between runs and each config folded away; "
        "`latentcot view` writes the same page with a question browser. "
        "E.g. `latentcot report runs/demo/* --out runs/demo/report.html`.",
    )
    p.add_argument("runs", nargs="+", help="run folders written by `latentcot train` or `latentcot demo`")
    p.add_argument("--out", default="report.html", help="the HTML file to write")
    p.add_argument("--title", default="latentcot report")
    p.set_defaults(handler=_report)

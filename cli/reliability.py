"""`python -m collabvr reliability`: the paper's reliability axes (D1, D2, D3) from the labels in a store, per
VLM backend and per annotator, person against person, and the verifier against the simulator's ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import EXIT_FINISHED, SubParsers, UsageError, add_store_args, guarded, open_store
from collabvr.eval.reliability import figure, reliability, rows, table


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "reliability", help="D1/D2/D3 reliability of the VLM from people's labels and simulated ground truth",
        description="The paper's reliability study from the store: D1 plan depth (exact match, MAE), D2 "
                    "verification (accept- and reject-recall, agreement, F1, Cohen's kappa, confusion matrix), D3 "
                    "suggestion quality (mean, share >= 2, share = 3); per VLM backend and per annotator; person "
                    "against person where two labelled the same attempts; and, on simulated clips, the VLM's "
                    "verdicts against the simulator's ground truth with no person needed.")
    add_store_args(p, "read")
    p.add_argument("--out", type=Path, default=None,
                   help="also write reliability.json, reliability.csv and reliability.html (a plotly figure) here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=guarded(cmd_reliability))


def cmd_reliability(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    ids = store.session_ids()
    if not ids:
        raise UsageError(f"{store.path} holds no session")
    report = reliability([store.read(session_id) for session_id in ids])
    if args.out is not None:
        _write(report, args.out)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(table(report))
        if args.out is not None:
            print(f"\nwritten: {args.out / 'reliability.json'}, {args.out / 'reliability.csv'}, "
                  f"{args.out / 'reliability.html'}")
    return EXIT_FINISHED


def _write(report, out: Path) -> None:  # noqa: ANN001 - a ReliabilityReport
    import csv

    out.mkdir(parents=True, exist_ok=True)
    (out / "reliability.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    table_rows = rows(report)
    fields = sorted({key for row in table_rows for key in row}, key=lambda k: list(table_rows[0]).index(k)
                    if k in table_rows[0] else 99)
    with open(out / "reliability.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(table_rows)
    (out / "reliability.html").write_text(figure(report).to_html(include_plotlyjs=True, full_html=True),
                                          encoding="utf-8")

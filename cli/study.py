"""`python -m collabvr study create | list | status | figures | export`: reliability studies (collabvr.study) over
the sessions of a SQLite store. People label a study's items in the app's Study tab; the command line makes the
study, follows its progress, prints its figures (the paper's Tables 6-7 layout) and exports it as JSONL.

Every command takes `--db PATH` or `--data-dir DIR`, as `sessions` does.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from cli.common import Handler, SubParsers, UsageError, add_store_args, count, guarded, open_store
from collabvr.store import InvalidSessionId, check_session_id
from collabvr.study import StudyError, StudySnapshot, disagreements, make_spec, progress
from collabvr.study_stats import agreement_rows, snapshot_figures, table6, table7, text_table
from storage.study_store import StudyStore


def register(sub: SubParsers) -> None:
    """Add `study` and its subcommands to the top-level parser."""
    study = sub.add_parser(
        "study", help="reliability studies: blind labelling queues, several annotators, agreement, export",
        description="Make and follow reliability studies over recorded sessions (label them in the app's Study tab).")
    commands = study.add_subparsers(dest="study_command", required=True, metavar="SUBCOMMAND")

    def command(name: str, purpose: str, handler: Handler) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=purpose, description=purpose[0].upper() + purpose[1:] + ".")
        add_store_args(p)
        p.set_defaults(handler=guarded(_study_errors(handler)))
        return p

    p = command("create", "make a study: which sessions, which labels, how many annotators per item", cmd_create)
    p.add_argument("name", metavar="NAME", help="1 to 64 letters, digits, '_' or '-'")
    p.add_argument("--sessions", required=True, metavar="all|ID,...",
                   help="'all' (every session in the store, oldest first) or comma-separated session ids")
    p.add_argument("--labels", default="d1,d2,d3", metavar="d1,d2,d3[,notes]",
                   help="what to collect: d1 plan depth, d2 clip verdict, d3 suggestion rating, notes (default d1,d2,d3)")
    p.add_argument("--per-item", type=int, default=2, metavar="N", help="annotators each item needs (default 2)")
    p.add_argument("--annotators", default="", metavar="A,B,...", help="who may label (default: anyone)")
    p.add_argument("--hold-minutes", type=float, default=10.0, metavar="MIN",
                   help="how long an opened item is kept from other annotators (default 10)")
    p.add_argument("--open", action="store_true",
                   help="not blind: show the VLM's verdict and the other labels while labelling (default: blind)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("list", "list the studies, newest first", cmd_list)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("status", "show a study's progress, overall and per annotator", cmd_status)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("figures", "print a study's agreement figures: Tables 6-7 and every pair, with 95% intervals",
                cmd_figures)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("export", "export a study as JSONL: one row per item, every label, the adjudicated label", cmd_export)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl")


def _study_errors(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except StudyError as exc:
            raise UsageError(str(exc)) from None
    return run


def _session_ids(text: str, store) -> list[str]:
    if text.strip() == "all":
        ids = store.session_ids()
        if not ids:
            raise UsageError("the store holds no session yet")
        return ids
    ids = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return [check_session_id(i) for i in ids]
    except InvalidSessionId as exc:
        raise UsageError(str(exc)) from None


def cmd_create(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    spec = make_spec(args.name, _session_ids(args.sessions, store), args.labels, args.per_item, args.annotators,
                     blind=not args.open, hold_s=args.hold_minutes * 60, created_by=os.environ.get("USER", ""))
    items = StudyStore(store).create(spec)
    kinds = {k: sum(1 for i in items if i.label == k) for k in spec.kinds}
    if args.json:
        print(json.dumps({"study": spec.name, "items": len(items), "by_label": kinds, "spec": asdict(spec)}, indent=2))
        return 0
    who = ", ".join(spec.annotators) if spec.annotators else "anyone"
    print(f"study {spec.name}: {count(len(items), 'item')} ({', '.join(f'{k} {n}' for k, n in kinds.items())}) "
          f"over {count(len(spec.sessions), 'session')}, {spec.per_item} annotator(s) per item, "
          f"{'blind' if spec.blind else 'open (not blind)'}; annotators: {who}")
    print("label it in the app's Study tab")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    studies = StudyStore(store)
    rows = []
    for name in studies.names():
        spec = studies.spec(name)
        rows.append({"name": name, "sessions": len(spec.sessions), "labels": list(spec.labels),
                     "per_item": spec.per_item, "annotators": list(spec.annotators), "blind": spec.blind,
                     "created": spec.created_at})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no studies (make one: python -m collabvr study create NAME --sessions all)")
    else:
        for r in rows:
            print(f"{r['name']:<24}{r['sessions']:>4} sessions  {','.join(r['labels']):<16} "
                  f"{r['per_item']} per item  {'blind' if r['blind'] else 'open'}")
    return 0


def status_report(snap: StudySnapshot) -> dict:
    now = time.time()
    done = progress(snap.spec, snap.present_items, snap.labels, snap.holds, now)
    return {"study": snap.spec.name, "blind": snap.spec.blind, "per_item": snap.spec.per_item,
            "items": done.items, "complete": done.complete, "labels": done.labels, "needed": done.needed,
            "share": round(done.share, 4), "by_label": {k: {"complete": c, "items": n} for k, (c, n) in
                                                       done.by_kind.items()},
            "per_annotator": done.per_annotator, "held": done.held,
            "disagreements": len(disagreements(snap.present_items, snap.labels, snap.adjudications)),
            "adjudicated": len({a.key for a in snap.adjudications}), "missing_sessions": snap.missing}


def cmd_status(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    report = status_report(StudyStore(store).snapshot(args.name, with_truth=False))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"study {report['study']} ({'blind' if report['blind'] else 'open'}, {report['per_item']} per item): "
          f"{report['complete']} of {report['items']} items complete, {report['labels']} of {report['needed']} "
          f"labels ({report['share']:.0%})")
    for kind, row in report["by_label"].items():
        print(f"  {kind}: {row['complete']} of {row['items']} items complete")
    for name, n in sorted(report["per_annotator"].items()):
        holding = f" (has {report['held'][name]} open)" if name in report["held"] else ""
        print(f"  {name}: {count(n, 'label')}{holding}")
    print(f"disagreements: {report['disagreements']}, adjudicated: {report['adjudicated']}")
    if report["missing_sessions"]:
        print(f"sessions deleted since the study was made: {', '.join(report['missing_sessions'])}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    if not 0 <= args.resamples <= 20000:
        raise UsageError("--resamples must be between 0 and 20000")
    store, _ = open_store(args, must_exist=True)
    snap = StudyStore(store).snapshot(args.name)
    figures = snapshot_figures(snap, args.resamples)
    tables = {"table6": table6(figures), "table7": table7(figures), "agreement": agreement_rows(figures)}
    if args.json:
        print(json.dumps({"study": snap.spec.name, "figures": asdict(figures),
                          "tables": {k: {"header": h, "rows": r} for k, (h, r) in tables.items()}}, indent=2))
        return 0
    simulated = any(s.started.vlm.simulated or s.started.vgm.simulated for s in snap.states.values())
    print(f"study {snap.spec.name}{' [SIMULATED sessions]' if simulated else ''}")
    print("\nTable 6: people (the consensus of each item) against the VLM\n" + text_table(*tables["table6"]))
    print("\nTable 7: D2 confusion, the VLM's verdict (pred) against people's\n" + text_table(*tables["table7"]))
    print("\nAgreement, pair by pair and of all annotators (κ Cohen's kappa, α Krippendorff's alpha)\n"
          + text_table(*tables["agreement"]))
    for note in figures.notes:
        print(f"note: {note}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.out.suffix != ".jsonl":
        raise UsageError(f"--out must end in .jsonl, not {args.out.name!r}")
    store, _ = open_store(args, must_exist=True)
    rows = StudyStore(store).snapshot(args.name).rows()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    labels = sum(len(r["labels"]) for r in rows)
    print(f"exported study {args.name}: {count(len(rows), 'item')}, {count(labels, 'label')} to {args.out}")
    return 0

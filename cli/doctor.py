"""`python -m collabvr doctor`: check a data folder's integrity (storage/doctor.py), and with --fix remove
what is provably safe to remove. Exit status 0 when nothing is wrong, 1 when errors were found."""

from __future__ import annotations

import argparse
import sys

from cli.common import EXIT_USAGE, SubParsers, add_store_args, store_paths
from storage.doctor import as_json, examine, fix


def register(sub: SubParsers) -> None:
    p = sub.add_parser("doctor", help="check a data folder's integrity; --fix removes only what is safe to remove",
                       description="Check the database and artifact folder: schema, event sequences, logs the "
                                   "engine could not have written, missing or altered artifacts, orphans, stale "
                                   "temporary files. Reads the database read-only unless --fix is given.")
    add_store_args(p, "check")
    p.add_argument("--fix", action="store_true",
                   help="remove stale temporary files, orphan files older than 10 minutes, orphan artifact rows "
                        "and orphan cached frames (never an event or a file an event names)")
    p.add_argument("--no-hash", action="store_true", help="check artifact sizes only, not their sha256 (faster)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    database, artifact_root = store_paths(args)
    if not database.is_file():
        print(f"error: no database at {database}", file=sys.stderr)
        return EXIT_USAGE
    report = examine(database, artifact_root, hashes=not args.no_hash)
    if args.fix:
        fix(report)
    if args.json:
        print(as_json(report))
        return 0 if report.healthy else 1
    print(f"{database}: {report.sessions} sessions, {report.events} events, {report.artifacts} artifacts named")
    for finding in report.findings:
        print(f"  {finding.severity:<8} {finding.check:<16} {finding.where}: {finding.detail}")
    counts = report.counts()
    print(f"{counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
          f"{counts.get('fixable', 0)} removable" + (f"; removed {len(report.fixed)}" if args.fix else
                                                      " (run with --fix to remove them)" if counts.get('fixable') else ""))
    print("healthy" if report.healthy else "NOT healthy: see the errors above")
    return 0 if report.healthy else 1

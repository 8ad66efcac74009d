"""`python -m collabvr sessions list | show | resume | fork | export | import | delete`: the sessions recorded
in a SQLite store (by `run --db/--data-dir` or the app).

Every command takes `--db PATH` (artifacts beside it, in artifacts/) or `--data-dir DIR` (DIR/collabvr.sqlite
and DIR/artifacts); without either, the data folder is $COLLABVR_DATA_DIR, else ./data.

Crash safety: events are appended one command at a time in one transaction each, and a session's state is
a fold of its events, so a session reopened after its process was killed continues from its last
appended event (an attempt that was being generated is generated again). Files a killed process left
half-written in artifacts/tmp are removed when a store is opened, once they are more than a minute old
(younger ones may belong to a process that is still writing).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from cli.common import (
    EXIT_FINISHED, Handler, SubParsers, UsageError, add_store_args, count, guarded, open_store, progress_printer,
    report_run, session_id_arg, session_result,
)
from collabvr import registry
from collabvr.config import BREAKPOINTS
from collabvr.engine import Engine
from collabvr.loop import next_command
from collabvr.report import step_lines, summary
from collabvr.state import SessionState, fold
from collabvr.status import STATUSES
from storage.data_dir import delete_session_and_files


CLI_ACTOR = "cli"  # who a decision made from the command line (e.g. new breakpoints) is recorded as


def register(sub: SubParsers) -> None:
    """Add `sessions` and its subcommands to the top-level parser."""
    sessions = sub.add_parser(
        "sessions", help="list, show, resume, fork, export, import and delete recorded sessions",
        description="Work with the sessions recorded in a SQLite store (by `run --db/--data-dir` or the app).")
    commands = sessions.add_subparsers(dest="sessions_command", required=True, metavar="SUBCOMMAND")

    def command(name: str, purpose: str, handler: Handler) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=purpose, description=purpose[0].upper() + purpose[1:] + ".")
        add_store_args(p)
        p.set_defaults(handler=guarded(handler))
        return p

    p = command("list", "list recorded sessions, most recently updated first", cmd_list)
    p.add_argument("--search", metavar="TEXT", help="only sessions whose title or task prompt contains TEXT")
    p.add_argument("--status", choices=STATUSES, help="only sessions with this status")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N sessions (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = command("show", "show a session's summary and what happened in each step", cmd_show)
    p.add_argument("session_id", type=session_id_arg, metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("resume", "resume a session: rebuild its backends and run it to the end "
                          "(exit 0 finished, 1 backend failure, 3 paused at a breakpoint)", cmd_resume)
    p.add_argument("session_id", type=session_id_arg, metavar="ID")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of progress and a summary")
    p.add_argument("--breakpoint", action="append", choices=BREAKPOINTS, default=None,
                   help="replace the session's breakpoints with these (repeatable; recorded as a decision)")
    p.add_argument("--clear-breakpoints", action="store_true", help="remove the session's breakpoints first")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="also write final.mp4 and events.jsonl into DIR")

    p = command("fork", "fork a session: a new session holding its first SEQ events", cmd_fork)
    p.add_argument("session_id", type=session_id_arg, metavar="ID")
    p.add_argument("--at", type=int, required=True, metavar="SEQ",
                   help="how many events of the original the fork keeps (1 = only SessionStarted)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("export", "export sessions to a JSONL file and a zip archive with their artifacts", cmd_export)
    p.add_argument("session_ids", nargs="*", type=session_id_arg, metavar="ID", help="the sessions to export")
    p.add_argument("--all", action="store_true", help="export every session")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="a file ending in .jsonl (one row per attempt) or .zip (the importable archive); "
                        "the other one is written beside it with the same name")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("import", "import sessions from an archive written by `sessions export`", cmd_import)
    p.add_argument("archive", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = command("delete", "delete a session and the artifact files no other session uses", cmd_delete)
    p.add_argument("session_id", type=session_id_arg, metavar="ID")
    p.add_argument("--yes", action="store_true", help="really delete (without it the command refuses)")


def cmd_list(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    rows = store.list_sessions(search=args.search, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    if not rows:
        print("no sessions" + (" match" if args.search or args.status else ""))
        return 0
    print(f"{'id':<14}{'status':<10}{'updated':<18}{'events':>7}  {'parent@event':<20}title")
    for row in rows:
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.updated))
        parent = f"{row.parent_session}@{row.fork_seq}" if row.parent_session else "-"
        print(f"{row.id:<14}{row.status:<10}{updated:<18}{row.n_events:>7}  {parent:<20}{row.title}")
    return 0


def session_report(state: SessionState) -> dict:
    """`collabvr.report.summary` plus what `sessions show` adds: title, lineage, size, per-step account."""
    started = state.started
    report = summary(state)
    report.update({
        "title": started.title,
        "created": started.at,
        "parent_session": started.fork.parent_session if started.fork else None,
        "fork_seq": started.fork.at_seq if started.fork else None,
        "n_events": state.seq,
        "next": next_command(state).describe(),
        "step_lines": step_lines(state),
    })
    return report


def cmd_show(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    state = fold(store.read(args.session_id))
    report = session_report(state)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    banner = "[SIMULATED] " if report["simulated"] and not report["title"].startswith("[") else ""
    print(f"{banner}{report['title']}")
    print(f"session  {report['session_id']} ({report['status']}, {report['n_events']} events)")
    if report["parent_session"]:
        print(f"fork of  {report['parent_session']} at event {report['fork_seq']}")
    print(f"task     {report['task']['prompt']}")
    print(f"backends VLM {report['backends']['vlm']['name']}, VGM {report['backends']['vgm']['name']}")
    print()
    print("\n".join(report["step_lines"]) or "(no steps yet)")
    print()
    verdict = {True: "SOLVED", False: "NOT SOLVED", None: "not judged"}[report["success"]]
    print(f"{verdict}: {report['steps']} steps, {report['attempts']} attempts, "
          f"{report['vgm_seconds']:.2f} s of video generated, {report['vlm_calls']} VLM calls")
    if report["failure"]:
        print(f"last failure: {report['failure']}")
    print(f"next: {report['next']}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    store, artifacts = open_store(args, must_exist=True)
    state = fold(store.read(args.session_id))
    started = state.started
    try:
        vlm, vgm = registry.backends_for(started.vlm, started.vgm)
    except registry.BackendUnavailable as exc:
        raise UsageError(f"cannot resume session {args.session_id}: {exc}") from None
    engine = Engine(store, artifacts, vlm, vgm, args.session_id, judge=registry.judge_for(started.task))
    extra = {"database": str(store.path)}
    if state.finished is not None:
        if args.json:
            print(json.dumps({**session_result(engine, args.out), **extra, "resumed": False}, indent=2))
        else:
            print(f"session {args.session_id} has already finished ({state.finished.reason}); nothing to resume")
        return EXIT_FINISHED
    if args.clear_breakpoints or args.breakpoint is not None:
        engine.set_breakpoints(args.breakpoint or [], actor=CLI_ACTOR)
    progress = None
    if not args.json:
        print(f"resuming session {args.session_id}: {started.title} (at event {state.seq}, "
              f"next: {engine.next_command().describe()})", flush=True)
        progress = progress_printer()
    begun = time.perf_counter()
    engine.run(progress=progress)
    return report_run(engine, args.out, args.json, begun, {**extra, "resumed": True})


def cmd_fork(args: argparse.Namespace) -> int:
    store, _ = open_store(args, must_exist=True)
    new_id = Engine.fork(store, args.session_id, args.at)
    if args.json:
        print(json.dumps({"session_id": new_id, "parent_session": args.session_id, "fork_seq": args.at}))
    else:
        print(f"forked {args.session_id} at event {args.at}: new session {new_id}")
    return 0


def _export_module():
    # storage.export is imported only when a command needs it.
    from storage import export

    return export


def cmd_export(args: argparse.Namespace) -> int:
    if args.all == bool(args.session_ids):
        raise UsageError("name the sessions to export, or give --all (not both)")
    store, artifacts = open_store(args, must_exist=True)
    for session_id in args.session_ids:
        store.get_session(session_id)  # an unknown id fails here, before anything is written
    if args.out.suffix not in (".jsonl", ".zip"):
        raise UsageError(f"--out must end in .jsonl or .zip, not {args.out.name!r}")
    export = _export_module()
    try:
        if args.all:
            result = export.export_all(store, artifacts, args.out)
        else:
            result = export.export_sessions(store, artifacts, args.session_ids, args.out)
    except (ValueError, FileNotFoundError) as exc:  # e.g. an artifact file missing from the folder
        raise UsageError(f"cannot export: {exc}") from None
    data = {"jsonl": str(result.jsonl_path), "zip": str(result.zip_path), "sessions": result.sessions,
            "attempts": result.attempts}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"exported {count(result.sessions, 'session')}, {count(result.attempts, 'attempt')}")
        print(f"events (JSONL): {data['jsonl']}\narchive (zip):  {data['zip']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if not args.archive.is_file():
        raise UsageError(f"no archive at {args.archive}")
    store, artifacts = open_store(args)
    export = _export_module()
    try:
        imported = export.import_archive(store, artifacts, args.archive)
    except export.ArchiveError as exc:
        raise UsageError(f"cannot import {args.archive}: {exc}") from None
    if args.json:
        print(json.dumps({"imported": imported}))
    else:
        print(f"imported {count(len(imported), 'session')} into {store.path}")
        for session_id in imported:
            print(f"  {session_id}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    store, artifacts = open_store(args, must_exist=True)
    row = store.get_session(args.session_id)
    if not args.yes:
        raise UsageError(f"not deleting session {row.id} ({row.title}, {row.n_events} events) without --yes")
    orphans = delete_session_and_files(store, artifacts, row.id)
    print(f"deleted session {row.id}; removed {count(len(orphans), 'artifact file')} no other session uses")
    return 0

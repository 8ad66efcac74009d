"""What every command of the command line shares: exit statuses, the store flags, the task flags, and how a
session's result is reported.

Exit statuses: 0 done, 1 a run stopped on a backend failure (the session waits for a person), 2 a usage
error (unknown session, missing database, bad archive, refused delete, backend that cannot run here),
3 paused at a breakpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.config import LoopConfig
from collabvr.engine import DecisionError, Engine, ProgressFn
from collabvr.events import event_to_json
from collabvr.loop import Kind
from collabvr.report import step_lines, summary
from collabvr.store import InvalidSessionId, SessionNotFound, StoreError, check_session_id
from storage.data_dir import ARTIFACTS_NAME, DATABASE_NAME, open_store_at, resolve_data_dir
from storage.sqlite_store import SQLiteEventStore


EXIT_FINISHED, EXIT_BACKEND_FAILED, EXIT_USAGE, EXIT_PAUSED = 0, 1, 2, 3

Handler = Callable[[argparse.Namespace], int]
SubParsers = argparse._SubParsersAction  # what add_subparsers() returns; each command group adds itself to it


class UsageError(Exception):
    """A command cannot do what it was asked; the message says why (exit status 2)."""


def sim():
    """The simulated world, imported when a command needs it so that `--help` stays fast."""
    from collabvr import sim as world

    return world


def guarded(handler: Handler) -> Handler:
    """Turn the errors a person can cause into a one-line message and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (UsageError, SessionNotFound, InvalidSessionId, DecisionError, registry.BackendUnavailable,
                StoreError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def session_id_arg(text: str) -> str:
    """The argparse type of a session id: an invalid one is refused before the command runs (exit 2)."""
    try:
        return check_session_id(text)
    except InvalidSessionId as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ----- the store ------------------------------------------------------------------------------------------

def add_store_args(p: argparse.ArgumentParser, verb: str = "use") -> None:
    """`--db PATH` / `--data-dir DIR`: which SQLite store a command uses (see storage/data_dir.py)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH",
                       help=f"{verb} this SQLite database; artifacts go to artifacts/ beside it")
    where.add_argument("--data-dir", type=Path, metavar="DIR",
                       help=f"{verb} the data folder DIR (DIR/collabvr.sqlite and DIR/artifacts); "
                            "default: $COLLABVR_DATA_DIR, else ./data")


def store_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """The database file and the artifact folder that `--db` / `--data-dir` (or the environment) name."""
    if getattr(args, "db", None) is not None:
        return Path(args.db), Path(args.db).parent / ARTIFACTS_NAME
    root = resolve_data_dir(getattr(args, "data_dir", None))
    return root / DATABASE_NAME, root / ARTIFACTS_NAME


def open_store(args: argparse.Namespace, must_exist: bool = False) -> tuple[SQLiteEventStore, ArtifactFolder]:
    """Open (creating if needed, unless `must_exist`) the SQLite store and its artifact folder; stale
    temporary files a killed process left there are removed (storage.data_dir.open_store_at)."""
    database, artifact_root = store_paths(args)
    if must_exist and not database.is_file():
        raise UsageError(f"no database at {database} (record a session first: "
                         f"python -m collabvr run ... --db {database})")
    return open_store_at(database, artifact_root)


# ----- the task and the loop --------------------------------------------------------------------------------

def add_task_args(p: argparse.ArgumentParser, single: bool = True) -> None:
    if single:
        p.add_argument("--family", required=True, help="maze, blocks or shapes")
        p.add_argument("--seed", type=int, default=0, help="task seed; also seeds the session (default 0)")
    else:
        p.add_argument("--families", default="maze,blocks,shapes", help="comma-separated families")
    p.add_argument("--difficulty", default="easy", choices=("easy", "hard"))
    p.add_argument("--n-max", type=int, default=3, help="planning steps at most (default 3)")
    p.add_argument("--m", type=int, default=3, help="attempts per step before routing (default 3)")
    p.add_argument("--first-seconds", type=float, default=6.0, help="clip length of step 1 (default 6)")
    p.add_argument("--later-seconds", type=float, default=3.0, help="clip length of later clips (default 3)")
    p.add_argument("--no-router", action="store_true", help="propagate the best attempt instead of routing")
    p.add_argument("--max-vgm-seconds", type=float, default=None, help="cap on generated seconds")
    p.add_argument("--vgm-profile", default="paper",
                   help="simulated VGM profile: paper (default, calibrated to the paper's run statistics), "
                        "legacy (the simulator before calibration), hard, perfect")
    p.add_argument("--verifier-profile", default=None,
                   help="simulated verifier error profile: gemini-2.5-pro-paper, gemini-2.5-pro, qwen3.5-27b, "
                        "qwen3.5-9b, perfect (default: the one the VGM profile was calibrated with)")


def pick_verifier(args: argparse.Namespace) -> None:
    """Without --verifier-profile, the verifier the VGM profile was calibrated with (raises ValueError for
    an unknown VGM profile)."""
    if args.verifier_profile is None:
        args.verifier_profile = sim().verifier_for(args.vgm_profile)


def loop_config(args: argparse.Namespace, breakpoints: Sequence[str] = ()) -> LoopConfig:
    return LoopConfig(n_max=args.n_max, m=args.m, first_step_seconds=args.first_seconds,
                      later_seconds=args.later_seconds, router=not args.no_router,
                      max_vgm_seconds=args.max_vgm_seconds, breakpoints=tuple(breakpoints))


# ----- reporting a session -------------------------------------------------------------------------------

def session_result(engine: Engine, out: Path | None) -> dict:
    """The JSON summary of a session; with `out`, also writes out/events.jsonl and out/final.mp4.
    Without `out`, "final_video" is the video's file in the artifact folder and "events" is None."""
    state = engine.state
    result = summary(state)
    result["events"] = None
    result["final_video"] = None
    video = state.finished.final_video if state.finished is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        events_path = out / "events.jsonl"
        with open(events_path, "w") as f:
            for event in engine.store.read(engine.session_id):
                f.write(event_to_json(event) + "\n")
        result["events"] = str(events_path)
        if video is not None:
            final = out / "final.mp4"
            shutil.copyfile(engine.artifacts.path(video), final)
            result["final_video"] = str(final)
    elif video is not None:
        result["final_video"] = str(engine.artifacts.path(video))
    result["next"] = engine.next_command().describe()
    result["stopped_because"] = engine.last_stop or None
    return result


def progress_printer() -> ProgressFn:
    """Prints each command once, as `  .. plan step 1`, when it starts."""
    last = [""]

    def progress(what: str, done: int, total: int) -> None:
        if what != last[0]:
            last[0] = what
            print(f"  .. {what}", flush=True)

    return progress


def report_run(engine: Engine, out: Path | None, as_json: bool, started: float,
               extra: dict | None = None) -> int:
    """Print what a run (or a resumed run) did and return the exit status: 0 finished, 1 a backend failed
    and the session waits for a person, 3 paused at a breakpoint."""
    result = session_result(engine, out)
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    result.update(extra or {})
    state = engine.state
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print("\n".join(step_lines(state)))
        print()
        verdict = {True: "SOLVED", False: "NOT SOLVED", None: "not judged"}[result["success"]]
        print(f"{verdict}: {result['steps']} steps, {result['attempts']} attempts, "
              f"{result['vgm_seconds']:.2f} s of video generated, {result['vlm_calls']} VLM calls")
        print(f"final video: {result['final_video']}\nevents:      {result['events'] or '(in the database)'}")
        if "database" in result:
            print(f"session:     {result['session_id']} in {result['database']}")
    return exit_status(engine)


def exit_status(engine: Engine) -> int:
    state = engine.state
    if state.finished is not None:
        return EXIT_FINISHED
    if state.failures:
        print(f"error: the run stopped: {state.failures[-1].role} failed: {state.failures[-1].message}",
              file=sys.stderr)
        return EXIT_BACKEND_FAILED
    command = engine.next_command()
    if command.kind is Kind.WAIT:
        print(f"paused: {command.reason}", file=sys.stderr)
        return EXIT_PAUSED
    # Not finished, not held, no failure: the run stopped for its own reason (its command limit, a stop).
    print(f"paused: {engine.last_stop or 'the run stopped before the session finished'}; "
          f"next: {command.describe()}", file=sys.stderr)
    return EXIT_PAUSED


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"

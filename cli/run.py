"""`python -m collabvr run`: one simulated task through the CollabVR loop, in memory into `--out`, or
recorded event by event into a SQLite store (`--db` / `--data-dir`) to be resumed and forked later."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli.common import (
    EXIT_USAGE, SubParsers, add_store_args, add_task_args, loop_config, open_store, pick_verifier, progress_printer,
    report_run, session_result, sim,
)
from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.config import BREAKPOINTS, LoopConfig
from collabvr.engine import Engine
from collabvr.sim_session import NewSimSession, start_sim_session
from collabvr.store import MemoryEventStore


def register(sub: SubParsers) -> None:
    p = sub.add_parser("run", help="run the CollabVR loop on one simulated task",
                       description="Run the CollabVR loop on one simulated task. With --db or --data-dir the "
                                   "session is recorded, event by event, into a SQLite store and can be listed, "
                                   "resumed and forked with `python -m collabvr sessions`.")
    add_task_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help="folder for final.mp4, events.jsonl (and artifacts/ without a store); "
                        "required unless --db or --data-dir is given")
    add_store_args(p, "record the session into")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of progress and a summary")
    p.add_argument("--breakpoint", action="append", choices=BREAKPOINTS, default=[],
                   help="stop the run at this breakpoint (repeatable); the CLI then exits with status 3")
    p.add_argument("--sim-latency", type=float, default=0.0, metavar="SECONDS",
                   help="make every simulated model call take this long (the VGM reports progress); "
                        "for demos and crash tests (default 0)")
    p.set_defaults(handler=cmd_run)


def run_one(family: str, difficulty: str, seed: int, config: LoopConfig, out: Path, vgm_profile: str,
            verifier_profile: str, progress=None) -> tuple[Engine, dict]:
    """Run one simulated session in memory into `out`; returns the engine and the JSON summary."""
    spec = NewSimSession(family=family, difficulty=difficulty, seed=seed, vlm_profile=verifier_profile,
                         vgm_profile=vgm_profile, config=config)
    engine = start_sim_session(MemoryEventStore(), ArtifactFolder(out / "artifacts"), spec)
    engine.run(progress=progress)
    return engine, session_result(engine, out)


def cmd_run(args: argparse.Namespace) -> int:
    world = sim()
    durable = args.db is not None or args.data_dir is not None
    if args.out is None and not durable:
        print("error: run needs --out DIR, or --db PATH / --data-dir DIR to record the session in", file=sys.stderr)
        return EXIT_USAGE
    try:
        pick_verifier(args)
        config = loop_config(args, args.breakpoint)
        world.make_task(args.family, args.difficulty, args.seed)
        registry.build_vlm(registry.sim_vlm_spec(args.family, args.verifier_profile, latency_s=args.sim_latency))
        registry.build_vgm(registry.sim_vgm_spec(args.family, args.vgm_profile, latency_s=args.sim_latency))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    extra: dict = {}
    if durable:
        store, artifacts = open_store(args)
        extra["database"] = str(store.path)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        store, artifacts = MemoryEventStore(), ArtifactFolder(args.out / "artifacts")
    spec = NewSimSession(family=args.family, difficulty=args.difficulty, seed=args.seed,
                         vlm_profile=args.verifier_profile, vgm_profile=args.vgm_profile, latency_s=args.sim_latency,
                         config=config)
    engine = start_sim_session(store, artifacts, spec)
    progress = None
    if not args.json:
        print(f"[{world.SIMULATED_LABEL}] {args.family}/{args.difficulty}/seed {args.seed} "
              f"(simulated VLM verifier profile {args.verifier_profile}, simulated VGM profile {args.vgm_profile})")
        if durable:
            print(f"session {engine.session_id}, recorded in {extra['database']}", flush=True)
        progress = progress_printer()
    started = time.perf_counter()
    engine.run(progress=progress)
    return report_run(engine, args.out, args.json, started, extra)

"""Command line: `python -m collabvr tasks | run | stats` on the embedded simulated world.

Every result that comes from the simulated backends says so ("simulated": true, and a SIMULATED banner).

This module never imports the durable store (storage/ uses sqlite). The composition root,
`collabvr/__main__.py`, passes it in through two seams of `main`:

- `store_factory(args) -> (EventStore, ArtifactFolder)`: when given, `run` accepts `--db` / `--data-dir`
  and records the session into the store it opens;
- `extra_commands`: callables `register(subparsers, store_factory)` that add more subcommands (the
  `sessions` commands of storage/cli.py); each subparser sets `handler` (args -> exit status).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from collabvr.backends import registry
from collabvr.artifacts import ArtifactFolder
from collabvr.config import BREAKPOINTS, LoopConfig
from collabvr.engine import Engine, ProgressFn
from collabvr.events import TaskSpec, event_to_json
from collabvr.loop import Kind
from collabvr.report import BranchCounts, step_lines, summary
from collabvr.store import EventStore, MemoryEventStore


StoreFactory = Callable[[argparse.Namespace], "tuple[EventStore, ArtifactFolder]"]
Handler = Callable[[argparse.Namespace], int]
CommandGroup = Callable[["argparse._SubParsersAction", StoreFactory], None]

# Exit statuses shared by every command that runs a session.
EXIT_FINISHED, EXIT_BACKEND_FAILED, EXIT_USAGE, EXIT_PAUSED = 0, 1, 2, 3


def _sim():
    # Imported lazily so that `--help` stays fast.
    from collabvr import sim
    return sim


def build_parser(store_factory: StoreFactory | None = None,
                 extra_commands: Sequence[CommandGroup] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collabvr",
                                     description="CollabVR Studio: collaborative video reasoning, from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tasks = sub.add_parser("tasks", help="list the simulated task families and difficulties",
                           description="List the simulated task families and difficulties.")
    tasks.add_argument("--json", action="store_true", help="print JSON instead of text")
    tasks.set_defaults(handler=cmd_tasks)

    run = sub.add_parser("run", help="run the CollabVR loop on one simulated task",
                         description="Run the CollabVR loop on one simulated task."
                                     + (" With --db or --data-dir the session is recorded, event by event, into "
                                        "a SQLite store and can be listed, resumed and forked with "
                                        "`python -m collabvr sessions`." if store_factory else ""))
    _add_task_args(run)
    if store_factory is None:
        run.add_argument("--out", type=Path, required=True, help="folder for final.mp4, events.jsonl and artifacts/")
    else:
        run.add_argument("--out", type=Path, default=None,
                         help="folder for final.mp4, events.jsonl (and artifacts/ without a store); "
                              "required unless --db or --data-dir is given")
        add_store_args(run, "record the session into")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of progress and a summary")
    run.add_argument("--breakpoint", action="append", choices=BREAKPOINTS, default=[],
                     help="stop the run at this breakpoint (repeatable); the CLI then exits with status 3")
    run.add_argument("--sim-latency", type=float, default=0.0, metavar="SECONDS",
                     help="make every simulated model call take this long (the VGM reports progress); "
                          "for demos and crash tests (default 0)")
    run.set_defaults(handler=lambda args: cmd_run(args, store_factory))

    stats = sub.add_parser("stats", help="run many seeds and count how often each branch of the method fired",
                           description="Run many seeds and count how often each branch of the method fired.")
    _add_task_args(stats, single=False)
    stats.add_argument("--seeds", default="0-49", help="seed range, e.g. 0-49 or 3,5,8 (default 0-49)")
    stats.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(handler=cmd_stats)

    for register in extra_commands:
        register(sub, store_factory)
    return parser


def add_store_args(p: argparse.ArgumentParser, verb: str = "use") -> None:
    """`--db PATH` / `--data-dir DIR`: which SQLite store a command uses (see storage/data_dir.py)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, metavar="PATH",
                       help=f"{verb} this SQLite database; artifacts go to artifacts/ beside it")
    where.add_argument("--data-dir", type=Path, metavar="DIR",
                       help=f"{verb} the data folder DIR (DIR/collabvr.sqlite and DIR/artifacts); "
                            "default: $COLLABVR_DATA_DIR, else ./data")


def _add_task_args(p: argparse.ArgumentParser, single: bool = True) -> None:
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
    p.add_argument("--vgm-profile", default="default", help="simulated VGM profile: default, hard, perfect")
    p.add_argument("--verifier-profile", default="gemini-2.5-pro",
                   help="simulated verifier error profile: gemini-2.5-pro, qwen3.5-27b, qwen3.5-9b, perfect")


def _config(args: argparse.Namespace, breakpoints: Sequence[str] = ()) -> LoopConfig:
    return LoopConfig(n_max=args.n_max, m=args.m, first_step_seconds=args.first_seconds,
                      later_seconds=args.later_seconds, router=not args.no_router,
                      max_vgm_seconds=args.max_vgm_seconds, breakpoints=tuple(breakpoints))


def cmd_tasks(args: argparse.Namespace) -> int:
    sim = _sim()
    rows = []
    for name, family in sim.FAMILIES.items():
        rows.append({"family": name, "description": family.description, "difficulties": list(sim.DIFFICULTIES),
                     "example_prompt": family.generate(0, "hard").prompt, "simulated": True})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"[{sim.SIMULATED_LABEL}] task families of the embedded simulated world:")
    for row in rows:
        print(f"  {row['family']:<7} ({', '.join(row['difficulties'])}): {row['description']}")
        print(f"          e.g. {row['example_prompt']}")
    return 0


def start_sim_session(store: EventStore, artifacts: ArtifactFolder, family: str, difficulty: str, seed: int,
                      config: LoopConfig, vgm_profile: str, verifier_profile: str,
                      latency_s: float = 0.0) -> Engine:
    """Record a new simulated session in `store` (its backend specs included, so it can be resumed in
    another process) and return its engine, ready to run."""
    sim = _sim()
    task = sim.make_task(family, difficulty, seed)
    vlm_spec = registry.sim_vlm_spec(family, verifier_profile, latency_s=latency_s)
    vgm_spec = registry.sim_vgm_spec(family, vgm_profile, latency_s=latency_s)
    vlm, vgm = registry.build_vlm(vlm_spec), registry.build_vgm(vgm_spec)
    spec = TaskSpec(prompt=task.prompt, source="sim", family=family, difficulty=difficulty, task_seed=seed)
    return Engine.start(
        store, artifacts, vlm, vgm, config=config, seed=seed, judge=registry.judge_for(spec),
        vlm_label=registry.label(vlm, vlm_spec), vgm_label=registry.label(vgm, vgm_spec),
        task=spec,
        input_image=sim.get_family(family).render(task.initial),
        title=f"[{sim.SIMULATED_LABEL}] {family}/{difficulty}/seed {seed}")


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
    return result


def run_one(family: str, difficulty: str, seed: int, config: LoopConfig, out: Path, vgm_profile: str,
            verifier_profile: str, progress=None) -> tuple[Engine, dict]:
    """Run one simulated session in memory into `out`; returns the engine and the JSON summary."""
    engine = start_sim_session(MemoryEventStore(), ArtifactFolder(out / "artifacts"), family, difficulty, seed,
                               config, vgm_profile, verifier_profile)
    engine.run(progress=progress)
    return engine, session_result(engine, out)


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
    return EXIT_BACKEND_FAILED


def cmd_run(args: argparse.Namespace, store_factory: StoreFactory | None = None) -> int:
    sim = _sim()
    durable = store_factory is not None and (args.db is not None or args.data_dir is not None)
    if args.out is None and not durable:
        print("error: run needs --out DIR, or --db PATH / --data-dir DIR to record the session in", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = _config(args, args.breakpoint)
        sim.make_task(args.family, args.difficulty, args.seed)
        registry.build_vlm(registry.sim_vlm_spec(args.family, args.verifier_profile, latency_s=args.sim_latency))
        registry.build_vgm(registry.sim_vgm_spec(args.family, args.vgm_profile, latency_s=args.sim_latency))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    extra: dict = {}
    if durable:
        store, artifacts = store_factory(args)  # type: ignore[misc]
        extra["database"] = str(getattr(store, "path", ""))
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        store, artifacts = MemoryEventStore(), ArtifactFolder(args.out / "artifacts")
    engine = start_sim_session(store, artifacts, args.family, args.difficulty, args.seed, config,
                               args.vgm_profile, args.verifier_profile, latency_s=args.sim_latency)
    progress = None
    if not args.json:
        print(f"[{sim.SIMULATED_LABEL}] {args.family}/{args.difficulty}/seed {args.seed} "
              f"(simulated VLM verifier profile {args.verifier_profile}, simulated VGM profile {args.vgm_profile})")
        if durable:
            print(f"session {engine.session_id}, recorded in {extra['database']}", flush=True)
        progress = progress_printer()
    started = time.perf_counter()
    engine.run(progress=progress)
    return report_run(engine, args.out, args.json, started, extra)


def _seed_list(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError("no seeds given")
    return seeds


def _stats_job(job: tuple) -> dict:
    family, difficulty, seed, config_json, vgm_profile, verifier_profile, out = job
    config = LoopConfig.model_validate_json(config_json)
    engine, result = run_one(family, difficulty, seed, config, Path(out), vgm_profile, verifier_profile)
    shutil.rmtree(out, ignore_errors=True)
    return {"family": family, "seed": seed, "success": result["success"], "vgm_seconds": result["vgm_seconds"],
            "steps": result["steps"], "attempts": result["attempts"], "vlm_calls": result["vlm_calls"],
            "branches": result["branches"]}


def cmd_stats(args: argparse.Namespace) -> int:
    import tempfile

    sim = _sim()
    try:
        families = [f.strip() for f in args.families.split(",") if f.strip()]
        for family in families:
            sim.get_family(family)
        seeds = _seed_list(args.seeds)
        config = _config(args)
        registry.build_vlm(registry.sim_vlm_spec(families[0], args.verifier_profile))
        registry.build_vgm(registry.sim_vgm_spec(families[0], args.vgm_profile))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="collabvr-stats-"))
    jobs = [(f, args.difficulty, s, config.model_dump_json(), args.vgm_profile, args.verifier_profile,
             str(scratch / f"{f}-{s}")) for f in families for s in seeds]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        rows = list(pool.map(_stats_job, jobs))
    shutil.rmtree(scratch, ignore_errors=True)
    report = {"simulated": True, "difficulty": args.difficulty, "seeds": args.seeds,
              "vgm_profile": args.vgm_profile, "verifier_profile": args.verifier_profile,
              "config": config.model_dump(), "families": {}, "elapsed_s": round(time.perf_counter() - started, 1)}
    total = BranchCounts()
    for family in families + ["all"]:
        mine = [r for r in rows if family == "all" or r["family"] == family]
        counts = BranchCounts()
        for r in mine:
            counts.add(BranchCounts(**r["branches"]))
        report["families"][family] = {
            "runs": len(mine),
            "success_rate": round(sum(bool(r["success"]) for r in mine) / len(mine), 3),
            "mean_vgm_seconds": round(sum(r["vgm_seconds"] for r in mine) / len(mine), 2),
            "mean_steps": round(sum(r["steps"] for r in mine) / len(mine), 2),
            "mean_attempts": round(sum(r["attempts"] for r in mine) / len(mine), 2),
            "mean_vlm_calls": round(sum(r["vlm_calls"] for r in mine) / len(mine), 2),
            "branches": counts.as_dict(),
        }
        if family == "all":
            total = counts
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"[{sim.SIMULATED_LABEL}] {len(rows)} runs at {args.difficulty}, seeds {args.seeds}, "
          f"VGM {args.vgm_profile}, verifier {args.verifier_profile} ({report['elapsed_s']} s)")
    header = f"{'family':<8}{'success':>8}{'vgm s':>7}{'steps':>6}{'att.':>6}{'1st ok':>7}{'evolve':>7}" \
             f"{'partial':>8}{'regen':>6}{'split':>6}{'fallbk':>7}{'propag':>7}"
    print(header)
    for family, row in report["families"].items():
        b = row["branches"]
        print(f"{family:<8}{row['success_rate']:>8.0%}{row['mean_vgm_seconds']:>7.1f}{row['mean_steps']:>6.2f}"
              f"{row['mean_attempts']:>6.2f}{b['first_try_accepts']:>7}{b['evolved_prompts']:>7}"
              f"{b['partial_regens']:>8}{b['routes']['regen']:>6}{b['routes']['split']:>6}"
              f"{b['routes']['fallback']:>7}{b['propagated']:>7}")
    missing = [name for name, n in (("first-try accept", total.first_try_accepts), ("evolved prompt", total.evolved_prompts),
                                    ("partial regeneration", total.partial_regens), ("regen", total.routes["regen"]),
                                    ("split", total.routes["split"]), ("fallback", total.routes["fallback"]),
                                    ("best-attempt propagation", total.propagated)) if n == 0]
    if missing:
        print(f"never happened: {', '.join(missing)}")
    return 0


def main(argv: Sequence[str] | None = None, store_factory: StoreFactory | None = None,
         extra_commands: Sequence[CommandGroup] = ()) -> int:
    """Parse `argv` and run the command. `store_factory` and `extra_commands` are the seams through which
    collabvr/__main__.py adds the durable store and the `sessions` commands (see the module docstring)."""
    args = build_parser(store_factory, extra_commands).parse_args(argv)
    return args.handler(args)

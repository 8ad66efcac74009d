"""Command line: `python -m collabvr tasks | run | stats` on the embedded simulated world.

Every result that comes from the simulated backends says so ("simulated": true, and a SIMULATED banner).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

from collabvr import registry
from collabvr.artifacts import ArtifactFolder
from collabvr.config import BREAKPOINTS, LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec, event_to_json
from collabvr.loop import Kind
from collabvr.report import BranchCounts, branch_counts, step_lines, summary
from collabvr.store import MemoryEventStore


def _sim():
    # Imported lazily so that `--help` stays fast.
    from collabvr import sim
    return sim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collabvr",
                                     description="CollabVR Studio: collaborative video reasoning, from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    tasks = sub.add_parser("tasks", help="list the simulated task families and difficulties")
    tasks.add_argument("--json", action="store_true", help="print JSON instead of text")

    run = sub.add_parser("run", help="run the CollabVR loop on one simulated task")
    _add_task_args(run)
    run.add_argument("--out", type=Path, required=True, help="folder for final.mp4, events.jsonl and artifacts/")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of progress and a summary")
    run.add_argument("--breakpoint", action="append", choices=BREAKPOINTS, default=[],
                     help="stop the run at this breakpoint (repeatable); the CLI then exits with status 3")

    stats = sub.add_parser("stats", help="run many seeds and count how often each branch of the method fired")
    _add_task_args(stats, single=False)
    stats.add_argument("--seeds", default="0-49", help="seed range, e.g. 0-49 or 3,5,8 (default 0-49)")
    stats.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


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


def run_one(family: str, difficulty: str, seed: int, config: LoopConfig, out: Path, vgm_profile: str,
            verifier_profile: str, progress=None) -> tuple[Engine, dict]:
    """Run one simulated session into `out`; returns the engine and the JSON summary."""
    sim = _sim()
    task = sim.make_task(family, difficulty, seed)
    vlm_spec, vgm_spec = registry.sim_vlm_spec(family, verifier_profile), registry.sim_vgm_spec(family, vgm_profile)
    vlm, vgm = registry.build_vlm(vlm_spec), registry.build_vgm(vgm_spec)
    folder = ArtifactFolder(out / "artifacts")
    spec = TaskSpec(prompt=task.prompt, source="sim", family=family, difficulty=difficulty, task_seed=seed)
    engine = Engine.start(
        MemoryEventStore(), folder, vlm, vgm, config=config, seed=seed, judge=registry.judge_for(spec),
        vlm_label=registry.label(vlm, vlm_spec), vgm_label=registry.label(vgm, vgm_spec),
        task=spec,
        input_image=sim.get_family(family).render(task.initial),
        title=f"[{sim.SIMULATED_LABEL}] {family}/{difficulty}/seed {seed}")
    state = engine.run(progress=progress)
    events_path = out / "events.jsonl"
    with open(events_path, "w") as f:
        for event in engine.store.read(engine.session_id):
            f.write(event_to_json(event) + "\n")
    result = summary(state)
    result["events"] = str(events_path)
    result["final_video"] = None
    if state.finished is not None and state.finished.final_video is not None:
        final = out / "final.mp4"
        shutil.copyfile(folder.path(state.finished.final_video), final)
        result["final_video"] = str(final)
    command = engine.next_command()
    result["next"] = command.describe()
    return engine, result


def cmd_run(args: argparse.Namespace) -> int:
    sim = _sim()
    try:
        config = _config(args, args.breakpoint)
        registry.build_vlm(registry.sim_vlm_spec(args.family, args.verifier_profile))
        registry.build_vgm(registry.sim_vgm_spec(args.family, args.vgm_profile))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    progress = None
    if not args.json:
        print(f"[{sim.SIMULATED_LABEL}] {args.family}/{args.difficulty}/seed {args.seed} "
              f"(simulated VLM verifier profile {args.verifier_profile}, simulated VGM profile {args.vgm_profile})")
        last = [""]

        def progress(what: str, done: int, total: int) -> None:
            if what != last[0]:
                last[0] = what
                print(f"  .. {what}", flush=True)

    started = time.perf_counter()
    engine, result = run_one(args.family, args.difficulty, args.seed, config, args.out, args.vgm_profile,
                             args.verifier_profile, progress)
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    state = engine.state
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print()
        print("\n".join(step_lines(state)))
        print()
        verdict = {True: "SOLVED", False: "NOT SOLVED", None: "not judged"}[result["success"]]
        print(f"{verdict}: {result['steps']} steps, {result['attempts']} attempts, "
              f"{result['vgm_seconds']:.2f} s of video generated, {result['vlm_calls']} VLM calls")
        print(f"final video: {result['final_video']}\nevents:      {result['events']}")
    if state.finished is not None:
        return 0
    if state.failures:
        print(f"error: the run stopped: {state.failures[-1].role} failed: {state.failures[-1].message}",
              file=sys.stderr)
        return 1
    if engine.next_command().kind is Kind.WAIT:
        print(f"paused: {engine.next_command().reason}", file=sys.stderr)
        return 3
    return 1


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"tasks": cmd_tasks, "run": cmd_run, "stats": cmd_stats}
    return handlers[args.command](args)

"""`python -m collabvr stats`: many seeds of the simulated world, and how often each branch of the method
fired (first-try accepts, evolved prompts, partial regenerations, routes, propagations)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cli.common import EXIT_USAGE, SubParsers, add_task_args, loop_config, pick_verifier, sim
from cli.run import run_one
from collabvr import registry
from collabvr.config import LoopConfig
from collabvr.report import BranchCounts


def register(sub: SubParsers) -> None:
    p = sub.add_parser("stats", help="run many seeds and count how often each branch of the method fired",
                       description="Run many seeds and count how often each branch of the method fired.")
    add_task_args(p, single=False)
    p.add_argument("--seeds", default="0-49", help="seed range, e.g. 0-49 or 3,5,8 (default 0-49)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_stats)


def seed_list(text: str) -> list[int]:
    """The seeds of "0-49", "3,5,8" or a mix of both."""
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
    return {"family": family, "seed": seed, "finished": result["finished"], "success": result["success"],
            "score": result["score"], "vgm_seconds": result["vgm_seconds"],
            "steps": result["steps"], "attempts": result["attempts"], "vlm_calls": result["vlm_calls"],
            "branches": result["branches"]}


def cmd_stats(args: argparse.Namespace) -> int:
    world = sim()
    try:
        pick_verifier(args)
        families = [f.strip() for f in args.families.split(",") if f.strip()]
        for family in families:
            world.get_family(family)
        seeds = seed_list(args.seeds)
        config = loop_config(args)
        registry.build_vlm(registry.sim_vlm_spec(families[0], args.verifier_profile))
        registry.build_vgm(registry.sim_vgm_spec(families[0], args.vgm_profile))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
            "finished": sum(bool(r["finished"]) for r in mine),
            "success_rate": round(sum(bool(r["success"]) for r in mine) / len(mine), 3),
            "mean_score": round(sum(r["score"] or 0.0 for r in mine) / len(mine), 3),
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
    print(f"[{world.SIMULATED_LABEL}] {len(rows)} runs at {args.difficulty}, seeds {args.seeds}, "
          f"VGM {args.vgm_profile}, verifier {args.verifier_profile} ({report['elapsed_s']} s)")
    header = f"{'family':<8}{'ended':>6}{'success':>8}{'score':>6}{'vgm s':>7}{'vlm':>6}{'steps':>6}{'att.':>6}{'1st ok':>7}" \
             f"{'evolve':>7}{'partial':>8}{'regen':>6}{'split':>6}{'fallbk':>7}{'propag':>7}"
    print(header)
    for family, row in report["families"].items():
        b = row["branches"]
        ended = f"{row['finished']}/{row['runs']}"
        print(f"{family:<8}{ended:>6}{row['success_rate']:>8.0%}{row['mean_score']:>6.2f}{row['mean_vgm_seconds']:>7.1f}"
              f"{row['mean_vlm_calls']:>6.2f}{row['mean_steps']:>6.2f}"
              f"{row['mean_attempts']:>6.2f}{b['first_try_accepts']:>7}{b['evolved_prompts']:>7}"
              f"{b['partial_regens']:>8}{b['routes']['regen']:>6}{b['routes']['split']:>6}"
              f"{b['routes']['fallback']:>7}{b['propagated']:>7}")
    missing = [name for name, n in (("first-try accept", total.first_try_accepts), ("evolved prompt", total.evolved_prompts),
                                    ("partial regeneration", total.partial_regens), ("regen", total.routes["regen"]),
                                    ("split", total.routes["split"]), ("fallback", total.routes["fallback"]),
                                    ("best-attempt propagation", total.propagated)) if n == 0]
    if missing:
        print(f"never happened: {', '.join(missing)}")
    unfinished = [f"{r['family']}/{r['seed']}" for r in rows if not r["finished"]]
    if unfinished:
        print(f"did not end with SessionFinished (waiting for a person): {', '.join(unfinished)}")
    print("ended: runs that ended with SessionFinished; score: mean graded score in [0, 1]; vgm s: mean "
          "nominal seconds generated per run; vlm: mean VLM calls per run")
    return 0

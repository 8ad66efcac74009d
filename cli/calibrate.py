"""`python -m collabvr calibrate`: the simulated world against the paper's run statistics (appendix C).

A thin wrapper: the suite, the statistics, the targets and the fit live in collabvr/sim/calibration.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from cli.common import EXIT_USAGE, SubParsers, sim
from cli.stats import seed_list


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "calibrate", help="compare the simulated world with the paper's run statistics (appendix C)",
        description="Run the hard suite (every family, each seed) through the real loop and print each "
                    "statistic the paper measured of real runs, the simulated world's value and the gap. "
                    "With --fit, first search the behaviour knobs on those seeds and print the values found.")
    p.add_argument("--profile", default="paper", help="simulated VGM profile (default paper)")
    p.add_argument("--verifier-profile", default=None,
                   help="simulated verifier profile (default: the one the VGM profile was calibrated with)")
    p.add_argument("--seeds", default="0-199", help="training seeds, e.g. 0-199 (default)")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--fit", action="store_true",
                   help="search the knobs first (coordinate search; slow: every try runs the whole suite)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of the search with --fit (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from collabvr.sim import calibration

    try:
        seeds = seed_list(args.seeds)
        world = calibration.world(args.profile, args.verifier_profile)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started = time.perf_counter()
    if args.fit:
        world, stats = calibration.fit(world, seeds, rounds=args.rounds, workers=args.workers,
                                       log=lambda line: print(line, file=sys.stderr, flush=True))
    else:
        stats = calibration.statistics(calibration.run_suite(world, seeds, workers=args.workers))
    elapsed = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"simulated": True, "profile": args.profile, "seeds": args.seeds, "elapsed_s": elapsed,
                          "vgm": dataclasses.asdict(world.vgm), "verifier": dataclasses.asdict(world.verifier),
                          "targets": {t.key: t.value for t in calibration.TARGETS}, "statistics": stats}, indent=2))
        return 0
    print(f"[{sim().SIMULATED_LABEL}] calibration of VGM profile {world.vgm.name} with verifier "
          f"{world.verifier.name}: hard suite, {len(calibration.FAMILIES)} families x seeds {args.seeds} "
          f"({elapsed} s)")
    print("\n".join(calibration.report_lines(stats)))
    if args.fit:
        print("knobs found: " + ", ".join(f"{k.owner}.{k.name}={calibration.knob_value(world, k):g}"
                                          for k in calibration.KNOBS))
    return 0

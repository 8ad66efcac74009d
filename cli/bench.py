"""`python -m collabvr bench`: methods against each other on a suite, each sample recorded as a session, with
the paper's cost axis; `python -m collabvr bench overhead`: the loop's own time per attempt against the
mp4 encode alone."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from cli.common import EXIT_FINISHED, SubParsers, UsageError, add_store_args, guarded, store_paths
from collabvr import registry
from collabvr.config import LoopConfig
from collabvr.eval.methods import DEFAULT_METHODS, parse_methods
from collabvr.eval.report import bench_document, write_reports
from collabvr.eval.runner import BenchBackends, BenchError, SampleResult, jobs_for, ray_available, run_bench
from collabvr.eval.scoring import comparisons, paired_table, summaries, summary_table
from collabvr.eval.suites import SIM_DIFFICULTIES, SIM_FAMILIES, folder_suite, parse_seeds, sim_suite
from storage.data_dir import ARTIFACTS_NAME, DATABASE_NAME, open_store_at

BAR_WIDTH = 30


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "bench", help="compare methods on a suite (score against generated seconds); `bench overhead` too",
        description="Run methods (baselines, CollabVR, ablations) on a suite with the same backends and cost "
                    "counting. Every sample is a session in the store (open it in the app); samples already done "
                    "are skipped on a re-run. `bench overhead` measures the loop's own time per attempt instead.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="methods: single, pass@K, videotpo, collabvr, plan-only, verify-only, fixed-n, no-router, or all;\n"
               "a loop method takes budget overrides, e.g. verify-only:m=5 or collabvr:n=4:m=2")
    p.add_argument("what", nargs="?", choices=("run", "overhead"), default="run",
                   help="run (default): the benchmark; overhead: the loop's own time per attempt")
    p.add_argument("--methods", default="single,pass@4,videotpo,collabvr",
                   help=f"comma-separated methods, or all ({','.join(DEFAULT_METHODS)}); "
                        "default single,pass@4,videotpo,collabvr")
    p.add_argument("--suite", default="sim",
                   help="sim (the simulated families at both difficulties), or a folder in the VBVR-Bench layout "
                        "(first_frame.png, prompt.txt, optional final_frame.png and ground_truth.mp4 per task)")
    p.add_argument("--seeds", default="0-19", help="simulated suite: seeds, e.g. 0-19 or 0,3,5-7 (default 0-19)")
    p.add_argument("--families", default=",".join(SIM_FAMILIES), help="simulated suite: families (default all)")
    p.add_argument("--difficulties", default=",".join(SIM_DIFFICULTIES),
                   help="simulated suite: difficulties (default easy,hard)")
    p.add_argument("--vgm-profile", default="paper", help="simulated VGM profile (default paper)")
    p.add_argument("--verifier-profile", default=None,
                   help="simulated verifier profile (default: the one the VGM profile was calibrated with)")
    p.add_argument("--vlm", default=None, metavar="KEY", help="a real VLM by its key in `python -m collabvr backends`")
    p.add_argument("--vgm", default=None, metavar="KEY", help="a real VGM by its key (folder suites)")
    p.add_argument("--judge", default=None, metavar="KEY",
                   help="the rubric judge of folder suites (a VLM key; default the --vlm)")
    p.add_argument("--first-seconds", type=float, default=6.0, help="clip length of step 1 and of baselines (6)")
    p.add_argument("--later-seconds", type=float, default=3.0, help="clip length of later clips (3)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for samples.csv, summary.csv, paired.csv, results.json, figure.html; without "
                        "--db/--data-dir the sessions are recorded there too (a data folder the app opens)")
    add_store_args(p, "record the sessions into")
    p.add_argument("--name", default=None, help="the run's name in the store (default: from what it runs)")
    p.add_argument("--workers", type=int, default=1, help="samples run in this many processes or Ray tasks (1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (this machine: in process, or --workers processes) or ray")
    p.add_argument("--ray-address", default=None,
                   help="with --engine ray: a cluster's address (default: start a local Ray)")
    p.add_argument("--json", action="store_true", help="print the results document as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=guarded(cmd_bench))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "overhead":
        return cmd_overhead(args)
    if args.out is None:
        raise UsageError("bench needs --out DIR (for its tables, figure and, by default, its sessions)")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.engine == "ray" and ray_available():
        raise UsageError(ray_available())
    try:
        methods = parse_methods(args.methods)
        backends = _backends(args)
        base = LoopConfig(first_step_seconds=args.first_seconds, later_seconds=args.later_seconds)
        if args.suite == "sim":
            samples = sim_suite(parse_seeds(args.seeds), _names(args.families), _names(args.difficulties))
        else:
            samples = folder_suite(Path(args.suite))
            if backends.vlm_spec is None or backends.vgm_spec is None:
                raise UsageError("a folder suite needs real models: --vlm KEY and --vgm KEY "
                                 "(see python -m collabvr backends)")
        jobs = jobs_for(methods, samples, backends, base)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    store, artifacts = _open(args)
    spec = {"methods": [m.name for m in methods], "suite": args.suite,
            "seeds": args.seeds if args.suite == "sim" else None,
            "families": _names(args.families) if args.suite == "sim" else None,
            "difficulties": _names(args.difficulties) if args.suite == "sim" else None,
            "backends": backends.describe(), "base": base.model_dump(mode="json")}
    run_id = args.name or "bench-" + hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    simulated = args.suite == "sim" and backends.vlm_spec is None
    if not args.json:
        label = "[SIMULATED] " if simulated else ""
        print(f"{label}bench {run_id}: {len(methods)} method(s) x {len(samples)} sample(s) = {len(jobs)} sessions, "
              f"recorded in {store.path}", flush=True)
    started = time.perf_counter()
    progress = None if args.no_progress else _progress_bar()
    try:
        results = run_bench(jobs, store, artifacts, workers=args.workers, executor=args.engine,
                            ray_address=args.ray_address, progress=progress,
                            discard=lambda session_id: store.delete_session(session_id))
    except BenchError as exc:
        raise UsageError(str(exc)) from None
    elapsed = time.perf_counter() - started
    if progress is not None:
        print(file=sys.stderr)
    spec["elapsed_s"] = round(elapsed, 1)
    document = bench_document(results, spec)
    document["run_id"] = run_id
    document["database"] = str(store.path)
    store.save_bench_run(run_id, spec, document)
    paths = write_reports(document, args.out)
    if args.json:
        document["files"] = {k: str(v) for k, v in paths.items()}
        print(json.dumps(document, indent=2))
        return EXIT_FINISHED
    print(bench_text(results, simulated))
    print(f"\n{len(results)} samples in {elapsed:.0f} s of wall time ({args.workers} worker(s), {args.engine}).")
    print("files:   " + ", ".join(str(p) for p in paths.values()))
    print(f"run:     {run_id} in {store.path}; open the app with --db {store.path} (tab Bench) to audit each sample")
    return EXIT_FINISHED


def bench_text(results: list[SampleResult], simulated: bool) -> str:
    """The table `bench` prints: per method, per family and overall; then each method against the reference."""
    note = "[SIMULATED] " if simulated else ""
    lines = [f"{note}score = mean graded score (95% bootstrap interval), success = share solved, "
             "VGM s = seconds of video generated per sample (the paper's cost), VLM calls and clips per sample, "
             "wall s = the models' own time per sample", "", summary_table(summaries(results, by="family"))]
    paired = comparisons(results)
    if paired:
        lines += ["", "paired on the same samples (sign test on the wins, ties left out):", paired_table(paired)]
    return "\n".join(lines)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _backends(args: argparse.Namespace) -> BenchBackends:
    from collabvr.sim import VGM_PROFILES, VERIFIER_PROFILES, verifier_for

    if args.vgm_profile not in VGM_PROFILES:
        raise ValueError(f"unknown simulated VGM profile {args.vgm_profile!r}; known: {', '.join(VGM_PROFILES)}")
    verifier = args.verifier_profile or verifier_for(args.vgm_profile)
    if verifier not in VERIFIER_PROFILES:
        raise ValueError(f"unknown verifier profile {verifier!r}; known: {', '.join(VERIFIER_PROFILES)}")
    specs: dict[str, Any] = {}
    for role, key in (("vlm", args.vlm), ("vgm", args.vgm), ("judge", args.judge)):
        if key is None:
            continue
        choice = registry.spec_for("vgm" if role == "vgm" else "vlm", key)
        if not choice.available:
            raise registry.BackendUnavailable(f"{key} cannot run here: {choice.why_not}")
        specs[role] = choice.spec
    if args.suite == "sim" and "vgm" in specs:
        raise ValueError("the simulated suite renders with the simulated VGM; --vgm is for folder suites")
    return BenchBackends(vgm_profile=args.vgm_profile, verifier_profile=verifier, vlm_spec=specs.get("vlm"),
                         vgm_spec=specs.get("vgm"), judge_spec=specs.get("judge"))


def _open(args: argparse.Namespace):
    if args.db is not None or args.data_dir is not None:
        database, artifact_root = store_paths(args)
    else:
        database, artifact_root = args.out / DATABASE_NAME, args.out / ARTIFACTS_NAME
    return open_store_at(database, artifact_root)


def _progress_bar():
    """A one-line progress bar on stderr: done of total, samples per second, time left."""
    started = time.perf_counter()
    first: list[int] = []

    def show(done: int, total: int, result: SampleResult | None) -> None:
        if not first:
            first.append(done)  # samples found done in the store: skipped, not run
        ran = done - first[0]
        elapsed = time.perf_counter() - started
        filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
        left = (total - done) * elapsed / ran if ran else 0.0
        skipped = f", {first[0]} already done" if first[0] else ""
        last = f"  {result.method} {result.key}" if result is not None else ""
        print(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}{skipped}, "
              f"{elapsed:.0f} s, about {left:.0f} s left{last:<40}", end="", file=sys.stderr, flush=True)

    return show


def cmd_overhead(args: argparse.Namespace) -> int:
    from collabvr.eval.overhead import measure_overhead, overhead_text

    results = measure_overhead()
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(overhead_text(results))
    return EXIT_FINISHED

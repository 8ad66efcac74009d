"""What each method scores in the calibrated simulated world, on held-out seeds. A script, not a test.

    python bench/bench_methods.py [--seeds 200-299] [--difficulty hard] [--workers 2] [--vgm-profile paper]

Runs every family of the suite for each seed with four methods, all with the same simulated backends
and the cost counted the same way (seconds of video generated, every clip included):
  single   the raw task prompt, one clip of the first-step length (6 s), from the input image
  pass@4   four such clips (seeds of their own); the simulated VLM's `select` picks one (one VLM call)
  M=1      the loop with planning only: one attempt per step, the router off (N_max = 3)
  full     the loop as DESIGN.md section 1 has it (N_max = 3, M = 3, router on)
and prints, per method, the mean graded score, the success rate, mean VGM seconds and VLM calls per
sample. Single and Pass@k are built here in process (there is no baseline command yet); their clips go
through H.264 as the loop's do, and the final video is judged by the same pixel test.

Everything here is SIMULATED. The world's knobs were fitted to the paper's run statistics (see
`python -m collabvr calibrate`), never to these scores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collabvr import media  # noqa: E402
from collabvr.artifacts import ArtifactFolder  # noqa: E402
from collabvr.backends import ClipView, GenerateRequest, SelectRequest  # noqa: E402
from collabvr.config import LoopConfig  # noqa: E402
from collabvr.engine import derive_seed  # noqa: E402
from collabvr.sim import get_family, judge_for, make_task  # noqa: E402
from collabvr.sim.calibration import World, run_session, world as world_of  # noqa: E402
from collabvr.sim.vgm import SimVGM  # noqa: E402
from collabvr.sim.vlm import SimVLM  # noqa: E402
from collabvr.state import fold  # noqa: E402

METHODS = ("single", "pass@4", "M=1", "full")
LOOP_CONFIGS = {"M=1": LoopConfig(m=1, router=False), "full": LoopConfig()}
CLIP_SECONDS = 6.0  # the loop's first-step length: the budget unit of single inference (paper 1.11)


def raw_prompt_clips(world: World, family: str, difficulty: str, seed: int, k: int,
                     folder: ArtifactFolder) -> tuple[list[np.ndarray], float]:
    """k clips of the raw task prompt from the input image, through H.264 like the loop's; their fps."""
    fam = get_family(family)
    task = make_task(family, difficulty, seed)
    vgm = SimVGM(fam, world.vgm)  # type: ignore[arg-type]
    image = fam.render(task.initial)
    clips, fps = [], vgm.fps
    for index in range(k):
        clip = vgm.generate(GenerateRequest(image=image, prompt=task.prompt, seconds=CLIP_SECONDS,
                                            seed=derive_seed(seed, "raw", index)))
        clips.append(folder.load_clip(folder.put_clip(media.as_uint8_frames(clip.frames), clip.fps)))
        fps = clip.fps
    return clips, fps


def pass_at_k(world: World, family: str, difficulty: str, seed: int, k: int, folder: ArtifactFolder) -> dict:
    clips, fps = raw_prompt_clips(world, family, difficulty, seed, k, folder)
    task = make_task(family, difficulty, seed)
    best = 0
    calls = 0
    if k > 1:
        views = []
        for frames in clips:
            indices = media.sample_indices(len(frames), fps, 1.0)
            views.append(ClipView(frames=[frames[i] for i in indices], indices=indices, n_frames=len(frames), fps=fps))
        vlm = SimVLM(get_family(family), world.verifier)  # type: ignore[arg-type]
        image = get_family(family).render(task.initial)
        best = vlm.select(SelectRequest(task_prompt=task.prompt, input_image=image, clips=views,
                                        seed=derive_seed(seed, "select"))).value.best_index
        calls = 1
    success, score = judge_for(task)(clips[best])
    return {"score": score, "success": success, "vgm_seconds": k * CLIP_SECONDS, "vlm_calls": calls}


def loop(world: World, family: str, difficulty: str, seed: int, config: LoopConfig, folder: Path) -> dict:
    state = fold(run_session(family, difficulty, seed, config, world, folder))
    finished = state.finished
    return {"score": float(finished.score or 0.0) if finished else 0.0,
            "success": bool(finished and finished.success), "vgm_seconds": state.vgm_seconds,
            "vlm_calls": state.vlm_calls}


def job(args: tuple) -> tuple[str, str, dict]:
    method, family, difficulty, seed, world = args
    scratch = Path(tempfile.mkdtemp(prefix="collabvr-bench-"))
    try:
        if method in LOOP_CONFIGS:
            result = loop(world, family, difficulty, seed, LOOP_CONFIGS[method], scratch)
        else:
            result = pass_at_k(world, family, difficulty, seed, 1 if method == "single" else 4,
                               ArtifactFolder(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return method, family, result


def seed_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="200-299", help="held-out seed range (default 200-299)")
    parser.add_argument("--difficulty", default="hard", choices=("easy", "hard"))
    parser.add_argument("--families", default="maze,blocks,shapes")
    parser.add_argument("--vgm-profile", default="paper")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    world = world_of(args.vgm_profile)
    families = [f for f in args.families.split(",") if f]
    jobs = [(m, f, args.difficulty, s, world) for m in METHODS for f in families for s in seed_range(args.seeds)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(job, jobs, chunksize=2))
    print(f"[SIMULATED] {args.difficulty} suite, {', '.join(families)} x seeds {args.seeds}; VGM {world.vgm.name}, "
          f"verifier {world.verifier.name} ({time.perf_counter() - started:.0f} s)")
    print(f"{'method':<8}{'score':>8}{'success':>9}{'VGM s':>8}{'VLM calls':>11}   score per family")
    for method in METHODS:
        mine = [r for m, _, r in rows if m == method]
        per_family = "  ".join(f"{f} {np.mean([r['score'] for m, fam, r in rows if m == method and fam == f]):.3f}"
                               for f in families)
        print(f"{method:<8}{np.mean([r['score'] for r in mine]):>8.3f}{np.mean([r['success'] for r in mine]):>9.1%}"
              f"{np.mean([r['vgm_seconds'] for r in mine]):>8.1f}{np.mean([r['vlm_calls'] for r in mine]):>11.2f}"
              f"   {per_family}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

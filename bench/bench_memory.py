"""How much memory does finishing a session of real-size clips take? A script, not a test.

    python bench/bench_memory.py [--steps 5] [--frames 97] [--width 832] [--height 480] [--partial]

Runs one session to the end through the real engine, SQLite store and artifact folder, with a synthetic
video model that returns clips of the size Wan 2.2 makes (832x480, 97 frames = 6 s at 16 fps) and a
scripted VLM (accepts every step; with --partial, step 2's first attempt is rejected at half way, so a
partial regeneration streams its kept prefix). Prints the process's resident memory before the session
(after imports and a warm-up encode), its peak during the session (sampled every 5 ms, and the kernel's
own high-water mark), and the peak above the baseline. Target: under 300 MB above the baseline.

One clip as the model returns it is frames x height x width x 3 bytes (116 MB here): that array is the
floor, since the video model protocol hands over a whole clip. The ffmpeg encoder runs as a child process
and is not counted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from collabvr import media  # noqa: E402
from collabvr.artifacts import ArtifactFolder  # noqa: E402
from collabvr.backends import BackendInfo, GeneratedClip, GenerateRequest  # noqa: E402
from collabvr.config import LoopConfig  # noqa: E402
from collabvr.engine import Engine  # noqa: E402
from collabvr.events import TaskSpec  # noqa: E402
from scripted import ScriptedVLM, accept, plan, reject  # noqa: E402
from storage import SQLiteEventStore  # noqa: E402

MB = 1024 * 1024


class PatternVGM:
    """Clips of a given size: a lit band sweeping over a textured background (so H.264 has real work)."""

    def __init__(self, frames: int, height: int, width: int, fps: float = 16.0) -> None:
        self.n, self.height, self.width, self.fps = frames, height, width, fps
        self.info = BackendInfo(name="pattern-vgm", role="vgm", simulated=True)
        rng = np.random.default_rng(0)
        self.texture = rng.integers(0, 40, (height, width, 1), dtype=np.uint8)

    def generate(self, request: GenerateRequest) -> GeneratedClip:
        frames = np.empty((self.n, self.height, self.width, 3), dtype=np.uint8)
        xs = np.arange(self.width)
        for i in range(self.n):
            band = (np.abs(xs - (i * self.width) // self.n) < self.width // 10).astype(np.uint8) * 150
            frames[i] = self.texture + band[None, :, None] + np.array([40, 60, 80], dtype=np.uint8)
        return GeneratedClip(frames=frames, fps=self.fps)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler:
    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s, self.peak, self._done = every_s, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.every_s)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--frames", type=int, default=97)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--partial", action="store_true", help="step 2 is regenerated from its middle")
    args = parser.parse_args()

    fps = 16.0
    seconds = (args.frames - 1) / fps
    vgm = PatternVGM(args.frames, args.height, args.width, fps)
    verdicts = [accept()] * args.steps
    if args.partial:
        verdicts.insert(1, reject(0.5))
    vlm = ScriptedVLM(plans=[plan(f"step {i + 1}") for i in range(args.steps)], verdicts=verdicts)
    config = LoopConfig(n_max=args.steps, m=3, first_step_seconds=seconds, later_seconds=seconds)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteEventStore(Path(tmp) / "bench.sqlite")
        artifacts = ArtifactFolder(Path(tmp) / "artifacts")
        image = np.full((args.height, args.width, 3), 90, dtype=np.uint8)
        engine = Engine.start(store, artifacts, vlm, vgm, task=TaskSpec(prompt="sweep the band", source="upload"),
                              input_image=image, config=config, seed=0)
        media.write_mp4(np.zeros((2, 16, 16, 3), np.uint8), fps, Path(tmp) / "warm.mp4")  # load the codecs
        baseline = rss_mb()
        high_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        with PeakSampler() as sampler:
            state = engine.run()
        wall = time.perf_counter() - started
        high_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert state.finished is not None, getattr(engine, 'last_stop', 'not finished')
        clip_mb = args.frames * args.height * args.width * 3 / MB
        final_frames = state.finished.n_frames

    peak = max(sampler.peak, high_after if high_after > high_before else 0.0)
    print(f"session: {args.steps} steps of {args.width}x{args.height} x {args.frames} frames"
          f"{' + a partial regeneration' if args.partial else ''}; final video {final_frames} frames; "
          f"{wall:.1f} s")
    print(f"one clip as the model returns it: {clip_mb:7.1f} MB")
    print(f"baseline RSS:                     {baseline:7.1f} MB")
    print(f"peak RSS during the session:      {peak:7.1f} MB (sampled {sampler.peak:.1f}, "
          f"kernel high-water {high_after:.1f})")
    above = peak - baseline
    print(f"peak above baseline:              {above:7.1f} MB   target < 300 MB: {'ok' if above < 300 else 'MISSED'}")


if __name__ == "__main__":
    main()

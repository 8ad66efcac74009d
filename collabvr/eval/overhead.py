"""The loop's own cost per attempt, outside the models, against the one thing it cannot avoid: encoding the
clip as mp4.

An attempt is the GENERATE, VERIFY and ACCEPT commands of a session whose models answer at once (a VGM that
hands back frames made beforehand, a VLM with a fixed plan and an accept): what those commands take is the
loop's work (events, the artifact files, the H.264 encode, the first-frame SSIM, decoding the frames the
verifier samples, folding the log). It is compared with the encode of the same frames alone; the ratio's
target is at most 1.5. Measured for a clip of the default simulated size (a real simulated clip, 6 s at
8 fps) and one of 832x480 x 97 frames (Wan's size, a synthetic moving scene). PLAN (per step) and FINISH
(per session: the final video is re-encoded once) are reported apart.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr.backends import BackendInfo, GeneratedClip, GenerateRequest, Plan, Verdict, VLMReply
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import MemoryEventStore

TARGET = 1.5
REPEATS = 5
ATTEMPT_COMMANDS = ("generate", "verify", "accept")


@dataclass
class Overhead:
    """One clip size: the loop's median time per attempt, the encode alone, and their ratio."""

    label: str
    width: int
    height: int
    n_frames: int
    fps: float
    attempt_s: float
    encode_s: float
    ratio: float
    target: float = TARGET
    commands_s: dict[str, float] = field(default_factory=dict)  # median per command, model time excluded

    def as_dict(self) -> dict:
        return asdict(self)


class _InstantVLM:
    info = BackendInfo(name="instant-vlm", role="vlm", simulated=True)

    def plan(self, request):  # noqa: ANN001 - the VLM protocol's request types
        return VLMReply(Plan(observation="the scene", remaining_goal="the task", task_complete=False,
                             instruction="carry out the task", target_state="done", estimated_steps_remaining=0))

    def verify(self, request):  # noqa: ANN001
        return VLMReply(Verdict(verdict="accept", action_executed=True, progress="complete", confidence=0.9,
                                reason="done"))

    def route(self, request):  # noqa: ANN001
        raise AssertionError("every attempt is accepted")

    def select(self, request):  # noqa: ANN001
        raise AssertionError("no selection in an overhead run")


class _ReplayVGM:
    """Hands back the same frames at once: the loop's time is all that is left to measure."""

    def __init__(self, frames: np.ndarray, fps: float) -> None:
        self.frames, self.fps = frames, fps
        self.info = BackendInfo(name="replay-vgm", role="vgm", simulated=True)

    def generate(self, request: GenerateRequest) -> GeneratedClip:
        return GeneratedClip(frames=self.frames, fps=self.fps)


def simulated_clip() -> tuple[np.ndarray, float]:
    """A real clip of the simulated world at its default size: the maze's first step, 6 s."""
    from collabvr.sim import get_family, make_task
    from collabvr.sim.vgm import SimVGM

    family = get_family("maze")
    task = make_task("maze", "easy", 0)
    clip = SimVGM(family, "paper").generate(GenerateRequest(image=family.render(task.initial), prompt=task.prompt,
                                                            seconds=6.0, seed=1))
    return clip.frames, clip.fps


def synthetic_clip(width: int = 832, height: int = 480, n_frames: int = 97) -> np.ndarray:
    """A moving scene with gradients and a disc, so the encoder has real work (not flat colour)."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    for i in range(n_frames):
        frame = frames[i]
        frame[..., 0] = (xx + 3 * i) % 256
        frame[..., 1] = yy * 255 // height
        frame[..., 2] = 90
        inside = (xx - (80 + 6 * i)) ** 2 + (yy - height // 2) ** 2 < (height // 12) ** 2
        frame[inside] = (240, 30, 30)
    return frames


def _attempt_commands(frames: np.ndarray, fps: float, folder: Path) -> dict[str, float]:
    """Each command's wall time in one session of one accepted attempt, minus the models' own time."""
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(folder), _InstantVLM(), _ReplayVGM(frames, fps),
                          task=TaskSpec(prompt="carry out the task", source="upload"), input_image=frames[0],
                          config=LoopConfig(n_max=1, m=1, first_step_seconds=(len(frames) - 1) / fps))
    times: dict[str, float] = {}
    while engine.state.finished is None:
        started = time.perf_counter()
        result = engine.step()
        spent = time.perf_counter() - started
        model = sum(float(getattr(e, "wall_s", 0.0) or getattr(getattr(e, "usage", None), "latency_s", 0.0) or 0.0)
                    for e in result.events)
        times[result.command.kind.value] = max(spent - model, 0.0)
    return times


def _encode_alone(frames: np.ndarray, fps: float, folder: Path) -> float:
    started = time.perf_counter()
    media.write_mp4(frames, fps, folder / "encode-alone.mp4")
    return time.perf_counter() - started


def measure(label: str, frames: np.ndarray, fps: float, repeats: int = REPEATS) -> Overhead:
    """Median over `repeats` runs (after one warm-up) of the attempt's commands and of the encode alone."""
    runs: list[dict[str, float]] = []
    encodes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="collabvr-overhead-") as scratch:
        root = Path(scratch)
        _attempt_commands(frames, fps, root / "warm-up")
        for index in range(repeats):
            runs.append(_attempt_commands(frames, fps, root / f"run-{index}"))
            encodes.append(_encode_alone(frames, fps, root))
    commands = {name: statistics.median(run.get(name, 0.0) for run in runs) for name in runs[0]}
    attempt = statistics.median(sum(run.get(name, 0.0) for name in ATTEMPT_COMMANDS) for run in runs)
    encode = statistics.median(encodes)
    height, width = frames.shape[1:3]
    return Overhead(label=label, width=int(width), height=int(height), n_frames=len(frames), fps=float(fps),
                    attempt_s=round(attempt, 4), encode_s=round(encode, 4), ratio=round(attempt / encode, 3),
                    commands_s={k: round(v, 4) for k, v in commands.items()})


def measure_overhead(repeats: int = REPEATS) -> list[Overhead]:
    """The default simulated clip and an 832x480 x 97-frame clip at 16 fps."""
    sim_frames, sim_fps = simulated_clip()
    return [measure("simulated default", sim_frames, sim_fps, repeats),
            measure("832x480 x 97", synthetic_clip(), 16.0, repeats)]


def overhead_text(results: list[Overhead]) -> str:
    lines = ["The loop's own time per attempt (generate + verify + accept, models excluded) against the mp4 "
             "encode of the same frames alone (median of runs):",
             f"{'clip':<20}{'size':>16}{'attempt s':>11}{'encode s':>10}{'ratio':>8}{'target':>8}   per command (s)"]
    for r in results:
        size = f"{r.width}x{r.height}x{r.n_frames}"
        verdict = "ok" if r.ratio <= r.target else "MISSED"
        parts = ", ".join(f"{k} {v:.4f}" for k, v in r.commands_s.items())
        lines.append(f"{r.label:<20}{size:>16}{r.attempt_s:>11.4f}{r.encode_s:>10.4f}{r.ratio:>8.2f}"
                     f"{'<= ' + format(r.target, 'g'):>8} {verdict}   {parts}")
    return "\n".join(lines)

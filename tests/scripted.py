"""Scripted backends for tests that need exact control: every answer is queued by the test.

ScriptedVGM paints frame i of its c-th clip so that a test can tell which clip and which frame a frame came
from, even after H.264 compression: red everywhere encodes c, six 8x8 green blocks encode i in binary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collabvr.artifacts import ArtifactFolder
from collabvr.backends import (
    BackendError, BackendInfo, Critique, CritiqueRequest, GeneratedClip, GenerateRequest, Plan, PlanRequest,
    RouteDecision, RouteRequest, Selection, SelectRequest, Usage, Verdict, VerifyRequest, VLMReply,
)
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import EventStore, MemoryEventStore


SIZE = 32


def plan(instruction: str = "do the next thing", *, complete: bool = False, remaining: int = 1,
         target: str = "the next state") -> Plan:
    return Plan(observation="a scene", remaining_goal="the rest", task_complete=complete,
                instruction="" if complete else instruction, target_state=target,
                estimated_steps_remaining=0 if complete else remaining)


def accept(reason: str = "the action happened") -> Verdict:
    return Verdict(verdict="accept", action_executed=True, progress="complete", confidence=0.9, reason=reason)


def reject(good_fraction: float = 0.0, suggestion: str = "Do it right.", reason: str = "wrong direction") -> Verdict:
    return Verdict(verdict="reject", action_executed=False, progress="none", confidence=0.8, reason=reason,
                   suggestion=suggestion, good_fraction=good_fraction, error_type="wrong_direction")


def route(action: str, steps: int | None = None, suggestion: str = "") -> RouteDecision:
    return RouteDecision(action=action, estimated_steps=steps, suggestion=suggestion, reason=f"scripted {action}")


def paint(clip_number: int, index: int) -> np.ndarray:
    frame = np.zeros((SIZE, SIZE * 2, 3), dtype=np.uint8)
    frame[..., 0] = 20 + 10 * clip_number
    frame[..., 1] = 30
    frame[..., 2] = 100
    for bit in range(6):
        if index >> bit & 1:
            frame[:8, 8 * bit:8 * bit + 8, 1] = 230
    return frame


def frame_code(frame: np.ndarray) -> tuple[int, int]:
    """(clip number, frame index) painted into a ScriptedVGM frame."""
    clip_number = int(round((float(frame[16:, :, 0].mean()) - 20) / 10))
    index = sum(1 << bit for bit in range(6) if frame[:8, 8 * bit:8 * bit + 8, 1].mean() > 130)
    return clip_number, index


@dataclass
class ScriptedVLM:
    plans: list[Any] = field(default_factory=list)
    verdicts: list[Any] = field(default_factory=list)
    routes: list[Any] = field(default_factory=list)
    selections: list[Any] = field(default_factory=list)  # empty: the selector picks clip 0
    critiques: list[Any] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    info: BackendInfo = BackendInfo(name="scripted-vlm", role="vlm", simulated=True)

    def _next(self, queue: list[Any], role: str, request: Any) -> VLMReply:
        self.calls.append((role, request))
        if not queue:
            raise AssertionError(f"the test queued no answer for {role} call #{len(self.calls)}")
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return VLMReply(value=item, usage=Usage(calls=1, input_tokens=100, output_tokens=20, latency_s=0.01))

    def plan(self, request: PlanRequest) -> VLMReply[Plan]:
        return self._next(self.plans, "plan", request)

    def verify(self, request: VerifyRequest) -> VLMReply[Verdict]:
        return self._next(self.verdicts, "verify", request)

    def route(self, request: RouteRequest) -> VLMReply[RouteDecision]:
        return self._next(self.routes, "route", request)

    def select(self, request: SelectRequest) -> VLMReply[Selection]:
        if not self.selections:
            self.calls.append(("select", request))
            return VLMReply(value=Selection(best_index=0, reason="scripted"))
        return self._next(self.selections, "select", request)

    def critique(self, request: CritiqueRequest) -> VLMReply[Critique]:
        return self._next(self.critiques, "critique", request)

    def requests(self, role: str) -> list[Any]:
        return [r for name, r in self.calls if name == role]


@dataclass
class ScriptedVGM:
    fps: float = 8.0
    failures: list[Exception] = field(default_factory=list)  # raised by the next calls, in order
    requests: list[GenerateRequest] = field(default_factory=list)
    info: BackendInfo = BackendInfo(name="scripted-vgm", role="vgm", simulated=True)

    def generate(self, request: GenerateRequest) -> GeneratedClip:
        self.requests.append(request)
        if self.failures:
            raise self.failures.pop(0)
        clip_number = len(self.requests)
        n = int(round(request.seconds * self.fps)) + 1
        frames = np.stack([paint(clip_number, i) for i in range(n)])
        if request.progress:
            request.progress(n, n)
        return GeneratedClip(frames=frames, fps=self.fps, info={"clip": clip_number})


def start_engine(folder: ArtifactFolder, vlm: Any, vgm: Any = None, *, prompt: str = "Stack the blocks.",
                 seed: int = 5, size: tuple[int, int] = (32, 64), store: EventStore | None = None,
                 **config: Any) -> Engine:
    """A new session on scripted backends, in memory unless a store is given; `config` is LoopConfig's."""
    image = np.full((*size, 3), 200, dtype=np.uint8)
    return Engine.start(store or MemoryEventStore(), folder, vlm, vgm or ScriptedVGM(),
                        task=TaskSpec(prompt=prompt, source="upload"), input_image=image,
                        config=LoopConfig(**config), seed=seed)


class FlakyError(BackendError):
    def __init__(self, message: str = "the service timed out") -> None:
        super().__init__(message, retryable=True)

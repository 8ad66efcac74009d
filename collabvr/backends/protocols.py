"""What the engine asks of its models: the VLM and VGM protocols, their requests, replies and errors.

The VLM plays four roles in the loop (plan, verify, route, select; the simulated and prompted VLMs also
critique a round of clips for the VideoTPO baseline and judge a finished video against a rubric); each answers with one of the pydantic models in
`schemas.py`. The VGM turns (image, prompt, seconds, seed) into frames. Backends raise `BackendError` for
anything that went wrong; the engine turns it into a `BackendFailed` event and never guesses a result in
its place.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
from pydantic import BaseModel

from collabvr.backends.schemas import Critique, Plan, RouteDecision, RubricJudgement, Selection, Verdict


# ----- requests ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryItem:
    step: int
    instruction: str
    outcome: str  # "accept", "propagated", "split"


@dataclass(frozen=True)
class SplitContext:
    """Set while the planner re-plans the residual of a failed step as smaller sub-steps."""

    failed_instruction: str
    sub_step: int  # 1-based index within the split
    sub_steps: int


@dataclass
class PlanRequest:
    task_prompt: str
    input_image: np.ndarray
    current_frame: np.ndarray
    history: list[HistoryItem]
    step: int
    max_steps: int
    seed: int
    split: SplitContext | None = None
    # The fixed-N ablation: the run takes exactly max_steps steps, so the planner must not declare the task
    # complete before the last one (with nothing left it asks for a still clip).
    exact_steps: bool = False

    @property
    def is_last(self) -> bool:
        """On the last allowed step the instruction must finish the whole remaining task."""
        return self.step >= self.max_steps


@dataclass
class ClipView:
    """How a VLM sees a clip: frames sampled at the verifier's rate plus the last frame, and the file."""

    frames: list[np.ndarray]
    indices: list[int]
    n_frames: int
    fps: float
    path: Path | None = None


@dataclass
class VerifyRequest:
    task_prompt: str
    input_image: np.ndarray
    instruction: str
    target_state: str
    clip: ClipView
    seed: int
    current_frame: np.ndarray | None = None  # the frame the attempt started from (the step's conditioning frame)


@dataclass
class RouteRequest:
    task_prompt: str
    input_image: np.ndarray
    instruction: str
    clip: ClipView
    reason: str
    suggestion: str
    good_fraction: float
    step: int
    max_steps: int
    seed: int


@dataclass
class SelectRequest:
    task_prompt: str
    input_image: np.ndarray
    clips: list[ClipView]
    seed: int


@dataclass
class CritiqueRequest:
    """VideoTPO: critique a round of clips made from the same prompt and rewrite the prompt."""

    task_prompt: str
    input_image: np.ndarray
    prompt: str  # the prompt every clip of the round was made from
    clips: list[ClipView]
    round: int  # 1-based
    rounds: int
    seed: int


@dataclass
class JudgeRequest:
    """Grade a finished video against a rubric (one criterion per line or paragraph of `rubric`)."""

    task_prompt: str
    rubric: str
    input_image: np.ndarray
    clip: ClipView
    seed: int
    reference_image: np.ndarray | None = None  # a ground-truth final image, where the benchmark has one


@dataclass
class GenerateRequest:
    image: np.ndarray
    prompt: str
    seconds: float
    seed: int
    # Backends that can report progress call progress(done, total); backends that can stop early check
    # cancel and raise BackendCancelled.
    progress: Callable[[int, int], None] | None = None
    cancel: threading.Event | None = None


# ----- replies ----------------------------------------------------------------------------------------

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Usage:
    """Cost of one VLM role call; `calls` counts repair retries as extra calls."""

    calls: int = 1
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0


@dataclass(frozen=True)
class VLMReply(Generic[T]):
    value: T
    usage: Usage = field(default_factory=Usage)
    raw: str | None = None


@dataclass(frozen=True)
class GeneratedClip:
    """Frames of one generated clip: (n, H, W, 3) uint8 at `fps`."""

    frames: np.ndarray
    fps: float
    info: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


@dataclass(frozen=True)
class BackendInfo:
    """An honest line about a backend: what it is and whether it can run here."""

    name: str
    role: Literal["vlm", "vgm"]
    simulated: bool
    available: bool = True
    why_not: str = ""
    uses_gpu: bool = False  # runs on this machine's GPU: every call waits for the GPU gate


# ----- errors -----------------------------------------------------------------------------------------

class BackendError(RuntimeError):
    """A model call failed. `retryable` says whether trying again may help (timeouts, rate limits)."""

    def __init__(self, message: str, *, retryable: bool = False, raw: str | None = None,
                 usage: "Usage | None" = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.raw = raw
        self.usage = usage  # what the failed call cost, where the backend knows (calls, tokens)


class MalformedOutput(BackendError):
    """The model's answer did not match the role's JSON schema, even after the repair retries."""


class BackendCancelled(BackendError):
    """A generation was stopped by the person before it finished (retryable: running again redoes it)."""

    def __init__(self, message: str = "stopped by a person", **options: object) -> None:
        options.setdefault("retryable", True)
        super().__init__(message, **options)  # type: ignore[arg-type]


# ----- protocols ---------------------------------------------------------------------------------------

@runtime_checkable
class VLM(Protocol):
    info: BackendInfo

    def plan(self, request: PlanRequest) -> VLMReply[Plan]: ...

    def verify(self, request: VerifyRequest) -> VLMReply[Verdict]: ...

    def route(self, request: RouteRequest) -> VLMReply[RouteDecision]: ...

    def select(self, request: SelectRequest) -> VLMReply[Selection]: ...


@runtime_checkable
class Critic(Protocol):
    """A VLM that can critique whole videos and rewrite the prompt (the VideoTPO baseline's critic)."""

    info: BackendInfo

    def critique(self, request: CritiqueRequest) -> VLMReply[Critique]: ...


@runtime_checkable
class RubricJudge(Protocol):
    """A VLM that can also grade a finished video against a benchmark's rubric (the prompted VLMs can)."""

    info: BackendInfo

    def judge(self, request: JudgeRequest) -> VLMReply[RubricJudgement]: ...


@runtime_checkable
class VGM(Protocol):
    info: BackendInfo
    fps: float

    def generate(self, request: GenerateRequest) -> GeneratedClip: ...

"""The session's event log: every fact the engine or a person adds, as a serialisable pydantic model.

A session is an append-only list of these events; `collabvr.state.fold` turns it into the current state.
Events hold references to artifacts (content-hashed files), never pixels. Each event serialises to one
JSON object whose `type` field names it as in DESIGN.md section 2.1.
"""

from __future__ import annotations

import re
import time
from typing import Annotated as TypingAnnotated, Any, Iterator, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from collabvr.backends import Plan, RouteDecision, RubricJudgement, Usage, Verdict
from collabvr.config import Breakpoint, LoopConfig


class Artifact(BaseModel):
    """A file in the artifact folder, named by the sha256 of its content."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    path: str  # relative to the artifact root
    kind: Literal["image", "clip", "video"]
    bytes: int


class UsageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    calls: int = 1
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0

    @classmethod
    def of(cls, usage: Usage) -> "UsageInfo":
        return cls(calls=usage.calls, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                   latency_s=usage.latency_s)


class TaskSpec(BaseModel):
    """What the session solves: a simulated task (family, difficulty, seed) or an uploaded image and prompt."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    source: Literal["sim", "upload"]
    family: str | None = None
    difficulty: str | None = None
    task_seed: int | None = None


class BackendLabel(BaseModel):
    """Which backend a session used: a display name, whether it is simulated, and the spec that
    `collabvr.registry` rebuilds it from when the session is resumed."""

    model_config = ConfigDict(frozen=True)

    name: str
    simulated: bool
    spec: dict[str, Any] = {}


class StartPoint(BaseModel):
    """Where an attempt's clip starts: the step's conditioning frame, or frame `frame_index` of an earlier
    attempt's candidate clip whose frames before it are kept as a prefix (partial regeneration)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["step_start", "partial"]
    from_attempt: int | None = None
    frame_index: int | None = None


class ForkOrigin(BaseModel):
    model_config = ConfigDict(frozen=True)

    parent_session: str
    at_seq: int
    inherited_events: int | None = None  # events copied from the parent, SessionStarted included


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = "engine"
    at: float = Field(default_factory=time.time)


# ----- engine output --------------------------------------------------------------------------------

class SessionStarted(EventBase):
    type: Literal["SessionStarted"] = "SessionStarted"
    session_id: str
    title: str = ""
    task: TaskSpec
    config: LoopConfig
    vlm: BackendLabel
    vgm: BackendLabel
    input_image: Artifact
    seed: int
    # Mixed into every seed the session derives: empty for a session started afresh (so a rerun from the
    # same seed is identical), the fork's own id for a fork (so regenerating after a fork explores).
    seed_salt: str = ""
    fork: ForkOrigin | None = None


class StepPlanned(EventBase):
    type: Literal["StepPlanned"] = "StepPlanned"
    step: int
    max_steps: int
    plan: Plan
    split_of: int | None = None  # the step whose residual this sub-step re-plans
    sub_step: int | None = None
    sub_steps: int | None = None
    usage: UsageInfo = UsageInfo()
    # "method": a baseline's one step, set by its rule (the raw task prompt), not by the VLM planner (no call)
    by: Literal["planner", "method"] = "planner"


class ClipGenerated(EventBase):
    type: Literal["ClipGenerated"] = "ClipGenerated"
    step: int
    attempt: int
    purpose: Literal["attempt", "regen", "fallback"]
    prompt: str
    start: StartPoint
    start_frame: Artifact
    clip: Artifact  # the frames the VGM generated
    candidate: Artifact  # prefix + clip: what is verified and, if accepted, appended
    n_frames: int
    prefix_frames: int
    fps: float
    seconds: float  # the nominal clip length asked for: the paper's cost (the prefix was paid for already)
    frame_seconds: float | None = None  # n_frames / fps, what the frames actually last
    first_frame_ssim: float
    seed: int
    wall_s: float  # the generation itself, without the wait for the GPU gate
    gate_wait_s: float = 0.0
    last_frame: Artifact | None = None  # the VGM's own last frame, lossless: conditions the next step
    info: dict[str, Any] = {}


class ClipVerified(EventBase):
    type: Literal["ClipVerified"] = "ClipVerified"
    step: int
    attempt: int
    verdict: Verdict
    sampled_indices: list[int]
    first_failing_frame: int | None = None
    usage: UsageInfo = UsageInfo()


class PromptEvolved(EventBase):
    type: Literal["PromptEvolved"] = "PromptEvolved"
    step: int
    after_attempt: int
    source: Literal["verifier", "override", "router"]  # whose suggestion: the VLM verdict, a person's override, a route
    before: str
    after: str
    suggestion: str


class Routed(EventBase):
    type: Literal["Routed"] = "Routed"
    step: int
    after_attempt: int
    decision: RouteDecision
    usage: UsageInfo = UsageInfo()


class StepAccepted(EventBase):
    type: Literal["StepAccepted"] = "StepAccepted"
    step: int
    attempt: int
    clip: Artifact
    last_frame: Artifact
    # verifier or a person in the loop; in a baseline, its selector (Pass@k) or its rule (single, VideoTPO)
    by: Literal["verifier", "human", "selector", "method"]


class ClipsSelected(EventBase):
    """Pass@k: the VLM's selector picked one of the step's clips (one call over all of them)."""

    type: Literal["ClipsSelected"] = "ClipsSelected"
    step: int
    attempts: list[int]
    best_attempt: int
    reason: str
    usage: UsageInfo = UsageInfo()


class ClipsCritiqued(EventBase):
    """VideoTPO: the VLM critiqued a round of clips and rewrote the prompt the next clips are made from."""

    type: Literal["ClipsCritiqued"] = "ClipsCritiqued"
    step: int
    round: int
    attempts: list[int]
    better_attempt: int
    critique: str
    before: str
    after: str
    usage: UsageInfo = UsageInfo()


class BestAttemptPropagated(EventBase):
    type: Literal["BestAttemptPropagated"] = "BestAttemptPropagated"
    step: int
    attempt: int
    clip: Artifact
    last_frame: Artifact
    reason: str


class CostSummary(BaseModel):
    """What a session spent, counted as the paper counts it: `vgm_seconds` is the nominal length of every
    generation asked for, failed, cancelled and discarded ones included; `clips` the generations that
    became attempts and `unused_generations` those that did not; `frame_seconds` what the clips' frames
    last; `wall_s` the models' own time, without `gate_wait_s` (waiting for the GPU gate)."""

    model_config = ConfigDict(frozen=True)

    vgm_seconds: float = 0.0
    clips: int = 0
    unused_generations: int = 0
    frame_seconds: float = 0.0
    vlm_calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    wall_s: float = 0.0
    gate_wait_s: float = 0.0

    def minus(self, other: "CostSummary") -> "CostSummary":
        """What was spent since `other` (a fork's own cost is its total minus what it inherited)."""
        def tokens(a: int | None, b: int | None) -> int | None:
            return None if a is None else a - (b or 0)

        return CostSummary(
            vgm_seconds=round(self.vgm_seconds - other.vgm_seconds, 6), clips=self.clips - other.clips,
            unused_generations=self.unused_generations - other.unused_generations,
            frame_seconds=round(self.frame_seconds - other.frame_seconds, 6),
            vlm_calls=self.vlm_calls - other.vlm_calls,
            input_tokens=tokens(self.input_tokens, other.input_tokens),
            output_tokens=tokens(self.output_tokens, other.output_tokens),
            wall_s=round(self.wall_s - other.wall_s, 6), gate_wait_s=round(self.gate_wait_s - other.gate_wait_s, 6))


class SessionFinished(EventBase):
    type: Literal["SessionFinished"] = "SessionFinished"
    reason: str
    final_video: Artifact | None
    n_frames: int = 0
    success: bool | None = None  # known only where the task has a success test (simulated tasks)
    score: float | None = None  # graded result in [0, 1] from the same test (1.0 exactly when success)
    cost: CostSummary


class VideoJudged(EventBase):
    """A benchmark's rubric judge (a VLM) graded the finished video of a task that has no pixel test. This
    is evaluation, not the method: its VLM call is recorded here and kept out of the session's cost."""

    type: Literal["VideoJudged"] = "VideoJudged"
    judge: str  # the judging VLM's name
    rubric: str
    judgement: RubricJudgement
    score: float  # the judgement's normalized score, in [0, 1]
    success: bool  # every criterion at its maximum
    usage: UsageInfo = UsageInfo()


class BackendFailed(EventBase):
    """A model call failed. Its cost still counts: the seconds a failed or cancelled generation asked
    for, and the VLM calls (with their tokens, where the backend knows them)."""

    type: Literal["BackendFailed"] = "BackendFailed"
    role: Literal["plan", "generate", "verify", "route", "select", "critique"]
    step: int | None
    attempt: int | None
    error: str  # exception class
    message: str
    retryable: bool
    vgm_seconds: float = 0.0
    usage: UsageInfo | None = None
    wall_s: float = 0.0
    gate_wait_s: float = 0.0


class CommandFailed(EventBase):
    """The engine itself could not carry out a command (a missing artifact, an unreadable clip): a person
    sees it after a restart, and the loop waits for them rather than failing the same way on every Run."""

    type: Literal["CommandFailed"] = "CommandFailed"
    role: Literal["evolve", "accept", "propagate", "finish"]  # the command that failed
    step: int | None
    attempt: int | None
    error: str
    message: str
    retryable: bool = False


class ResultDiscarded(EventBase):
    """A model's answer arrived after a person changed what it was computed from (an edited action, an
    override, a route): it is dropped, and only its cost is kept."""

    type: Literal["ResultDiscarded"] = "ResultDiscarded"
    role: Literal["plan", "generate", "verify", "route", "select", "critique"]
    step: int | None
    attempt: int | None
    reason: str
    vgm_seconds: float = 0.0
    usage: UsageInfo | None = None
    wall_s: float = 0.0
    gate_wait_s: float = 0.0


# ----- human decisions --------------------------------------------------------------------------------

class ActionEdited(EventBase):
    type: Literal["ActionEdited"] = "ActionEdited"
    step: int
    before: str
    after: str
    reason: str = ""


class VerdictOverridden(EventBase):
    type: Literal["VerdictOverridden"] = "VerdictOverridden"
    step: int
    attempt: int
    verdict: Literal["accept", "reject"]
    reason: str = ""
    suggestion: str = ""  # appended to the prompt when a reject override leads to a retry


class RouteRequested(EventBase):
    type: Literal["RouteRequested"] = "RouteRequested"
    step: int
    action: Literal["regen", "split", "fallback"]
    estimated_steps: int | None = Field(default=None, ge=2, le=8)
    attempt: int | None = None  # regen: the attempt whose frames are kept
    frame_index: int | None = Field(default=None, ge=0)  # regen: the frame to start from
    suggestion: str = ""
    reason: str = ""


class Annotated(EventBase):
    """A reliability label: D1 plan depth (session), D2 human verdict (attempt), D3 1-3 rating of a
    suggestion (attempt), or a free note. It never changes what the loop does."""

    type: Literal["Annotated"] = "Annotated"
    target: str  # "session" or "step:<t>/attempt:<j>"
    label: Literal["D1", "D2", "D3", "note"]
    value: int | str
    reason: str = ""
    # The reliability study the label was given in (collabvr.study), None outside one: a study counts only
    # its own labels, which were given blind, never one given while the VLM's verdict was on screen.
    study: str | None = None
    # A note anchored at a moment of the attempt's clip: the index of a frame of its candidate clip.
    frame: int | None = Field(default=None, ge=0)


class BreakpointsSet(EventBase):
    type: Literal["BreakpointsSet"] = "BreakpointsSet"
    breakpoints: tuple[Breakpoint, ...]


Event = TypingAnnotated[
    Union[
        SessionStarted, StepPlanned, ClipGenerated, ClipVerified, PromptEvolved, Routed, StepAccepted,
        ClipsSelected, ClipsCritiqued, BestAttemptPropagated, SessionFinished, VideoJudged, BackendFailed, CommandFailed, ResultDiscarded, ActionEdited,
        VerdictOverridden, RouteRequested, Annotated, BreakpointsSet,
    ],
    Field(discriminator="type"),
]

HUMAN_EVENTS = ("ActionEdited", "VerdictOverridden", "RouteRequested", "Annotated", "BreakpointsSet")

_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def event_from_dict(data: dict[str, Any]) -> Event:
    return _adapter.validate_python(data)


def event_from_json(text: str | bytes) -> Event:
    return _adapter.validate_json(text)


def event_to_dict(event: EventBase) -> dict[str, Any]:
    return event.model_dump(mode="json")


def event_to_json(event: EventBase) -> str:
    return event.model_dump_json()


def attempt_target(step: int, attempt: int) -> str:
    """How an annotation or a person names one attempt: "step:<t>/attempt:<j>"."""
    return f"step:{step}/attempt:{attempt}"


_ATTEMPT_TARGET = re.compile(r"step:([0-9]+)/attempt:([0-9]+)")


def parse_attempt_target(target: object) -> tuple[int, int]:
    """(step, attempt) of "step:<t>/attempt:<j>" (as `attempt_target` writes it); ValueError with the expected
    form for anything else, "session" included."""
    match = _ATTEMPT_TARGET.fullmatch(target) if isinstance(target, str) else None
    if match is None:
        raise ValueError(f"pick an attempt (like {attempt_target(1, 1)!r}), not {target!r}")
    return int(match.group(1)), int(match.group(2))


def artifacts_in(value: Any) -> Iterator[Artifact]:
    """Every Artifact inside an event (or any model, list or dict), however deeply nested. Walking the
    fields by type means a new artifact field is recorded, exported and kept on delete without a change
    anywhere else."""
    if isinstance(value, Artifact):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from artifacts_in(getattr(value, name))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from artifacts_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from artifacts_in(item)

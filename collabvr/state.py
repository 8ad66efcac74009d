"""The state of a session, as a fold over its events. Nothing but the event log is the truth.

`fold(events)` replays the log from the start; `apply(state, event)` adds one event to a state, so a
driver can keep its state current while it appends. Both are pure bookkeeping: no model calls, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Literal

from collabvr.backends import Plan, RouteDecision, Verdict
from collabvr.config import Breakpoint, LoopConfig
from collabvr.events import (
    ActionEdited, Annotated, Artifact, BackendFailed, BestAttemptPropagated, BreakpointsSet, ClipGenerated,
    ClipsCritiqued, ClipsSelected, ClipVerified, VideoJudged, CommandFailed, CostSummary, Event, PromptEvolved, ResultDiscarded, RouteRequested, Routed,
    SessionFinished, SessionStarted, StartPoint, StepAccepted, StepPlanned, UsageInfo, VerdictOverridden,
)
from collabvr.status import status_after


StepStatus = Literal["open", "accepted", "propagated", "split"]


@dataclass
class AttemptState:
    number: int
    generated: ClipGenerated
    verified: ClipVerified | None = None
    override: VerdictOverridden | None = None
    decided_seq: int = 0  # sequence number of the event that set the effective verdict (verify or override)

    @property
    def purpose(self) -> str:
        return self.generated.purpose

    @property
    def prompt(self) -> str:
        return self.generated.prompt

    @property
    def vlm_verdict(self) -> Verdict | None:
        return self.verified.verdict if self.verified else None

    @property
    def effective_verdict(self) -> Literal["accept", "reject"] | None:
        """The human override if there is one, else the VLM's verdict (None until verified)."""
        if self.override is not None:
            return self.override.verdict
        return self.vlm_verdict.verdict if self.vlm_verdict else None

    @property
    def candidate_frames(self) -> int:
        return self.generated.prefix_frames + self.generated.n_frames

    @property
    def good_fraction(self) -> float:
        """Share of the candidate clip that was right. A human reject of a VLM accept gives no fraction:
        the whole clip is treated as suspect (0.0) so the retry starts over."""
        verdict = self.vlm_verdict
        if verdict is None or verdict.good_fraction is None or self.override is not None:
            return 0.0
        return verdict.good_fraction

    @property
    def suggestion(self) -> str:
        """What to append to the prompt for the next try: the person's suggestion if they overrode, else
        the verifier's."""
        if self.override is not None:
            return self.override.suggestion
        return self.vlm_verdict.suggestion if self.vlm_verdict else ""

    @property
    def reason(self) -> str:
        """Why the effective verdict is what it is: the person's reason if they overrode (the VLM's reason
        argued for the other verdict), else the verifier's."""
        if self.override is not None:
            return self.override.reason or f"{self.override.actor} overrode the verdict to {self.override.verdict}"
        return self.vlm_verdict.reason if self.vlm_verdict else ""


@dataclass
class RouteState:
    """A routing decision for a step, by the VLM router or by a person, and whether it has been carried out."""

    decision: RouteDecision
    by: Literal["vlm", "human"]
    after_attempt: int
    attempt: int | None = None  # regen: whose frames are kept
    frame_index: int | None = None  # regen: where to start
    evolved: bool = False  # its suggestion (or, for fallback, the switch to the task prompt) is applied
    executed: bool = False
    superseded: bool = False  # a later route (a person's) replaced it before it was carried out
    seq: int = 0  # sequence number of the event that decided it


@dataclass
class StepState:
    number: int
    planned: StepPlanned
    start_frame: Artifact
    instruction: str
    attempts: list[AttemptState] = field(default_factory=list)
    status: StepStatus = "open"
    result_attempt: int | None = None
    result_clip: Artifact | None = None
    result_last_frame: Artifact | None = None
    result_by: str | None = None
    routes: list[RouteState] = field(default_factory=list)
    vlm_routed: bool = False
    evolved_after: set[int] = field(default_factory=set)  # attempts whose suggestion has been applied
    evolutions: dict[int, PromptEvolved] = field(default_factory=dict)  # the latest evolution after each attempt
    decided_since_verify: bool = True  # False between a ClipVerified and the engine's decision on it
    prompt_history: list[tuple[str, str]] = field(default_factory=list)  # (source, text), oldest first
    selection: ClipsSelected | None = None  # Pass@k: the selector's pick
    critiques: list[ClipsCritiqued] = field(default_factory=list)  # VideoTPO: one per round, in order

    @property
    def plan(self) -> Plan:
        return self.planned.plan

    @property
    def is_split_sub_step(self) -> bool:
        return self.planned.split_of is not None

    @property
    def normal_attempts(self) -> int:
        return sum(1 for a in self.attempts if a.purpose == "attempt")

    @property
    def last_attempt(self) -> AttemptState | None:
        return self.attempts[-1] if self.attempts else None

    def attempt(self, number: int) -> AttemptState:
        for a in self.attempts:
            if a.number == number:
                return a
        raise KeyError(f"step {self.number} has no attempt {number}")

    @property
    def pending_route(self) -> RouteState | None:
        """The route decided but not yet carried out. Only the latest can be pending: a new route (a
        person's) supersedes one that was waiting."""
        for route in reversed(self.routes):
            if not route.executed and not route.superseded:
                return route
        return None

    @property
    def last_route_seq(self) -> int:
        return self.routes[-1].seq if self.routes else 0

    @property
    def resolved(self) -> bool:
        return self.status != "open"


@dataclass
class SessionState:
    started: SessionStarted
    config: LoopConfig
    breakpoints: tuple[Breakpoint, ...]
    max_steps: int
    current_frame: Artifact
    steps: list[StepState] = field(default_factory=list)
    seq: int = 0  # number of events folded
    finished: SessionFinished | None = None
    judged: VideoJudged | None = None  # a benchmark's rubric judge's grade of the final video (not in the cost)
    failures: list[BackendFailed | CommandFailed] = field(default_factory=list)  # consecutive, since the last success
    failed_calls: dict[tuple[str, int | None, int | None], int] = field(default_factory=dict)  # (role, step, attempt)
    annotations: list[Annotated] = field(default_factory=list)
    human_events: list[Event] = field(default_factory=list)
    split_budget: tuple[int, int, int] | None = None  # (split step, first sub-step, sub-steps)
    vgm_seconds: float = 0.0
    clips: int = 0
    unused_generations: int = 0
    frame_seconds: float = 0.0
    vlm_calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    wall_s: float = 0.0
    gate_wait_s: float = 0.0
    inherited_cost: CostSummary | None = None  # a fork: what its parent had spent at the fork point
    status: str = "new"  # by the rule of collabvr.status, kept as events are folded

    @property
    def session_id(self) -> str:
        return self.started.session_id

    @property
    def task_prompt(self) -> str:
        return self.started.task.prompt

    @property
    def current_step(self) -> StepState | None:
        return self.steps[-1] if self.steps else None

    def step(self, number: int) -> StepState:
        for s in self.steps:
            if s.number == number:
                return s
        raise KeyError(f"session has no step {number}")

    @property
    def trajectory(self) -> list[Artifact]:
        """The clips the final video is made of, in order."""
        return [s.result_clip for s in self.steps if s.result_clip is not None]

    @property
    def cost(self) -> CostSummary:
        """Everything spent on this session's log, a fork's inherited part included."""
        return CostSummary(vgm_seconds=round(self.vgm_seconds, 6), clips=self.clips,
                           unused_generations=self.unused_generations, frame_seconds=round(self.frame_seconds, 6),
                           vlm_calls=self.vlm_calls, input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                           wall_s=round(self.wall_s, 6), gate_wait_s=round(self.gate_wait_s, 6))

    @property
    def own_cost(self) -> CostSummary:
        """What this session spent itself: for a fork, the total less what it inherited from its parent."""
        if self.inherited_cost is None:
            return self.cost
        return self.cost.minus(self.inherited_cost)


def fold(events: Iterable[Event]) -> SessionState:
    """Replay a session's events into its state. The first event must be SessionStarted."""
    state: SessionState | None = None
    for event in events:
        if state is None:
            if not isinstance(event, SessionStarted):
                raise ValueError(f"a session must start with SessionStarted, not {event.type}")
            state = SessionState(started=event, config=event.config, breakpoints=event.config.breakpoints,
                                 max_steps=event.config.n_max, current_frame=event.input_image, seq=1)
            continue
        apply(state, event)
    if state is None:
        raise ValueError("no events: a session must start with SessionStarted")
    return state


def apply(state: SessionState, event: Event) -> SessionState:
    """Add one event to `state` (in place) and return it."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise ValueError(f"{event.type} cannot appear after the start of a session")
    handler(state, event)
    state.seq += 1
    state.status = status_after(state.status, (event,))
    if event.actor == "engine" and not isinstance(event, (BackendFailed, CommandFailed, ResultDiscarded)):
        state.failures = []
    fork = state.started.fork
    if fork is not None and state.seq == (fork.inherited_events or fork.at_seq):
        state.inherited_cost = state.cost
    return state


def _add_usage(state: SessionState, usage: UsageInfo | None) -> None:
    if usage is None:
        return
    state.vlm_calls += usage.calls
    state.wall_s += usage.latency_s
    _add_tokens(state, usage.input_tokens, usage.output_tokens)


def _add_generation(state: SessionState, seconds: float, wall_s: float, gate_wait_s: float) -> None:
    state.vgm_seconds += seconds
    state.wall_s += wall_s
    state.gate_wait_s += gate_wait_s


def _add_tokens(state: SessionState, input_tokens: int | None, output_tokens: int | None) -> None:
    if input_tokens is not None:
        state.input_tokens = (state.input_tokens or 0) + input_tokens
    if output_tokens is not None:
        state.output_tokens = (state.output_tokens or 0) + output_tokens


def _on_planned(state: SessionState, event: StepPlanned) -> None:
    _add_usage(state, event.usage)
    state.max_steps = event.max_steps
    step = StepState(number=event.step, planned=event, start_frame=state.current_frame,
                     instruction=event.plan.instruction)
    step.prompt_history.append(("planner", event.plan.instruction))
    state.steps.append(step)


def _on_generated(state: SessionState, event: ClipGenerated) -> None:
    step = state.step(event.step)
    step.attempts.append(AttemptState(number=event.attempt, generated=event))
    _add_generation(state, event.seconds, event.wall_s, event.gate_wait_s)
    state.frame_seconds += event.frame_seconds if event.frame_seconds is not None else event.n_frames / event.fps
    state.clips += 1
    route = step.pending_route
    if route is not None and event.purpose in ("regen", "fallback"):
        route.executed = True


def _on_verified(state: SessionState, event: ClipVerified) -> None:
    step = state.step(event.step)
    attempt = step.attempt(event.attempt)
    attempt.verified = event
    attempt.decided_seq = state.seq + 1
    step.decided_since_verify = False
    _add_usage(state, event.usage)


def _on_selected(state: SessionState, event: ClipsSelected) -> None:
    state.step(event.step).selection = event
    _add_usage(state, event.usage)


def _on_critiqued(state: SessionState, event: ClipsCritiqued) -> None:
    step = state.step(event.step)
    step.critiques.append(event)
    step.instruction = event.after
    step.prompt_history.append(("critic", event.after))
    _add_usage(state, event.usage)


def _on_evolved(state: SessionState, event: PromptEvolved) -> None:
    step = state.step(event.step)
    step.instruction = event.after
    step.evolved_after.add(event.after_attempt)
    step.evolutions[event.after_attempt] = event
    route = step.pending_route
    if route is not None and event.source == "router":
        route.evolved = True
    step.decided_since_verify = True
    step.prompt_history.append((event.source, event.after))


def _on_routed(state: SessionState, event: Routed) -> None:
    step = state.step(event.step)
    step.vlm_routed = True
    step.decided_since_verify = True
    _add_usage(state, event.usage)
    _start_route(state, step, RouteState(decision=event.decision, by="vlm", after_attempt=event.after_attempt,
                                         attempt=event.after_attempt))


def _on_route_requested(state: SessionState, event: RouteRequested) -> None:
    step = state.step(event.step)
    _reopen(state, step)
    step.decided_since_verify = True
    decision = RouteDecision(action=event.action, estimated_steps=event.estimated_steps,
                             suggestion=event.suggestion, reason=event.reason or "requested by a person")
    last = step.last_attempt
    _start_route(state, step, RouteState(decision=decision, by="human",
                                         after_attempt=last.number if last else 0,
                                         attempt=event.attempt, frame_index=event.frame_index))
    state.human_events.append(event)


def _start_route(state: SessionState, step: StepState, route: RouteState) -> None:
    for earlier in step.routes:
        if not earlier.executed:
            earlier.superseded = True
    route.seq = state.seq + 1
    step.routes.append(route)
    if route.decision.action == "split":
        # The residual task is re-planned over `estimated_steps` more steps; the limit never shrinks.
        sub_steps = route.decision.estimated_steps or 2
        route.executed = True
        step.status = "split"
        state.max_steps = max(state.max_steps, step.number + sub_steps)
        state.split_budget = (step.number, step.number + 1, sub_steps)


def _on_accepted(state: SessionState, event: StepAccepted) -> None:
    step = state.step(event.step)
    _resolve(state, step, "accepted", event.attempt, event.clip, event.last_frame, event.by)


def _on_propagated(state: SessionState, event: BestAttemptPropagated) -> None:
    step = state.step(event.step)
    _resolve(state, step, "propagated", event.attempt, event.clip, event.last_frame, "engine")


def _resolve(state: SessionState, step: StepState, status: StepStatus, attempt: int, clip: Artifact,
             last_frame: Artifact, by: str) -> None:
    step.status = status
    step.result_attempt = attempt
    step.result_clip = clip
    step.result_last_frame = last_frame
    step.result_by = by
    step.decided_since_verify = True
    state.current_frame = last_frame


def _reopen(state: SessionState, step: StepState) -> None:
    """A person's decision on the latest step after it was resolved puts it back in play."""
    if step.status in ("accepted", "propagated"):
        step.status = "open"
        step.result_attempt = step.result_clip = step.result_last_frame = step.result_by = None
        state.current_frame = step.start_frame


def _on_finished(state: SessionState, event: SessionFinished) -> None:
    state.finished = event


def _on_judged(state: SessionState, event: VideoJudged) -> None:
    state.judged = event


def _on_failed(state: SessionState, event: BackendFailed) -> None:
    state.failures.append(event)
    key = (event.role, event.step, event.attempt)
    state.failed_calls[key] = state.failed_calls.get(key, 0) + 1
    _add_usage(state, event.usage)
    _add_generation(state, event.vgm_seconds, event.wall_s, event.gate_wait_s)
    if event.role == "generate":
        state.unused_generations += 1


def _on_command_failed(state: SessionState, event: CommandFailed) -> None:
    state.failures.append(event)


def _on_discarded(state: SessionState, event: ResultDiscarded) -> None:
    _add_usage(state, event.usage)
    _add_generation(state, event.vgm_seconds, event.wall_s, event.gate_wait_s)
    if event.role == "generate":
        state.unused_generations += 1


def _on_edited(state: SessionState, event: ActionEdited) -> None:
    step = state.step(event.step)
    step.instruction = event.after
    last = step.last_attempt
    if last is not None:
        # The person's text replaces whatever evolution the last verdict would have made.
        step.evolved_after.add(last.number)
    step.prompt_history.append(("human", event.after))
    state.human_events.append(event)


def _on_overridden(state: SessionState, event: VerdictOverridden) -> None:
    step = state.step(event.step)
    _reopen(state, step)
    attempt = step.attempt(event.attempt)
    attempt.override = event
    attempt.decided_seq = state.seq + 1
    step.decided_since_verify = True
    if event.verdict == "reject" and event.suggestion and attempt is step.last_attempt:
        # The person's suggestion is applied even when the verifier's was already: it replaces it.
        step.evolved_after.discard(attempt.number)
    state.human_events.append(event)


def _on_annotated(state: SessionState, event: Annotated) -> None:
    state.annotations.append(event)


def _on_breakpoints(state: SessionState, event: BreakpointsSet) -> None:
    state.breakpoints = event.breakpoints
    state.human_events.append(event)


_HANDLERS = {
    StepPlanned: _on_planned,
    ClipGenerated: _on_generated,
    ClipVerified: _on_verified,
    PromptEvolved: _on_evolved,
    Routed: _on_routed,
    RouteRequested: _on_route_requested,
    StepAccepted: _on_accepted,
    ClipsSelected: _on_selected,
    ClipsCritiqued: _on_critiqued,
    BestAttemptPropagated: _on_propagated,
    SessionFinished: _on_finished,
    VideoJudged: _on_judged,
    BackendFailed: _on_failed,
    CommandFailed: _on_command_failed,
    ResultDiscarded: _on_discarded,
    ActionEdited: _on_edited,
    VerdictOverridden: _on_overridden,
    Annotated: _on_annotated,
    BreakpointsSet: _on_breakpoints,
}


def start_point_for_next_attempt(state: SessionState, step: StepState) -> StartPoint:
    """Where the next attempt of `step` starts.

    A pending regen (router or person) starts from its frame; otherwise, after a reject whose good_fraction
    exceeds the threshold, from the first failing frame of that attempt (partial regeneration); otherwise
    from the step's conditioning frame.
    """
    route = step.pending_route
    if route is not None and route.decision.action == "regen":
        source = step.attempt(route.attempt) if route.attempt else step.last_attempt
        if source is None:
            return StartPoint(kind="step_start")
        index = route.frame_index
        if index is None:
            index = first_failing_frame(source)
        index = min(max(index, 0), source.candidate_frames - 1)
        return StartPoint(kind="partial", from_attempt=source.number, frame_index=index) if index > 0 \
            else StartPoint(kind="step_start")
    if route is not None and route.decision.action == "fallback":
        return StartPoint(kind="step_start")
    last = step.last_attempt
    if last is None or last.effective_verdict != "reject":
        return StartPoint(kind="step_start")
    if last.good_fraction > state.config.partial_regen_threshold:
        index = first_failing_frame(last)
        if index > 0:
            return StartPoint(kind="partial", from_attempt=last.number, frame_index=index)
    return StartPoint(kind="step_start")


def first_failing_frame(attempt: AttemptState) -> int:
    """The first failing frame of the attempt's candidate clip (see `failing_frame_index`)."""
    return failing_frame_index(attempt.candidate_frames, attempt.good_fraction)


def failing_frame_index(n_frames: int, good_fraction: float) -> int:
    """The method's first failing frame, `int(n_frames * good_fraction)`, clamped into the clip.

    Computed in integer arithmetic on the fraction the float stands for (the closest fraction with a
    denominator up to a million), because the float product is one frame early whenever
    `good_fraction = k / n` is stored a hair below k / n (about 4% of such pairs).
    """
    if n_frames < 1:
        raise ValueError(f"a clip has at least one frame, not {n_frames}")
    if not 0.0 <= good_fraction <= 1.0:
        raise ValueError(f"good_fraction must be within [0, 1], not {good_fraction!r}")
    fraction = Fraction(good_fraction).limit_denominator(1_000_000)
    return min(n_frames * fraction.numerator // fraction.denominator, n_frames - 1)

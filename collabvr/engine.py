"""The driver: executes `next_command` against the backends and appends what happened to the event log.

`Engine.step()` runs one command, `Engine.run()` runs until the session finishes, pauses at a breakpoint
or a failure, or is stopped. People's decisions (`edit_action`, `override_verdict`, `request_route`,
`annotate`, `set_breakpoints`) are validated here and appended as events; the loop follows them because
it only ever reads the log.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr.backends import (
    VGM, VLM, BackendError, ClipView, GenerateRequest, HistoryItem, PlanRequest, RouteRequest, SplitContext,
    VerifyRequest,
)
from collabvr.config import BREAKPOINTS, Breakpoint, LoopConfig
from collabvr.events import (
    ActionEdited, Annotated, Artifact, BackendFailed, BackendLabel, BestAttemptPropagated, BreakpointsSet,
    ClipGenerated, ClipVerified, Event, ForkOrigin, PromptEvolved, RouteRequested, Routed, SessionFinished,
    SessionStarted, StepAccepted, StepPlanned, TaskSpec, UsageInfo, VerdictOverridden, attempt_target,
    parse_attempt_target,
)
from collabvr.loop import Command, Kind, clip_seconds, next_command, split_context
from collabvr.state import AttemptState, SessionState, StepState, apply, fold, start_point_for_next_attempt
from collabvr.store import EventStore, SequenceConflict


Judge = Callable[[np.ndarray], bool]
ProgressFn = Callable[[str, int, int], None]

MAX_PROMPT_CHARS = 4000
_BACKEND_ROLES = {Kind.PLAN: "plan", Kind.GENERATE: "generate", Kind.VERIFY: "verify", Kind.ROUTE: "route"}


class DecisionError(ValueError):
    """A person's decision does not fit the session's current state; the message says why."""


def derive_seed(session_seed: int, *parts: object) -> int:
    """A stable 31-bit seed for one backend call: a retry of the same step/attempt gets its own seed, a
    rerun of the whole session gets the same ones."""
    text = ":".join(str(p) for p in (session_seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def check_prompt(prompt: str, what: str = "prompt") -> str:
    text = prompt.strip()
    if not text:
        raise DecisionError(f"the {what} is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise DecisionError(f"the {what} has {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed")
    return text


@dataclass
class StepResult:
    command: Command
    events: list[Event]


class Engine:
    """Runs one session. Safe to share between threads: commands and decisions are serialised by a lock,
    and the store's sequence check catches writers in other processes."""

    def __init__(self, store: EventStore, artifacts: ArtifactFolder, vlm: VLM, vgm: VGM, session_id: str,
                 judge: Judge | None = None) -> None:
        self.store = store
        self.artifacts = artifacts
        self.vlm = vlm
        self.vgm = vgm
        self.session_id = session_id
        self.judge = judge
        self._lock = threading.RLock()
        self._stop = threading.Event()  # cancels a generation in flight and ends run()
        self._pause = threading.Event()  # ends run() after the current command
        self._state = fold(store.read(session_id))

    # ----- creation -----------------------------------------------------------------------------------
    @classmethod
    def start(cls, store: EventStore, artifacts: ArtifactFolder, vlm: VLM, vgm: VGM, *, task: TaskSpec,
              input_image: np.ndarray, config: LoopConfig | None = None, seed: int = 0,
              session_id: str | None = None, title: str = "", judge: Judge | None = None,
              vlm_label: BackendLabel | None = None, vgm_label: BackendLabel | None = None) -> "Engine":
        """Record a new session and return its engine. The labels say how to rebuild the backends when the
        session is resumed elsewhere (see collabvr.backends.registry); without them it can only run in-process."""
        check_prompt(task.prompt, "task prompt")
        frame = media.as_uint8_frames([input_image])[0]
        started = SessionStarted(
            session_id=session_id or uuid.uuid4().hex[:12], title=title or task.prompt[:80], task=task,
            config=config or LoopConfig(), seed=seed, input_image=artifacts.put_frame(frame),
            vlm=vlm_label or BackendLabel(name=vlm.info.name, simulated=vlm.info.simulated),
            vgm=vgm_label or BackendLabel(name=vgm.info.name, simulated=vgm.info.simulated),
        )
        store.create(started)
        return cls(store, artifacts, vlm, vgm, started.session_id, judge=judge)

    @staticmethod
    def fork(store: EventStore, session_id: str, at_seq: int, new_session_id: str | None = None) -> str:
        """A new session holding the first `at_seq` events of `session_id` (artifacts are shared by hash).
        The original is untouched. Returns the new session's id."""
        events = store.read(session_id)
        if not 1 <= at_seq <= len(events):
            raise DecisionError(f"fork point must be between 1 and {len(events)} events, not {at_seq}")
        first = events[0]
        assert isinstance(first, SessionStarted)
        new_id = new_session_id or uuid.uuid4().hex[:12]
        started = first.model_copy(update={
            "session_id": new_id, "title": f"{first.title} (fork @{at_seq})",
            "fork": ForkOrigin(parent_session=session_id, at_seq=at_seq), "at": time.time()})
        store.create(started)
        rest = [e for e in events[1:at_seq] if not isinstance(e, SessionFinished)]
        if rest:
            store.append(new_id, rest, expected_seq=1)
        return new_id

    # ----- reading ------------------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        with self._lock:
            self._refresh()
            return self._state

    def next_command(self) -> Command:
        return next_command(self.state)

    def _refresh(self) -> None:
        newer = self.store.read(self.session_id, since=self._state.seq)
        for event in newer:
            apply(self._state, event)

    # ----- running ------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop now: a generation in flight is cancelled (recorded as a failed, retryable generation) and
        `run()` returns."""
        self._stop.set()

    def pause(self) -> None:
        """Let the command in flight finish, then return from `run()`."""
        self._pause.set()

    def step(self, progress: ProgressFn | None = None) -> StepResult:
        """Run one command. A command held by a breakpoint or a failure runs anyway: a person asked for it."""
        with self._lock:
            self._stop.clear()
            self._pause.clear()
            self._refresh()
            command = next_command(self._state)
            if command.kind is Kind.WAIT and command.held is not None:
                command = command.held
            return self._execute(command, progress)

    def run(self, progress: ProgressFn | None = None, max_commands: int = 500) -> SessionState:
        """Run until finished, a breakpoint, a failure that needs a person, or `stop()`. The first command
        runs even if held (like a debugger's continue)."""
        self._stop.clear()
        self._pause.clear()
        for index in range(max_commands):
            with self._lock:
                self._refresh()
                command = next_command(self._state)
                if command.kind is Kind.DONE:
                    break
                if command.kind is Kind.WAIT:
                    if index > 0 or command.held is None:
                        break
                    command = command.held
                self._execute(command, progress)
            if self._stop.is_set() or self._pause.is_set():
                break
        return self.state

    def _execute(self, command: Command, progress: ProgressFn | None) -> StepResult:
        if command.kind is Kind.DONE:
            return StepResult(command, [])
        if progress:
            progress(command.describe(), 0, 1)
        handler = {
            Kind.PLAN: self._plan, Kind.GENERATE: self._generate, Kind.VERIFY: self._verify,
            Kind.EVOLVE: self._evolve, Kind.ROUTE: self._route, Kind.ACCEPT: self._accept,
            Kind.PROPAGATE: self._propagate, Kind.FINISH: self._finish,
        }[command.kind]
        if command.kind in _BACKEND_ROLES:
            try:
                events = handler(command, progress)
            except Exception as exc:  # a broken backend is reported, never turned into a made-up result
                events = [self._failure(command, exc)]
        else:
            events = handler(command, progress)
        self._append(command, events)
        return StepResult(command, events)

    def _failure(self, command: Command, exc: Exception) -> BackendFailed:
        role = _BACKEND_ROLES[command.kind]
        message = str(exc) or exc.__class__.__name__
        return BackendFailed(role=role, step=command.step, attempt=command.attempt, error=type(exc).__name__,
                             message=message, retryable=bool(getattr(exc, "retryable", False)))

    def _append(self, command: Command, events: list[Event]) -> None:
        try:
            self.store.append(self.session_id, events, expected_seq=self._state.seq)
        except SequenceConflict:
            # Someone (a person in another tab, another process) appended while we worked. Keep our
            # result only if the loop would still run the same command; otherwise their decision wins.
            self._refresh()
            again = next_command(self._state)
            again = again.held if again.kind is Kind.WAIT and again.held is not None else again
            if (again.kind, again.step, again.attempt) != (command.kind, command.step, command.attempt):
                return
            self.store.append(self.session_id, events, expected_seq=self._state.seq)
        for event in events:
            apply(self._state, event)

    # ----- commands -----------------------------------------------------------------------------------
    def _seed(self, *parts: object) -> int:
        return derive_seed(self._state.started.seed, *parts)

    def _input_image(self) -> np.ndarray:
        return self.artifacts.load_frame(self._state.started.input_image)

    def _plan(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        state = self._state
        t = command.step or 1
        split = split_context(state, t)
        history = [HistoryItem(step=s.number, instruction=s.instruction, outcome=s.status)
                   for s in state.steps if s.resolved]
        request = PlanRequest(
            task_prompt=state.task_prompt, input_image=self._input_image(),
            current_frame=self.artifacts.load_frame(state.current_frame), history=history, step=t,
            max_steps=state.max_steps, seed=self._seed(t, "plan"),
            split=SplitContext(failed_instruction=state.step(split[0]).instruction, sub_step=split[1],
                               sub_steps=split[2]) if split else None,
        )
        started = time.perf_counter()
        reply = self.vlm.plan(request)
        usage = _usage(reply.usage, time.perf_counter() - started)
        return [StepPlanned(step=t, max_steps=state.max_steps, plan=reply.value, usage=usage,
                            split_of=split[0] if split else None, sub_step=split[1] if split else None,
                            sub_steps=split[2] if split else None)]

    def _generate(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        state = self._state
        step = state.step(command.step or 0)
        start = start_point_for_next_attempt(state, step)
        seconds = clip_seconds(state, step, command.purpose)
        if start.kind == "partial":
            source = step.attempt(start.from_attempt or 0)
            frames = self.artifacts.load_clip(source.generated.candidate)
            prefix = media.trim_prefix(frames, start.frame_index or 0)
            image = frames[start.frame_index or 0]
        else:
            prefix = None
            image = self.artifacts.load_frame(step.start_frame)
        seed = self._seed(step.number, command.attempt, "generate")
        report = (lambda done, total: progress(command.describe(), done, total)) if progress else None
        started = time.perf_counter()
        clip = self.vgm.generate(GenerateRequest(image=image, prompt=step.instruction, seconds=seconds, seed=seed,
                                                 progress=report, cancel=self._stop))
        wall = time.perf_counter() - started
        frames = media.as_uint8_frames(clip.frames)
        if len(frames) < 2:
            raise BackendError(f"the VGM returned {len(frames)} frame(s); a clip needs at least 2")
        clip_artifact = self.artifacts.put_clip(frames, clip.fps)
        if prefix is not None and len(prefix):
            if prefix.shape[1:] != frames.shape[1:]:
                raise BackendError(f"the VGM returned frames of size {frames.shape[2]}x{frames.shape[1]}, "
                                   f"but the clip it continues is {prefix.shape[2]}x{prefix.shape[1]}")
            candidate = self.artifacts.put_clip(media.concatenate([prefix, frames]), clip.fps)
        else:
            candidate = clip_artifact
        return [ClipGenerated(
            step=step.number, attempt=command.attempt or 1, purpose=command.purpose,  # type: ignore[arg-type]
            prompt=step.instruction, start=start, start_frame=self.artifacts.put_frame(image), clip=clip_artifact,
            candidate=candidate, n_frames=len(frames), prefix_frames=0 if prefix is None else len(prefix),
            fps=clip.fps, seconds=round(len(frames) / clip.fps, 6),
            first_frame_ssim=round(media.first_frame_ssim(image, frames[0]), 4), seed=seed, wall_s=round(wall, 4),
            info=_jsonable(clip.info),
        )]

    def _clip_view(self, attempt: AttemptState) -> ClipView:
        frames = self.artifacts.load_clip(attempt.generated.candidate)
        indices = media.sample_indices(len(frames), attempt.generated.fps, self._state.config.verifier_fps)
        return ClipView(frames=[frames[i] for i in indices], indices=indices, n_frames=len(frames),
                        fps=attempt.generated.fps, path=self.artifacts.path(attempt.generated.candidate))

    def _verify(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        state = self._state
        step = state.step(command.step or 0)
        attempt = step.attempt(command.attempt or 0)
        view = self._clip_view(attempt)
        request = VerifyRequest(task_prompt=state.task_prompt, input_image=self._input_image(),
                                instruction=attempt.prompt, target_state=step.plan.target_state, clip=view,
                                seed=self._seed(step.number, attempt.number, "verify"))
        started = time.perf_counter()
        reply = self.vlm.verify(request)
        verdict = reply.value
        failing = None
        if verdict.verdict == "reject":
            failing = media.frame_index_at_fraction(view.n_frames, verdict.good_fraction or 0.0)
        return [ClipVerified(step=step.number, attempt=attempt.number, verdict=verdict, sampled_indices=view.indices,
                             first_failing_frame=failing, usage=_usage(reply.usage, time.perf_counter() - started))]

    def _evolve(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        """Rule 5: instruction + " " + suggestion, no extra VLM call. A pending fallback switches to the
        whole task prompt (plus the router's suggestion)."""
        state = self._state
        step = state.step(command.step or 0)
        last = step.attempt(command.attempt or 0)
        route = step.pending_route
        if route is not None and not route.evolved:
            suggestion = route.decision.suggestion.strip()
            base = state.task_prompt if route.decision.action == "fallback" else step.instruction
            source = "router"
        else:
            suggestion = last.suggestion.strip()
            base = step.instruction
            source = "override" if last.override is not None else "verifier"
        after = f"{base} {suggestion}".strip()
        return [PromptEvolved(step=step.number, after_attempt=last.number, source=source,  # type: ignore[arg-type]
                              before=step.instruction, after=after, suggestion=suggestion)]

    def _route(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        state = self._state
        step = state.step(command.step or 0)
        last = step.attempt(command.attempt or 0)
        verdict = last.vlm_verdict
        request = RouteRequest(
            task_prompt=state.task_prompt, input_image=self._input_image(), instruction=last.prompt,
            clip=self._clip_view(last), reason=verdict.reason if verdict else "",
            suggestion=last.suggestion, good_fraction=last.good_fraction, step=step.number,
            max_steps=state.max_steps, seed=self._seed(step.number, "route"))
        started = time.perf_counter()
        reply = self.vlm.route(request)
        return [Routed(step=step.number, after_attempt=last.number, decision=reply.value,
                       usage=_usage(reply.usage, time.perf_counter() - started))]

    def _result_frame(self, attempt: AttemptState) -> Artifact:
        frames = self.artifacts.load_clip(attempt.generated.candidate)
        return self.artifacts.put_frame(frames[-1])

    def _accept(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        step = self._state.step(command.step or 0)
        attempt = step.attempt(command.attempt or 0)
        by = "human" if attempt.override is not None else "verifier"
        return [StepAccepted(step=step.number, attempt=attempt.number, clip=attempt.generated.candidate,
                             last_frame=self._result_frame(attempt), by=by)]

    def _propagate(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        """Paper appendix C.2: when no attempt is accepted the best one goes on, so a run never stops
        without video. Best = the largest good_fraction the verifier gave (latest on ties)."""
        step = self._state.step(command.step or 0)
        best = max(step.attempts, key=lambda a: (a.good_fraction, a.number))
        reason = (f"{command.reason}; propagating attempt {best.number} of {len(step.attempts)} "
                  f"(good_fraction {best.good_fraction:.2f})")
        return [BestAttemptPropagated(step=step.number, attempt=best.number, clip=best.generated.candidate,
                                      last_frame=self._result_frame(best), reason=reason)]

    def _finish(self, command: Command, progress: ProgressFn | None) -> list[Event]:
        state = self._state
        clips = state.trajectory
        if clips:
            frames = media.concatenate([self.artifacts.load_clip(c) for c in clips])
            fps = self._clip_fps(clips[0])
        else:
            # The planner found the task done before any clip: the video is the input frame, held 1 s.
            frame = self.artifacts.load_frame(state.current_frame)
            fps = self.vgm.fps
            frames = np.repeat(frame[None], max(2, int(round(fps))), axis=0)
        video = self.artifacts.put_clip(frames, fps, kind="video")
        success = self.judge(frames) if self.judge is not None else None
        return [SessionFinished(reason=command.reason, final_video=video, n_frames=len(frames), success=success,
                                cost=state.cost)]

    def _clip_fps(self, artifact: Artifact) -> float:
        for step in self._state.steps:
            for attempt in step.attempts:
                if attempt.generated.candidate == artifact:
                    return attempt.generated.fps
        return self.vgm.fps

    # ----- people's decisions ---------------------------------------------------------------------------
    def _decide(self, event: Event) -> Event:
        with self._lock:
            self._refresh()
            self.store.append(self.session_id, [event], expected_seq=self._state.seq)
            apply(self._state, event)
            return event

    def _open_step(self, step_number: int, allow_resolved: bool = False) -> StepState:
        state = self.state
        if state.finished is not None:
            raise DecisionError("the session has finished; fork it from an earlier event to decide differently")
        current = state.current_step
        if current is None or current.number != step_number:
            latest = current.number if current else "none"
            raise DecisionError(f"step {step_number} is not the current step (current: {latest}); "
                                "fork from it to change a past step, or annotate it")
        if current.status == "split":
            raise DecisionError(f"step {step_number} was split into sub-steps; fork from it to decide differently")
        if current.resolved and not allow_resolved:
            raise DecisionError(f"step {step_number} is already resolved")
        return current

    def edit_action(self, step: int, text: str, actor: str, reason: str = "") -> Event:
        """Replace the instruction the next generation of `step` will use."""
        current = self._open_step(step)
        after = check_prompt(text, "edited action")
        return self._decide(ActionEdited(step=step, before=current.instruction, after=after, actor=_who(actor),
                                         reason=reason))

    def override_verdict(self, step: int, attempt: int, verdict: Literal["accept", "reject"], actor: str,
                         reason: str = "", suggestion: str = "") -> Event:
        """Flip the verdict of an attempt of the current step. Reject -> accept advances the step with that
        clip; accept -> reject evolves the prompt (with `suggestion`, if given) and tries again."""
        current = self._open_step(step, allow_resolved=True)
        if verdict not in ("accept", "reject"):
            raise DecisionError(f"verdict must be accept or reject, not {verdict!r}")
        try:
            target = current.attempt(attempt)
        except KeyError:
            raise DecisionError(f"step {step} has no attempt {attempt}") from None
        if target.verified is None:
            raise DecisionError(f"attempt {attempt} of step {step} has not been verified yet")
        return self._decide(VerdictOverridden(step=step, attempt=attempt, verdict=verdict, actor=_who(actor),
                                              reason=reason, suggestion=suggestion.strip()))

    def request_route(self, step: int, action: Literal["regen", "split", "fallback"], actor: str, *,
                      estimated_steps: int | None = None, attempt: int | None = None,
                      frame_index: int | None = None, suggestion: str = "", reason: str = "") -> Event:
        """Route the current step as a person decides: regen from a chosen frame of a chosen attempt (its
        frames before it are kept), split into `estimated_steps` sub-steps, or fallback."""
        current = self._open_step(step, allow_resolved=True)
        if action == "regen":
            source = current.attempt(attempt) if attempt else current.last_attempt
            if source is None:
                raise DecisionError("regen needs an attempt to start from; this step has none yet")
            if frame_index is not None and not 0 <= frame_index < source.candidate_frames:
                raise DecisionError(f"frame {frame_index} is outside attempt {source.number} "
                                    f"(0..{source.candidate_frames - 1})")
            attempt = source.number
        elif action == "split":
            if estimated_steps is None or not 2 <= estimated_steps <= 8:
                raise DecisionError("split needs a number of sub-steps between 2 and 8")
        elif action != "fallback":
            raise DecisionError(f"route action must be regen, split or fallback, not {action!r}")
        return self._decide(RouteRequested(step=step, action=action, estimated_steps=estimated_steps,
                                           attempt=attempt, frame_index=frame_index, actor=_who(actor),
                                           suggestion=suggestion.strip(), reason=reason))

    def annotate(self, target: str, label: Literal["D1", "D2", "D3", "note"], value: int | str, actor: str,
                 reason: str = "") -> Event:
        """Record a reliability label; it never changes the flow."""
        state = self.state
        value = _check_label(state, target, label, value)
        return self._decide(Annotated(target=target, label=label, value=value, actor=_who(actor), reason=reason))

    def set_breakpoints(self, breakpoints: list[str] | tuple[str, ...], actor: str) -> Event:
        unknown = [b for b in breakpoints if b not in BREAKPOINTS]
        if unknown:
            raise DecisionError(f"unknown breakpoint(s) {', '.join(unknown)}; known: {', '.join(BREAKPOINTS)}")
        chosen: tuple[Breakpoint, ...] = tuple(b for b in BREAKPOINTS if b in breakpoints)  # type: ignore[misc]
        return self._decide(BreakpointsSet(breakpoints=chosen, actor=_who(actor)))


def _who(actor: str) -> str:
    name = actor.strip()
    if not name or name == "engine":
        raise DecisionError("a person's decision needs the person's name")
    return name[:80]


def _check_label(state: SessionState, target: str, label: str, value: int | str) -> int | str:
    if label == "note":
        text = str(value).strip()
        if not text:
            raise DecisionError("a note is empty")
        return text[:4000]
    if label == "D1":
        if target != "session":
            raise DecisionError("D1 (plan depth) is a label of the whole session: target must be 'session'")
        try:
            depth = int(value)
        except (TypeError, ValueError):
            raise DecisionError(f"D1 plan depth must be a whole number, not {value!r}") from None
        if not 1 <= depth <= 12:
            raise DecisionError("D1 plan depth must be between 1 and 12")
        return depth
    attempt = _attempt_for_target(state, target)
    if label == "D2":
        if value not in ("accept", "reject"):
            raise DecisionError(f"D2 must be accept or reject, not {value!r}")
        return value
    if label == "D3":
        if not (attempt.vlm_verdict and attempt.vlm_verdict.suggestion):
            raise DecisionError(f"{target} has no suggestion to rate")
        try:
            rating = int(value)
        except (TypeError, ValueError):
            raise DecisionError(f"D3 rating must be 1, 2 or 3, not {value!r}") from None
        if rating not in (1, 2, 3):
            raise DecisionError(f"D3 rating must be 1, 2 or 3, not {rating}")
        return rating
    raise DecisionError(f"unknown label {label!r}; use D1, D2, D3 or note")


def _attempt_for_target(state: SessionState, target: str) -> AttemptState:
    try:
        step_number, attempt_number = parse_attempt_target(target)
        attempt = state.step(step_number).attempt(attempt_number)
    except (ValueError, KeyError):
        raise DecisionError(f"{target!r} is not an attempt of this session "
                            f"(write it as {attempt_target(1, 1)!r})") from None
    if attempt.verified is None:
        raise DecisionError(f"{target} has not been verified yet")
    return attempt


def _usage(usage: object, measured: float) -> UsageInfo:
    info = UsageInfo.of(usage)  # type: ignore[arg-type]
    if not info.latency_s:
        info = info.model_copy(update={"latency_s": round(measured, 4)})
    return info


def _jsonable(value: object) -> object:
    """Backend info dicts go into events: keep only what JSON can hold."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)

"""The driver: executes `next_command` against the backends and appends what happened to the event log.

`Engine.step()` runs one command, `Engine.run()` runs until the session finishes, pauses at a breakpoint
or a failure, or is stopped. People's decisions (`edit_action`, `override_verdict`, `request_route`,
`annotate`, `set_breakpoints`) are validated here and appended as events; the loop follows them because
it only ever reads the log.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from collabvr import media
from collabvr.artifacts import ArtifactFolder, ArtifactMissing
from collabvr.backends import (
    VGM, VLM, BackendError, ClipView, Critic, CritiqueRequest, GenerateRequest, HistoryItem, Plan, PlanRequest,
    RouteRequest, SelectRequest, SplitContext, VerifyRequest,
)
from collabvr.backends.gate import GPUGate
from collabvr.config import LoopConfig
from collabvr.decisions import (  # noqa: F401  (DecisionError, check_prompt, MAX_PROMPT_CHARS: re-exported)
    MAX_PROMPT_CHARS, DecisionError, check_prompt, make_breakpoints, make_edit, make_label, make_override,
    make_route,
)
from collabvr.events import (
    Artifact, BackendFailed, BackendLabel, BestAttemptPropagated, ClipGenerated, ClipsCritiqued, ClipsSelected,
    ClipVerified, CommandFailed, Event,
    ForkOrigin, PromptEvolved, ResultDiscarded, Routed, SessionFinished, SessionStarted, StepAccepted, StepPlanned,
    TaskSpec, UsageInfo,
)
from collabvr.loop import (
    Command, Kind, baseline_name, best_attempt, clip_seconds, command_inputs, evolution, generation_seed_parts,
    next_command, round_attempts, split_context, unheld,
)
from collabvr.state import (
    AttemptState, SessionState, apply, failing_frame_index, fold, start_point_for_next_attempt,
)
from collabvr.store import EventStore, SequenceConflict


# The task's test of a final video: (success, graded score in [0, 1]).
Judge = Callable[[np.ndarray], "tuple[bool, float | None]"]
ProgressFn = Callable[[str, int, int], None]

_BACKEND_ROLES = {Kind.PLAN: "plan", Kind.GENERATE: "generate", Kind.VERIFY: "verify", Kind.ROUTE: "route",
                  Kind.SELECT: "select", Kind.CRITIQUE: "critique"}


def derive_seed(session_seed: int, *parts: object) -> int:
    """A stable 31-bit seed for one backend call: a retry of the same step/attempt gets its own seed, a
    rerun of the whole session gets the same ones."""
    text = ":".join(str(p) for p in (session_seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class StepResult:
    command: Command
    events: list[Event]


class EngineBusy(DecisionError):
    """The engine is already running a command for this session; wait for it, pause it or stop it."""


@dataclass
class _CallTiming:
    wall_s: float = 0.0
    gate_wait_s: float = 0.0
    vgm_seconds: float = 0.0  # a generation's nominal length, counted even when it fails


class Engine:
    """Runs one session.

    No lock is held while a model works. A command is decided and its inputs read under a short lock, the
    backend is called without it, and the result is appended under the lock again, if it is still wanted:
    - a person's decision (edit, override, route, breakpoints, annotation) arriving while a model works is
      recorded at once and takes effect from the next command;
    - if it changed what the command in flight was computed from (the action it renders, the verdict it
      acts on), the result is stale: it is dropped, recorded as `ResultDiscarded` with its cost, and the
      loop goes on with the person's decision;
    - only one command runs at a time (a second `step`/`run` raises EngineBusy); writers in other
      processes are caught by the store's sequence check and the same staleness test.
    """

    def __init__(self, store: EventStore, artifacts: ArtifactFolder, vlm: VLM, vgm: VGM, session_id: str,
                 judge: Judge | None = None, gate: GPUGate | None = None) -> None:
        self.store = store
        self.artifacts = artifacts
        self.vlm = vlm
        self.vgm = vgm
        self.session_id = session_id
        self.judge = judge
        self.gate = gate
        self._lock = threading.RLock()  # guards _state; never held across a model call
        self._running = threading.Lock()  # one command in flight
        self._stop = threading.Event()  # cancels a generation in flight (or a wait for the GPU) and ends run()
        self._pause = threading.Event()  # ends run() after the current command
        self._timing = _CallTiming()
        self._state = fold(store.read(session_id))
        self.last_stop = ""  # why the latest run() or step() returned, in words

    # ----- creation -----------------------------------------------------------------------------------
    @classmethod
    def start(cls, store: EventStore, artifacts: ArtifactFolder, vlm: VLM, vgm: VGM, *, task: TaskSpec,
              input_image: np.ndarray, config: LoopConfig | None = None, seed: int = 0,
              session_id: str | None = None, title: str = "", judge: Judge | None = None,
              vlm_label: BackendLabel | None = None, vgm_label: BackendLabel | None = None,
              gate: GPUGate | None = None) -> "Engine":
        """Record a new session and return its engine. The labels say how to rebuild the backends when the
        session is resumed elsewhere (see collabvr.registry); without them it can only run
        in-process."""
        check_prompt(task.prompt, "task prompt")
        frame = media.as_uint8_frames([input_image])[0]
        started = SessionStarted(
            session_id=session_id or uuid.uuid4().hex[:12], title=title or task.prompt[:80], task=task,
            config=config or LoopConfig(), seed=seed, input_image=artifacts.put_frame(frame),
            vlm=vlm_label or BackendLabel(name=vlm.info.name, simulated=vlm.info.simulated),
            vgm=vgm_label or BackendLabel(name=vgm.info.name, simulated=vgm.info.simulated),
        )
        store.create(started)
        return cls(store, artifacts, vlm, vgm, started.session_id, judge=judge, gate=gate)

    @staticmethod
    def fork(store: EventStore, session_id: str, at_seq: int, new_session_id: str | None = None) -> str:
        """A new session holding the first `at_seq` events of `session_id` (artifacts are shared by hash).
        The fork derives its seeds with its own salt, so what it generates anew can differ from the
        parent. The original is untouched. Returns the new session's id."""
        events = store.read(session_id)
        if not 1 <= at_seq <= len(events):
            raise DecisionError(f"fork point must be between 1 and {len(events)} events, not {at_seq}")
        first = events[0]
        assert isinstance(first, SessionStarted)
        new_id = new_session_id or uuid.uuid4().hex[:12]
        rest = [e for e in events[1:at_seq] if not isinstance(e, SessionFinished)]
        started = first.model_copy(update={
            "session_id": new_id, "title": f"{first.title} (fork @{at_seq})", "seed_salt": new_id,
            "fork": ForkOrigin(parent_session=session_id, at_seq=at_seq, inherited_events=1 + len(rest)),
            "at": time.time()})
        store.create(started)
        if rest:
            store.append(new_id, rest, expected_seq=1)
        return new_id

    # ----- reading ------------------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        """The session's current state (never waits for a model)."""
        with self._lock:
            self._refresh()
            return self._state

    def next_command(self) -> Command:
        return next_command(self.state)

    @property
    def busy(self) -> bool:
        return self._running.locked()

    def _refresh(self) -> None:
        newer = self.store.read(self.session_id, since=self._state.seq)
        for event in newer:
            apply(self._state, event)

    # ----- running ------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop now: a generation in flight, or a wait for the GPU, is cancelled (recorded as a failed,
        retryable generation) and `run()` returns. A stop before the run starts is kept (see
        `clear_signals`)."""
        self._stop.set()

    def pause(self) -> None:
        """Let the command in flight finish, then return from `run()`."""
        self._pause.set()

    def clear_signals(self) -> None:
        """Forget an earlier stop or pause. `step()` and `run()` do this themselves unless told not to: a
        caller that starts them on another thread clears first, so a stop pressed in between is kept."""
        self._stop.clear()
        self._pause.clear()

    def step(self, progress: ProgressFn | None = None, *, clear_signals: bool = True) -> StepResult:
        """Run one command. A command held by a breakpoint or a failure runs anyway: a person asked for it."""
        if not self._running.acquire(blocking=False):
            raise EngineBusy(f"session {self.session_id} is already running a command")
        try:
            if clear_signals:
                self.clear_signals()
            snapshot, command = self._next()
            result = self._execute(snapshot, unheld(command), progress)
            self.last_stop = f"ran {command.describe()}"
            return result
        finally:
            self._running.release()

    def run(self, progress: ProgressFn | None = None, max_commands: int = 500, *,
            clear_signals: bool = True) -> SessionState:
        """Run until finished, a breakpoint, a failure that needs a person, pause or `stop()`. The first
        command runs even if held (like a debugger's continue). `last_stop` says why it returned; reaching
        `max_commands` is said there too, never silent."""
        if not self._running.acquire(blocking=False):
            raise EngineBusy(f"session {self.session_id} is already running a command")
        try:
            if clear_signals:
                self.clear_signals()
            self.last_stop = f"stopped after {max_commands} commands (the run's limit); run again to go on"
            for index in range(max_commands):
                if self._stop.is_set():
                    self.last_stop = "stopped by a person"
                    break
                snapshot, command = self._next()
                if command.kind is Kind.DONE:
                    self.last_stop = f"finished: {command.reason}"
                    break
                if command.kind is Kind.WAIT:
                    if index > 0 or command.held is None:
                        self.last_stop = f"held: {command.reason}"
                        break
                    command = command.held
                self._execute(snapshot, command, progress)
                if self._stop.is_set():
                    self.last_stop = "stopped by a person"
                    break
                if self._pause.is_set():
                    self.last_stop = "paused after the current command"
                    break
            return self.state
        finally:
            self._running.release()

    def _next(self) -> tuple[SessionState, Command]:
        """A private snapshot of the state (a fresh fold, which nobody else mutates) and the command it
        calls for."""
        with self._lock:
            self._refresh()
            snapshot = fold(self.store.read(self.session_id))
            return snapshot, next_command(snapshot)

    def _execute(self, snapshot: SessionState, command: Command, progress: ProgressFn | None) -> StepResult:
        """Compute the command's result from the snapshot (no lock held), then append it if the loop still
        wants it (see the class docstring)."""
        if command.kind is Kind.DONE:
            return StepResult(command, [])
        inputs = command_inputs(snapshot, command)
        if progress:
            progress(command.describe(), 0, 1)
        self._timing = _CallTiming()
        handler = {
            Kind.PLAN: self._plan, Kind.GENERATE: self._generate, Kind.VERIFY: self._verify,
            Kind.EVOLVE: self._evolve, Kind.ROUTE: self._route, Kind.ACCEPT: self._accept,
            Kind.SELECT: self._select, Kind.CRITIQUE: self._critique,
            Kind.PROPAGATE: self._propagate, Kind.FINISH: self._finish,
        }[command.kind]
        try:
            events = handler(snapshot, command, progress)
        except Exception as exc:  # a failure is an event a person can see, never a made-up result
            events = [self._failure(command, exc)]
        return StepResult(command, self._commit(command, inputs, events))

    def _failure(self, command: Command, exc: Exception) -> BackendFailed | CommandFailed:
        message = str(exc) or exc.__class__.__name__
        retryable = bool(getattr(exc, "retryable", False))
        if command.kind not in _BACKEND_ROLES:
            return CommandFailed(role=command.kind.value, step=command.step, attempt=command.attempt,  # type: ignore[arg-type]
                                 error=type(exc).__name__, message=message, retryable=retryable)
        usage = getattr(exc, "usage", None)
        calls = UsageInfo.of(usage) if usage is not None else None
        if calls is None and command.kind is not Kind.GENERATE:
            calls = UsageInfo(calls=1, latency_s=round(self._timing.wall_s, 4))
        return BackendFailed(role=_BACKEND_ROLES[command.kind], step=command.step, attempt=command.attempt,  # type: ignore[arg-type]
                             error=type(exc).__name__, message=message, retryable=retryable,
                             vgm_seconds=self._timing.vgm_seconds, usage=calls,
                             wall_s=round(self._timing.wall_s if command.kind is Kind.GENERATE else 0.0, 4),
                             gate_wait_s=round(self._timing.gate_wait_s, 4))

    def _commit(self, command: Command, inputs: tuple, events: list[Event]) -> list[Event]:
        """Append `events` if the loop still wants them; otherwise record what the stale result cost."""
        for _ in range(5):
            with self._lock:
                self._refresh()
                now = unheld(next_command(self._state))
                if command_inputs(self._state, now) != inputs:
                    events = self._discarded(command, events)
                    if not events:
                        return []
                try:
                    self.store.append(self.session_id, events, expected_seq=self._state.seq)
                except SequenceConflict:
                    continue  # another process appended meanwhile: look again
                for event in events:
                    apply(self._state, event)
                return events
        raise SequenceConflict(f"session {self.session_id} kept changing under the engine; try again")

    def _discarded(self, command: Command, events: list[Event]) -> list[Event]:
        """A stale result keeps only its cost (a model call is paid for whether or not it is used)."""
        if command.kind not in _BACKEND_ROLES:
            return []
        usage = None
        for event in events:
            usage = getattr(event, "usage", None) or usage
        return [ResultDiscarded(
            role=_BACKEND_ROLES[command.kind], step=command.step, attempt=command.attempt,  # type: ignore[arg-type]
            reason=f"{command.describe()} came back after a person changed what it was computed from",
            vgm_seconds=self._timing.vgm_seconds, usage=usage,
            wall_s=round(self._timing.wall_s, 4) if command.kind is Kind.GENERATE else 0.0,
            gate_wait_s=round(self._timing.gate_wait_s, 4))]

    @contextmanager
    def _call(self, backend: VLM | VGM) -> Iterator[_CallTiming]:
        """Time a model call, waiting for the GPU gate first if the backend runs on this machine's GPU."""
        timing = self._timing
        gated = self.gate is not None and backend.info.uses_gpu
        with (self.gate.hold(self._stop, who=self.session_id) if gated else nullcontext(0.0)) as waited:  # type: ignore[union-attr]
            timing.gate_wait_s += waited
            started = time.perf_counter()
            try:
                yield timing
            finally:
                timing.wall_s += time.perf_counter() - started

    # ----- commands (each computes from a snapshot and returns events; nothing here appends) ----------------
    def _seed(self, state: SessionState, command: Command, *parts: object) -> int:
        """A seed for one model call: the same for a rerun of the session from its seed, another after a
        failed call (a retry explores), and mixed with a fork's salt (a fork explores)."""
        salt = (state.started.seed_salt,) if state.started.seed_salt else ()
        failed = state.failed_calls.get((_BACKEND_ROLES[command.kind], command.step, command.attempt), 0)
        again = (f"retry {failed}",) if failed else ()
        return derive_seed(state.started.seed, *salt, *parts, *again)

    def _input_image(self, state: SessionState) -> np.ndarray:
        return self.artifacts.load_frame(state.started.input_image)

    def _plan(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        t = command.step or 1
        if state.config.method != "collabvr":
            # A baseline has no planner: its one step is the raw task prompt, set by the method's rule.
            name = baseline_name(state.config)
            plan = Plan(observation=f"{name} has no planner: the video model gets the raw task prompt.",
                        remaining_goal=state.task_prompt, task_complete=False, instruction=state.task_prompt,
                        target_state="", estimated_steps_remaining=0)
            return [StepPlanned(step=t, max_steps=1, plan=plan, usage=UsageInfo(calls=0), by="method")]
        split = split_context(state, t)
        history = [HistoryItem(step=s.number, instruction=s.instruction, outcome=s.status)
                   for s in state.steps if s.resolved]
        request = PlanRequest(
            task_prompt=state.task_prompt, input_image=self._input_image(state),
            current_frame=self.artifacts.load_frame(state.current_frame), history=history, step=t,
            max_steps=state.max_steps, seed=self._seed(state, command, t, "plan"),
            split=SplitContext(failed_instruction=state.step(split[0]).instruction, sub_step=split[1],
                               sub_steps=split[2]) if split else None,
            exact_steps=state.config.exact_steps,
        )
        with self._call(self.vlm) as timing:
            reply = self.vlm.plan(request)
        usage = _usage(reply.usage, timing.wall_s)
        return [StepPlanned(step=t, max_steps=state.max_steps, plan=reply.value, usage=usage,
                            split_of=split[0] if split else None, sub_step=split[1] if split else None,
                            sub_steps=split[2] if split else None)]

    def _generate(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        step = state.step(command.step or 0)
        start = start_point_for_next_attempt(state, step)
        seconds = clip_seconds(state, step, command.purpose)
        source = None
        if start.kind == "partial":
            source = step.attempt(start.from_attempt or 0).generated.candidate
            image = self.artifacts.clip_frame(source, start.frame_index or 0)
        else:
            image = self.artifacts.load_frame(step.start_frame)
        seed = self._seed(state, command, *generation_seed_parts(state, step, command.attempt or 1))
        report = (lambda done, total: progress(command.describe(), done, total)) if progress else None
        self._timing.vgm_seconds = seconds
        with self._call(self.vgm) as timing:
            clip = self.vgm.generate(GenerateRequest(image=image, prompt=step.instruction, seconds=seconds, seed=seed,
                                                     progress=report, cancel=self._stop))
        if len(clip.frames) < 2:
            raise BackendError(f"the VGM returned {len(clip.frames)} frame(s); a clip needs at least 2")
        frames = media.as_uint8_frames(clip.frames)
        clip_artifact = self.artifacts.put_clip(frames, clip.fps)
        prefix_frames = (start.frame_index or 0) if source is not None else 0
        if source is not None and prefix_frames:
            height, width = media.frame_size(self.artifacts.path(source))
            if media.even_size(frames.shape[1:3]) != (height, width):
                raise BackendError(f"the VGM returned frames of size {frames.shape[2]}x{frames.shape[1]}, "
                                   f"but the clip it continues is {width}x{height}")
            # The kept prefix streams from its file into the new candidate, one frame at a time.
            prefix = self.artifacts.iter_clip(source, stop=prefix_frames)
            candidate = self.artifacts.put_clip(_then(prefix, (media.pad_to_even(f) for f in frames)), clip.fps)
        else:
            candidate = clip_artifact
        return [ClipGenerated(
            step=step.number, attempt=command.attempt or 1, purpose=command.purpose,  # type: ignore[arg-type]
            prompt=step.instruction, start=start, clip=clip_artifact,
            # A start from the step's own start frame names that artifact (the same bytes); a partial start
            # stores the frame it was cut at.
            start_frame=self.artifacts.put_frame(image) if source is not None else step.start_frame,
            candidate=candidate, n_frames=len(frames), prefix_frames=prefix_frames, fps=clip.fps,
            seconds=seconds, frame_seconds=round(len(frames) / clip.fps, 6),
            first_frame_ssim=round(media.first_frame_ssim(image, frames[0]), 4), seed=seed,
            wall_s=round(timing.wall_s, 4), gate_wait_s=round(timing.gate_wait_s, 4),
            last_frame=self.artifacts.put_frame(frames[-1]), info=_jsonable(clip.info),
        )]

    def _clip_view(self, state: SessionState, attempt: AttemptState) -> ClipView:
        """The frames a VLM sees: sampled at the verifier's rate plus the last, decoded without holding the
        others."""
        n_frames = attempt.candidate_frames
        indices = media.sample_indices(n_frames, attempt.generated.fps, state.config.verifier_fps)
        frames = self.artifacts.clip_frames(attempt.generated.candidate, indices)
        return ClipView(frames=frames, indices=indices, n_frames=n_frames, fps=attempt.generated.fps,
                        path=self.artifacts.path(attempt.generated.candidate))

    def _verify(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        step = state.step(command.step or 0)
        attempt = step.attempt(command.attempt or 0)
        view = self._clip_view(state, attempt)
        request = VerifyRequest(task_prompt=state.task_prompt, input_image=self._input_image(state),
                                instruction=attempt.prompt, target_state=step.plan.target_state, clip=view,
                                seed=self._seed(state, command, step.number, attempt.number, "verify"),
                                current_frame=self.artifacts.load_frame(step.start_frame))
        with self._call(self.vlm) as timing:
            reply = self.vlm.verify(request)
        verdict = reply.value
        failing = None
        if verdict.verdict == "reject":
            failing = failing_frame_index(view.n_frames, verdict.good_fraction or 0.0)
        return [ClipVerified(step=step.number, attempt=attempt.number, verdict=verdict, sampled_indices=view.indices,
                             first_failing_frame=failing, usage=_usage(reply.usage, timing.wall_s))]

    def _evolve(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        """Rule 5, no VLM call: see `loop.evolution`."""
        source, before, after, suggestion = evolution(state, command.step or 0, command.attempt or 0)
        return [PromptEvolved(step=command.step or 0, after_attempt=command.attempt or 0, source=source,  # type: ignore[arg-type]
                              before=before, after=after, suggestion=suggestion)]

    def _route(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        step = state.step(command.step or 0)
        last = step.attempt(command.attempt or 0)
        request = RouteRequest(
            task_prompt=state.task_prompt, input_image=self._input_image(state), instruction=last.prompt,
            clip=self._clip_view(state, last), reason=last.reason,
            suggestion=last.suggestion, good_fraction=last.good_fraction, step=step.number,
            max_steps=state.max_steps, seed=self._seed(state, command, step.number, "route"))
        with self._call(self.vlm) as timing:
            reply = self.vlm.route(request)
        return [Routed(step=step.number, after_attempt=last.number, decision=reply.value,
                       usage=_usage(reply.usage, timing.wall_s))]

    def _select(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        """Pass@k: one selector call over every clip of the step; the clip it picks becomes the video."""
        step = state.step(command.step or 0)
        attempts = list(step.attempts)
        request = SelectRequest(task_prompt=state.task_prompt, input_image=self._input_image(state),
                                clips=[self._clip_view(state, a) for a in attempts],
                                seed=self._seed(state, command, step.number, "select"))
        with self._call(self.vlm) as timing:
            reply = self.vlm.select(request)
        index = reply.value.best_index
        if not 0 <= index < len(attempts):
            raise BackendError(f"the selector picked clip {index}, but there are {len(attempts)} (0 to "
                               f"{len(attempts) - 1})", usage=reply.usage)
        return [ClipsSelected(step=step.number, attempts=[a.number for a in attempts],
                              best_attempt=attempts[index].number, reason=reply.value.reason,
                              usage=_usage(reply.usage, timing.wall_s))]

    def _critique(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        """VideoTPO: one critic call over a round's clips; its rewritten prompt makes the next clips."""
        step = state.step(command.step or 0)
        if not isinstance(self.vlm, Critic):
            raise BackendError(f"{self.vlm.info.name} cannot critique videos, which the VideoTPO baseline needs")
        number = len(step.critiques) + 1
        attempts = [step.attempt(n) for n in round_attempts(state, step, number)]
        request = CritiqueRequest(task_prompt=state.task_prompt, input_image=self._input_image(state),
                                  prompt=step.instruction, clips=[self._clip_view(state, a) for a in attempts],
                                  round=number, rounds=state.config.tpo_rounds,
                                  seed=self._seed(state, command, step.number, "critique", number))
        with self._call(self.vlm) as timing:
            reply = self.vlm.critique(request)
        index = reply.value.better_index
        if not 0 <= index < len(attempts):
            raise BackendError(f"the critic named clip {index} the better one, but there are {len(attempts)}",
                               usage=reply.usage)
        try:
            after = check_prompt(reply.value.prompt, "rewritten prompt")
        except DecisionError as exc:
            raise BackendError(f"the critic's {exc}", usage=reply.usage) from None
        return [ClipsCritiqued(step=step.number, round=number, attempts=[a.number for a in attempts],
                               better_attempt=attempts[index].number, critique=reply.value.critique,
                               before=step.instruction, after=after, usage=_usage(reply.usage, timing.wall_s))]

    def _result_frame(self, attempt: AttemptState) -> Artifact:
        """The frame the next step starts from: the VGM's own last frame, stored losslessly when the clip
        was made (sessions recorded before that fall back to decoding the clip's last frame)."""
        if attempt.generated.last_frame is not None:
            return attempt.generated.last_frame
        return self.artifacts.put_frame(media.last_frame(self.artifacts.path(attempt.generated.candidate)))

    def _accept(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        step = state.step(command.step or 0)
        attempt = step.attempt(command.attempt or 0)
        by = "human" if attempt.override is not None else "verifier"
        if state.config.method != "collabvr":
            by = "selector" if step.selection is not None else "method"
        return [StepAccepted(step=step.number, attempt=attempt.number, clip=self._existing(attempt.generated.candidate),
                             last_frame=self._result_frame(attempt), by=by)]

    def _propagate(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        """Paper appendix C.2: when no attempt is accepted the best one goes on, so a run never stops
        without video. Best = the largest good_fraction the verifier gave (latest on ties)."""
        step = state.step(command.step or 0)
        best = best_attempt(step)
        reason = (f"{command.reason}; propagating attempt {best.number} of {len(step.attempts)} "
                  f"(good_fraction {best.good_fraction:.2f})")
        return [BestAttemptPropagated(step=step.number, attempt=best.number,
                                      clip=self._existing(best.generated.candidate),
                                      last_frame=self._result_frame(best), reason=reason)]

    def _finish(self, state: SessionState, command: Command, progress: ProgressFn | None) -> list[Event]:
        clips = [self._existing(c) for c in state.trajectory]
        if clips:
            fps = _clip_fps(state, clips[0]) or self.vgm.fps
            video = self.artifacts.put_concatenation(clips, fps=fps)
            n_frames = sum(_clip_frames(state, c) for c in clips)
        else:
            # The planner found the task done before any clip: the video is the input frame, held 1 s.
            frame = self.artifacts.load_frame(state.current_frame)
            fps = self.vgm.fps
            n_frames = max(2, int(round(fps)))
            video = self.artifacts.put_clip(np.repeat(frame[None], n_frames, axis=0), fps, kind="video")
        # A judge (the simulated world's test) reads the final video's frames; tasks without one never
        # decode it here.
        success, score = self.judge(self.artifacts.load_clip(video)) if self.judge is not None else (None, None)
        return [SessionFinished(reason=command.reason, final_video=video, n_frames=n_frames, success=success,
                                score=score, cost=state.cost)]

    def _existing(self, artifact: Artifact) -> Artifact:
        if not self.artifacts.path(artifact).is_file():
            raise ArtifactMissing(f"the {artifact.kind} {artifact.path} is missing from the artifact folder "
                                  f"{self.artifacts.root}; restore it, or fork the session from before it was made")
        return artifact


    # ----- people's decisions (the rules are collabvr.decisions; validated and appended under one lock) -----
    def _decide(self, make: Callable[[SessionState], Event]) -> Event:
        with self._lock:
            self._refresh()
            event = make(self._state)
            self.store.append(self.session_id, [event], expected_seq=self._state.seq)
            apply(self._state, event)
            return event

    def edit_action(self, step: int, text: str, actor: str, reason: str = "") -> Event:
        """Replace the instruction the next generation of `step` will use."""
        return self._decide(lambda state: make_edit(state, step, text, actor, reason))

    def override_verdict(self, step: int, attempt: int, verdict: Literal["accept", "reject"], actor: str,
                         reason: str = "", suggestion: str = "") -> Event:
        """Flip the verdict of an attempt of the current step. Reject -> accept advances the step with that
        clip; accept -> reject evolves the prompt (with `suggestion`, if given) and tries again."""
        return self._decide(lambda state: make_override(state, step, attempt, verdict, actor, reason, suggestion))

    def request_route(self, step: int, action: Literal["regen", "split", "fallback"], actor: str, *,
                      estimated_steps: int | None = None, attempt: int | None = None,
                      frame_index: int | None = None, suggestion: str = "", reason: str = "") -> Event:
        """Route the current step as a person decides: regen from a chosen frame of a chosen attempt (its
        frames before it are kept), split into `estimated_steps` sub-steps, or fallback."""
        return self._decide(lambda state: make_route(
            state, step, action, actor, estimated_steps=estimated_steps, attempt=attempt, frame_index=frame_index,
            suggestion=suggestion, reason=reason))

    def annotate(self, target: str, label: Literal["D1", "D2", "D3", "note"], value: int | str, actor: str,
                 reason: str = "", *, study: str | None = None, frame: int | None = None) -> Event:
        """Record a reliability label; it never changes the flow. `study` names the study it was given in;
        `frame` anchors a note at a frame of the attempt's candidate clip."""
        return self._decide(lambda state: make_label(state, target, label, value, actor, reason, study=study,
                                                     frame=frame))

    def set_breakpoints(self, breakpoints: list[str] | tuple[str, ...], actor: str) -> Event:
        return self._decide(lambda state: make_breakpoints(breakpoints, actor))


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


def _then(first: Iterable[np.ndarray], second: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    return itertools.chain(first, second)


def _candidate_attempt(state: SessionState, artifact: Artifact) -> AttemptState | None:
    for step in state.steps:
        for attempt in step.attempts:
            if attempt.generated.candidate == artifact:
                return attempt
    return None


def _clip_fps(state: SessionState, artifact: Artifact) -> float | None:
    attempt = _candidate_attempt(state, artifact)
    return attempt.generated.fps if attempt else None


def _clip_frames(state: SessionState, artifact: Artifact) -> int:
    attempt = _candidate_attempt(state, artifact)
    if attempt is None:
        raise ArtifactMissing(f"no attempt of this session made the clip {artifact.path}")
    return attempt.candidate_frames

"""Sessions as an app sees them: create, open, drive in the background, decide, fork.

The browser UI calls this and nothing below it: a `Studio` owns one `Engine` per open session and runs
its commands in a background thread, so a request handler only starts work and returns. Progress of the
command in flight is kept in an `Activity` that any number of tabs can poll. Models on the GPU share one
`GPUGate` (`max_parallel_generations` slots), which is what protects a GPU from two sessions at once;
the backends themselves are built once per process (collabvr.registry) and shared. No call
here waits for a model: the engine holds no lock across one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

import numpy as np

from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends.gate import GPUGate
from collabvr.config import LoopConfig
from collabvr.engine import DecisionError, Engine, check_prompt
from collabvr.events import Event, TaskSpec
from collabvr.loop import Command, next_command
from collabvr.sim_session import NewSimSession, start_sim_session
from collabvr.state import SessionState, fold
from collabvr.store import EventStore


MAX_IMAGE_SIDE = 4096
MIN_IMAGE_SIDE = 16
IDLE_ENGINE_S = 600.0  # an engine not used for this long is released (its session reopens on demand)


class SessionBusy(DecisionError):
    """The session is already running a command; wait for it, pause it or stop it first."""


@dataclass(frozen=True)
class Activity:
    """What a session's background worker is doing, for progress displays."""

    session_id: str
    running: bool = False
    mode: str = ""  # "step" or "run"
    command: str = ""  # the command in flight, e.g. "generate step 2 attempt 1"
    done: int = 0
    total: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    outcome: str = ""  # why the worker returned ("held: breakpoint ...", "finished: ...", "stopped ...")
    error: str = ""  # an unexpected error of the worker itself (backend failures are events instead)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class GPUQueue:
    """A session's place at the GPU gate, for the live status line: `place` is "holding" (its model runs on
    the GPU now), "waiting" (`position` 1 = next in line) or "idle"; `busy`, `waiting` and `slots` are the
    whole gate's counts, across every session of the process."""

    place: str
    position: int
    busy: int
    waiting: int
    slots: int


class Studio:
    """All sessions of one app process. Thread-safe; every method returns quickly except `wait`."""

    def __init__(self, store: EventStore, artifacts: ArtifactFolder, *, max_parallel_generations: int = 1,
                 idle_engine_s: float = IDLE_ENGINE_S) -> None:
        self.store = store
        self.artifacts = artifacts
        self.gate = GPUGate(max(1, max_parallel_generations))
        self.idle_engine_s = idle_engine_s
        self._engines: dict[str, Engine] = {}
        self._used: dict[str, float] = {}
        self._activity: dict[str, Activity] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # ----- creating and opening sessions ---------------------------------------------------------------
    def new_sim_session(self, spec: NewSimSession) -> str:
        """Start a session on a simulated task. Bad names or budgets raise ValueError with the reason."""
        engine = start_sim_session(self.store, self.artifacts, spec, gate=self.gate)
        with self._lock:
            self._engines[engine.session_id] = engine
            self._used[engine.session_id] = time.monotonic()
        return engine.session_id

    def new_upload_session(self, image: np.ndarray, prompt: str, vlm_key: str, vgm_key: str,
                           config: LoopConfig | None = None, title: str = "", seed: int = 0) -> str:
        """Start a session on a person's image and prompt with real backends. The image and prompt are checked
        first; a backend that cannot run here (or a simulated one, which only knows its own world) raises
        registry.BackendUnavailable with the reason. Models load on the session's first call, not here."""
        check_image(image)
        text = check_prompt(prompt, "task prompt")
        chosen = {(c.role, c.key): c for c in registry.choices()}
        for role, key in (("vlm", vlm_key), ("vgm", vgm_key)):
            choice = chosen.get((role, key))
            if choice is None:
                raise registry.BackendUnavailable(f"unknown {role.upper()} backend {key!r}")
            if not choice.available:
                raise registry.BackendUnavailable(f"{choice.label} cannot run here: {choice.why_not}")
            if choice.simulated:
                raise registry.BackendUnavailable(
                    f"{choice.label} only understands the simulated world's own tasks; pick a simulated task, "
                    "or a real backend for an uploaded image")
        vlm_spec, vgm_spec = chosen[("vlm", vlm_key)].spec, chosen[("vgm", vgm_key)].spec
        vlm, vgm = registry.build_vlm(vlm_spec), registry.build_vgm(vgm_spec)
        engine = Engine.start(self.store, self.artifacts, vlm, vgm, task=TaskSpec(prompt=text, source="upload"),
                              input_image=image, config=config, seed=int(seed), title=title.strip() or text[:80],
                              vlm_label=registry.label(vlm, vlm_spec), vgm_label=registry.label(vgm, vgm_spec),
                              gate=self.gate)
        with self._lock:
            self._engines[engine.session_id] = engine
            self._used[engine.session_id] = time.monotonic()
        return engine.session_id

    def engine(self, session_id: str) -> Engine:
        """The session's engine, rebuilt from the backends it recorded if this process has not opened it
        (the backends come from the process-wide cache, so a model loads once)."""
        with self._lock:
            engine = self._engines.get(session_id)
            self._used[session_id] = time.monotonic()
        if engine is not None:
            return engine
        self._release_idle()
        events = self.store.read(session_id)
        started = events[0]
        vlm, vgm = registry.backends_for(started.vlm, started.vgm)  # type: ignore[union-attr]
        engine = Engine(self.store, self.artifacts, vlm, vgm, session_id, gate=self.gate,
                        judge=registry.judge_for(started.task))  # type: ignore[union-attr]
        with self._lock:
            return self._engines.setdefault(session_id, engine)

    def _release_idle(self) -> None:
        """Drop engines nobody used for `idle_engine_s` and that run nothing: an engine holds its session's
        state, and a lab server opens many sessions over a week."""
        cutoff = time.monotonic() - self.idle_engine_s
        with self._lock:
            for session_id in [s for s, used in self._used.items() if used < cutoff]:
                engine = self._engines.get(session_id)
                running = self._activity.get(session_id, Activity(session_id)).running
                if engine is not None and not running and not engine.busy:
                    del self._engines[session_id]
                    self._used.pop(session_id, None)
                    self._threads.pop(session_id, None)

    @property
    def open_engines(self) -> int:
        with self._lock:
            return len(self._engines)

    def state(self, session_id: str) -> SessionState:
        """A fresh fold of the session's log (works without its backends, e.g. to view an old session)."""
        return fold(self.store.read(session_id))

    def next_command(self, session_id: str) -> Command:
        return next_command(self.state(session_id))

    # ----- driving -------------------------------------------------------------------------------------
    def activity(self, session_id: str) -> Activity:
        with self._lock:
            return self._activity.get(session_id, Activity(session_id))

    def gpu_queue(self, session_id: str) -> GPUQueue:
        """Where the session stands at the GPU gate (only models that run on this machine's GPU wait there;
        a simulated or remote model never does)."""
        place, position = self.gate.place(session_id)
        return GPUQueue(place, position, self.gate.busy, self.gate.waiting, self.gate.slots)

    def is_running(self, session_id: str) -> bool:
        return self.activity(session_id).running

    def start_step(self, session_id: str) -> None:
        """Run one command in the background (a held command runs: a person asked for it)."""
        self._start(session_id, "step")

    def start_run(self, session_id: str) -> None:
        """Run in the background until finished, a breakpoint, a failure, pause or stop."""
        self._start(session_id, "run")

    def pause(self, session_id: str) -> None:
        self.engine(session_id).pause()

    def stop(self, session_id: str) -> None:
        self.engine(session_id).stop()

    def wait(self, session_id: str, timeout: float = 60.0) -> Activity:
        """Block until the session's worker is idle (for scripts and tests)."""
        with self._lock:
            thread = self._threads.get(session_id)
        if thread is not None:
            thread.join(timeout)
        return self.activity(session_id)

    def _start(self, session_id: str, mode: Literal["step", "run"]) -> None:
        """Start the worker. The busy check comes first and never waits for a model; the engine's stop and
        pause flags are cleared here, before the thread exists, so a Stop pressed before it starts counts."""
        with self._lock:
            if self._activity.get(session_id, Activity(session_id)).running:
                raise SessionBusy(f"session {session_id} is already running "
                                  f"({self._activity[session_id].command or 'starting'}); pause or stop it first")
        engine = self.engine(session_id)
        if engine.state.finished is not None:
            raise DecisionError("the session has finished; fork it to continue from an earlier point")
        with self._lock:
            if self._activity.get(session_id, Activity(session_id)).running or engine.busy:
                raise SessionBusy(f"session {session_id} is already running; pause or stop it first")
            self._activity[session_id] = Activity(session_id, running=True, mode=mode, started_at=time.time())
            engine.clear_signals()
            thread = threading.Thread(target=self._work, args=(engine, mode), name=f"session-{session_id}",
                                      daemon=True)
            self._threads[session_id] = thread
        thread.start()

    def _work(self, engine: Engine, mode: str) -> None:
        session_id = engine.session_id

        def progress(command: str, done: int, total: int) -> None:
            self._update(session_id, command=command, done=done, total=total)

        error = ""
        try:
            if mode == "step":
                engine.step(progress=progress, clear_signals=False)
            else:
                engine.run(progress=progress, clear_signals=False)
        except Exception as exc:  # shown in the page; the log keeps everything appended before it
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._update(session_id, running=False, finished_at=time.time(), error=error, outcome=engine.last_stop)

    def _update(self, session_id: str, **changes: Any) -> None:
        with self._lock:
            current = self._activity.get(session_id, Activity(session_id))
            self._activity[session_id] = replace(current, **changes)

    # ----- people's decisions (validated by the engine, appended as events) -------------------------------
    def _decide(self, session_id: str, action: Callable[[Engine], Event]) -> Event:
        return action(self.engine(session_id))

    def edit_action(self, session_id: str, step: int, text: str, actor: str, reason: str = "") -> Event:
        return self._decide(session_id, lambda e: e.edit_action(step, text, actor, reason))

    def override_verdict(self, session_id: str, step: int, attempt: int, verdict: str, actor: str,
                         reason: str = "", suggestion: str = "") -> Event:
        return self._decide(session_id, lambda e: e.override_verdict(step, attempt, verdict, actor, reason,  # type: ignore[arg-type]
                                                                     suggestion))

    def request_route(self, session_id: str, step: int, action: str, actor: str, **options: Any) -> Event:
        return self._decide(session_id, lambda e: e.request_route(step, action, actor, **options))  # type: ignore[arg-type]

    def annotate(self, session_id: str, target: str, label: str, value: int | str, actor: str,
                 reason: str = "", *, study: str | None = None, frame: int | None = None) -> Event:
        return self._decide(session_id, lambda e: e.annotate(target, label, value, actor, reason,  # type: ignore[arg-type]
                                                             study=study, frame=frame))

    def set_breakpoints(self, session_id: str, breakpoints: list[str], actor: str) -> Event:
        return self._decide(session_id, lambda e: e.set_breakpoints(breakpoints, actor))

    def fork(self, session_id: str, at_seq: int) -> str:
        return Engine.fork(self.store, session_id, at_seq)

    def fork_at_step(self, session_id: str, step: int) -> str:
        """A fork that re-runs `step` from its start: it keeps the step's plan and everything before it and
        generates the step anew (the events before the step's first clip)."""
        events = self.store.read(session_id)
        planned = None
        for index, event in enumerate(events):
            if event.type == "StepPlanned" and event.step == step:  # type: ignore[union-attr]
                planned = index
            if planned is not None and event.type == "ClipGenerated" and event.step == step:  # type: ignore[union-attr]
                return self.fork(session_id, index)
        if planned is None:
            raise DecisionError(f"the session has no step {step}")
        return self.fork(session_id, len(events))

    def forget(self, session_id: str) -> None:
        """Drop this process's engine of a session (before deleting it). Refused while it runs."""
        if self.is_running(session_id):
            raise SessionBusy(f"session {session_id} is running; stop it before deleting it")
        with self._lock:
            self._engines.pop(session_id, None)
            self._used.pop(session_id, None)
            self._activity.pop(session_id, None)
            self._threads.pop(session_id, None)


def check_image(image: np.ndarray) -> np.ndarray:
    """An uploaded image must be RGB uint8, at least 16 px and at most 4096 px a side."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DecisionError("the image must be an RGB picture (PNG or JPEG)")
    height, width = image.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise DecisionError(f"the image is {width}x{height}; each side must be at least {MIN_IMAGE_SIDE} px")
    if max(height, width) > MAX_IMAGE_SIDE:
        raise DecisionError(f"the image is {width}x{height}; each side must be at most {MAX_IMAGE_SIDE} px")
    return image

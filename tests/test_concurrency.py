"""Decisions never wait for a model: no lock is held across a backend call, a stale result is dropped with
its cost, a stop before the worker starts is kept, and a stop ends a wait for the GPU gate."""

from __future__ import annotations

import threading
import time

import pytest

from collabvr import studio as studio_module
from collabvr.artifacts import ArtifactFolder
from collabvr.backends import BackendInfo
from collabvr.backends.gate import GPUGate
from collabvr.config import LoopConfig
from collabvr.engine import EngineBusy
from collabvr.loop import Kind
from collabvr.studio import NewSimSession, SessionBusy, Studio
from storage import SQLiteEventStore

from scripted import ScriptedVGM, ScriptedVLM, accept, plan, reject, start_engine



class BlockingVGM(ScriptedVGM):
    """Generates only when the test lets it: `started` is set once a generation is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def generate(self, request):
        self.started.set()
        assert self.release.wait(30), "the test never released the generation"
        return super().generate(request)


class GPUVGM(ScriptedVGM):
    """A scripted VGM that says it runs on this machine's GPU, so it takes the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.info = BackendInfo(name="scripted-gpu-vgm", role="vgm", simulated=True, uses_gpu=True)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the condition")


def types(store, sid):
    return [e.type for e in store.read(sid)]


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")




def in_background(fn):
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_an_edit_during_generation_is_recorded_at_once_and_the_stale_clip_is_discarded(folder):
    vgm = BlockingVGM()
    engine = start_engine(folder, ScriptedVLM(plans=[plan("push left")], verdicts=[accept()]), vgm, n_max=1)
    engine.step()  # PLAN
    worker = in_background(engine.step)  # GENERATE, blocked inside the model
    assert vgm.started.wait(10)
    engine.set_breakpoints(["after_verify"], actor="ana")
    engine.annotate("session", "note", "watching attempt 1", actor="ana")
    engine.edit_action(1, "push right", actor="ana", reason="the goal is on the right")
    with pytest.raises(EngineBusy):
        engine.step()
    seen = types(engine.store, engine.session_id)
    assert seen[-3:] == ["BreakpointsSet", "Annotated", "ActionEdited"]  # recorded while the model worked
    vgm.release.set()
    worker.join(10)
    events = engine.store.read(engine.session_id)
    discarded = events[-1]
    assert discarded.type == "ResultDiscarded" and discarded.role == "generate"
    assert discarded.vgm_seconds == 6.0  # the stale clip was paid for
    state = engine.state
    assert state.cost.vgm_seconds == 6.0 and state.cost.clips == 0 and state.cost.unused_generations == 1
    command = engine.next_command()
    assert command.kind is Kind.GENERATE
    engine.step()
    assert vgm.requests[-1].prompt == "push right"


def test_an_annotation_during_generation_keeps_the_clip(folder):
    vgm = BlockingVGM()
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), vgm, n_max=1)
    engine.step()
    worker = in_background(engine.step)
    assert vgm.started.wait(10)
    engine.annotate("session", "D1", 2, actor="ana")
    vgm.release.set()
    worker.join(10)
    assert types(engine.store, engine.session_id)[-2:] == ["Annotated", "ClipGenerated"]


def test_an_override_during_the_next_generation_discards_it_and_accepts(folder):
    vgm = BlockingVGM()
    vgm.release.set()
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0)]), vgm, n_max=1)
    for _ in range(4):  # plan, generate 1, verify 1 (reject), evolve
        engine.step()
    vgm.release.clear()
    vgm.started.clear()
    worker = in_background(engine.step)  # generate attempt 2
    assert vgm.started.wait(10)
    engine.override_verdict(1, 1, "accept", actor="ana", reason="attempt 1 was fine")
    vgm.release.set()
    worker.join(10)
    assert types(engine.store, engine.session_id)[-2:] == ["VerdictOverridden", "ResultDiscarded"]
    engine.run()
    state = engine.state
    assert state.steps[0].result_attempt == 1 and state.finished is not None


def test_a_stop_before_the_run_starts_is_kept(folder):
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), ScriptedVGM(), n_max=1)
    engine.clear_signals()  # what a caller does before handing run() to a thread
    engine.stop()  # the person presses Stop before the thread gets going
    engine.run(clear_signals=False)
    assert types(engine.store, engine.session_id) == ["SessionStarted"]
    assert engine.last_stop == "stopped by a person"


def test_stop_ends_a_wait_for_the_gpu_gate(folder):
    gate = GPUGate(1)
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), GPUVGM(), n_max=1)
    engine.gate = gate
    engine.step()  # PLAN (the VLM does not use the GPU)
    with gate.hold():  # another session holds the GPU
        worker = in_background(engine.step)
        wait_for(lambda: gate.waiting == 1)
        engine.stop()
        worker.join(10)
        assert not worker.is_alive()
    failure = engine.store.read(engine.session_id)[-1]
    assert failure.type == "BackendFailed" and failure.error == "BackendCancelled"
    assert "waiting for the GPU" in failure.message


def test_wall_time_leaves_out_the_wait_for_the_gpu_gate(folder):
    gate = GPUGate(1)
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), GPUVGM(), n_max=1)
    engine.gate = gate
    engine.step()
    holder = threading.Event()

    def hold_for_a_while():
        with gate.hold():
            holder.set()
            time.sleep(0.6)

    in_background(hold_for_a_while)
    holder.wait(5)
    engine.step()
    generated = engine.store.read(engine.session_id)[-1]
    assert generated.type == "ClipGenerated"
    assert generated.gate_wait_s >= 0.3 and generated.wall_s < generated.gate_wait_s
    assert engine.state.cost.gate_wait_s == generated.gate_wait_s


# ----- through the Studio, with simulated models that take seconds -------------------------------------------

@pytest.fixture
def studio(tmp_path):
    return Studio(SQLiteEventStore(tmp_path / "s.sqlite"), ArtifactFolder(tmp_path / "art"))


def test_decisions_on_a_busy_session_return_while_the_generation_runs(studio):
    sid = studio.new_sim_session(NewSimSession("blocks", "easy", 3, latency_s=4.0, config=LoopConfig(n_max=1)))
    studio.start_run(sid)
    wait_for(lambda: studio.activity(sid).command.startswith("generate"))
    studio.set_breakpoints(sid, ["on_route"], actor="ana")
    studio.annotate(sid, "session", "D1", 1, actor="ana")
    with pytest.raises(SessionBusy):
        studio.start_step(sid)
    still_generating = studio.activity(sid).command.startswith("generate") and studio.is_running(sid)
    studio.stop(sid)
    studio.wait(sid, 30)
    events = [e.type for e in studio.store.read(sid)]
    assert still_generating
    # Both decisions are in the log before whatever the generation produced.
    assert events.index("BreakpointsSet") < events.index("Annotated") < len(events) - 1
    assert "ClipGenerated" not in events[:events.index("Annotated")]


def test_a_stop_pressed_before_the_worker_thread_starts_stops_it(studio, monkeypatch):
    sid = studio.new_sim_session(NewSimSession("maze", "easy", 2, config=LoopConfig(n_max=1)))
    original = threading.Thread.start

    def stop_first(thread):
        studio.stop(sid)  # the person's Stop lands between the request and the thread
        original(thread)

    monkeypatch.setattr(studio_module.threading.Thread, "start", stop_first)
    studio.start_run(sid)
    monkeypatch.undo()
    activity = studio.wait(sid, 30)
    assert [e.type for e in studio.store.read(sid)] == ["SessionStarted"]
    assert activity.outcome == "stopped by a person"

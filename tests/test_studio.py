"""The app's session service: background runs, progress, pause/stop, restart, concurrency."""

from __future__ import annotations

import time

import numpy as np
import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.engine import DecisionError
from collabvr.loop import Kind
from collabvr.registry import BackendUnavailable
from collabvr.studio import NewSimSession, SessionBusy, Studio
from storage import SQLiteEventStore


@pytest.fixture
def make_studio(tmp_path):
    def make():
        return Studio(SQLiteEventStore(tmp_path / "s.sqlite"), ArtifactFolder(tmp_path / "art"))
    return make


def test_run_happens_in_the_background_and_finishes(make_studio):
    studio = make_studio()
    sid = studio.new_sim_session(NewSimSession("maze", "easy", 4, config=LoopConfig(n_max=2)))
    studio.start_run(sid)
    activity = studio.wait(sid, 60)
    assert not activity.running and activity.error == ""
    assert studio.state(sid).finished is not None


def test_a_second_start_while_running_is_refused(make_studio):
    studio = make_studio()
    sid = studio.new_sim_session(NewSimSession("blocks", "hard", 1, latency_s=0.2))
    studio.start_run(sid)
    with pytest.raises(SessionBusy, match="already running"):
        studio.start_step(sid)
    studio.stop(sid)
    studio.wait(sid, 30)


def test_progress_of_the_command_in_flight_is_visible(make_studio):
    studio = make_studio()
    sid = studio.new_sim_session(NewSimSession("maze", "hard", 2, latency_s=0.5))
    studio.start_run(sid)
    seen = set()
    deadline = time.time() + 20
    while time.time() < deadline and not any(c.startswith("generate") for c in seen):
        seen.add(studio.activity(sid).command)
        time.sleep(0.05)
    studio.stop(sid)
    studio.wait(sid, 30)
    assert any(c.startswith("plan step 1") for c in seen) and any(c.startswith("generate step 1") for c in seen)


def test_stop_cancels_the_generation_in_flight_and_run_resumes_it(make_studio):
    studio = make_studio()
    sid = studio.new_sim_session(NewSimSession("shapes", "easy", 3, latency_s=1.0, config=LoopConfig(n_max=1)))
    studio.start_run(sid)
    deadline = time.time() + 20
    while not studio.activity(sid).command.startswith("generate") and time.time() < deadline:
        time.sleep(0.05)
    studio.stop(sid)
    studio.wait(sid, 30)
    state = studio.state(sid)
    assert state.status == "stopped" and state.failures[-1].error == "BackendCancelled"
    assert studio.next_command(sid).kind is Kind.GENERATE
    studio.start_run(sid)
    studio.wait(sid, 60)
    assert studio.state(sid).finished is not None


def test_pause_lets_the_current_command_finish(make_studio):
    studio = make_studio()
    sid = studio.new_sim_session(NewSimSession("maze", "hard", 5, latency_s=0.3))
    studio.start_run(sid)
    time.sleep(0.1)
    studio.pause(sid)
    studio.wait(sid, 30)
    state = studio.state(sid)
    assert state.finished is None and not state.failures and state.seq >= 2


def test_a_restarted_process_reopens_and_resumes_a_session(make_studio):
    first = make_studio()
    sid = first.new_sim_session(NewSimSession("blocks", "easy", 6, config=LoopConfig(breakpoints=("after_verify",))))
    first.start_run(sid)
    first.wait(sid, 60)
    before = first.state(sid)
    second = make_studio()  # a new process: nothing cached
    assert second.state(sid).seq == before.seq
    assert second.next_command(sid).kind is Kind.WAIT
    second.set_breakpoints(sid, [], actor="ana")
    second.start_run(sid)
    second.wait(sid, 60)
    assert second.state(sid).finished is not None


def test_two_sessions_run_at_once_without_disturbing_each_other(make_studio):
    studio = make_studio()
    a = studio.new_sim_session(NewSimSession("maze", "hard", 8, latency_s=0.05))
    b = studio.new_sim_session(NewSimSession("shapes", "hard", 8, latency_s=0.05))
    studio.start_run(a)
    studio.start_run(b)
    studio.wait(a, 120)
    studio.wait(b, 120)
    for sid, family in ((a, "maze"), (b, "shapes")):
        state = studio.state(sid)
        assert state.finished is not None and state.started.task.family == family


def test_uploaded_image_and_prompt_are_checked_before_any_backend(make_studio):
    studio = make_studio()
    with pytest.raises(DecisionError, match="at least 16"):
        studio.new_upload_session(np.zeros((8, 8, 3), np.uint8), "do it", "sim:perfect", "sim:legacy")
    with pytest.raises(DecisionError, match="at most 4096"):
        studio.new_upload_session(np.zeros((5000, 20, 3), np.uint8), "do it", "sim:perfect", "sim:legacy")
    with pytest.raises(DecisionError, match="empty"):
        studio.new_upload_session(np.zeros((64, 64, 3), np.uint8), "  ", "sim:perfect", "sim:legacy")
    with pytest.raises(BackendUnavailable, match="cannot run here"):
        studio.new_upload_session(np.zeros((64, 64, 3), np.uint8), "do it", "gemini", "sim:legacy")
    with pytest.raises(BackendUnavailable, match="simulated world"):
        studio.new_upload_session(np.zeros((64, 64, 3), np.uint8), "do it", "sim:perfect", "sim:legacy")


def test_fork_at_a_step_regenerates_that_step_from_its_plan(make_studio):
    studio = make_studio()
    sid = studio.new_sim_session(NewSimSession("maze", "hard", 4, config=LoopConfig(n_max=2)))
    studio.start_run(sid)
    studio.wait(sid, 60)
    child = studio.fork_at_step(sid, 2)
    events = studio.store.read(child)
    assert events[-1].type == "StepPlanned" and events[-1].step == 2
    assert studio.next_command(child).kind is Kind.GENERATE
    with pytest.raises(DecisionError, match="no step 9"):
        studio.fork_at_step(sid, 9)


def test_idle_engines_are_released_and_reopen_on_demand(tmp_path):
    studio = Studio(SQLiteEventStore(tmp_path / "s.sqlite"), ArtifactFolder(tmp_path / "art"), idle_engine_s=0.0)
    first = studio.new_sim_session(NewSimSession("maze", "easy", 1, config=LoopConfig(n_max=1)))
    second = studio.new_sim_session(NewSimSession("maze", "easy", 2, config=LoopConfig(n_max=1)))
    assert studio.open_engines == 2
    time.sleep(0.01)
    studio.forget(second)
    studio.engine(second)  # opening one releases the others nobody used since
    assert studio.open_engines == 1
    studio.start_step(first)  # a released session reopens from its log
    studio.wait(first, 30)
    assert [e.type for e in studio.store.read(first)][-1] == "StepPlanned"


def test_backends_are_built_once_per_process_and_shared_by_sessions(make_studio):
    from collabvr import registry

    studio = make_studio()
    a = studio.new_sim_session(NewSimSession("shapes", "easy", 1, vgm_profile="hard"))
    b = studio.new_sim_session(NewSimSession("shapes", "easy", 2, vgm_profile="hard"))
    assert studio.engine(a).vgm is studio.engine(b).vgm
    assert studio.engine(a).vlm is studio.engine(b).vlm
    assert registry.build_vgm(registry.sim_vgm_spec("shapes", "hard")) is studio.engine(a).vgm


def test_two_sessions_asking_for_the_same_model_at_once_load_it_once():
    import threading

    from collabvr import registry

    builds = []

    def slow_build(spec):
        builds.append(spec)
        time.sleep(0.3)  # a model loading
        return object()

    spec = {"kind": "test-slow", "n": time.time()}
    got = []
    threads = [threading.Thread(target=lambda: got.append(registry._cached("vgm", spec, slow_build)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and got[0] is got[1] is got[2]

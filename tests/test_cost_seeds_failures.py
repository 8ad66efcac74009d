"""Cost as the paper counts it, seeds that explore on forks and retries, and failures that are events."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.backends import BackendCancelled, MalformedOutput, Usage
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.loop import Kind
from collabvr.state import fold
from collabvr.store import MemoryEventStore

from scripted import FlakyError, ScriptedVGM, ScriptedVLM, accept, plan, reject, start_engine



@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")




def events_of(engine, kind):
    return [e for e in engine.store.read(engine.session_id) if e.type == kind]


# ----- seeds ---------------------------------------------------------------------------------------------

def test_a_rerun_from_the_same_seed_asks_for_the_same_seeds(folder):
    runs = []
    for _ in range(2):
        vgm = ScriptedVGM()
        start_engine(folder, ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[reject(0.0), accept(), accept()]), vgm,
             n_max=2).run()
        runs.append([r.seed for r in vgm.requests])
    assert runs[0] == runs[1] and len(set(runs[0])) == 3


def test_a_fork_generates_with_its_own_seeds(folder):
    vgm = ScriptedVGM()
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), vgm, n_max=1)
    engine.run()
    child_id = Engine.fork(engine.store, engine.session_id, at_seq=2)  # started + planned
    child_vgm = ScriptedVGM()
    child = Engine(engine.store, folder, ScriptedVLM(verdicts=[accept()]), child_vgm, child_id)
    child.run()
    assert child_vgm.requests[0].prompt == vgm.requests[0].prompt
    assert child_vgm.requests[0].seed != vgm.requests[0].seed


def test_regenerating_a_simulated_step_after_a_fork_can_differ(folder):
    from collabvr import registry
    from collabvr.sim import get_family, make_task

    differing = 0
    for seed in range(6):
        task = make_task("blocks", "hard", seed)
        family = get_family("blocks")
        vlm = registry.build_vlm(registry.sim_vlm_spec("blocks"))
        vgm = registry.build_vgm(registry.sim_vgm_spec("blocks"))
        spec = TaskSpec(prompt=task.prompt, source="sim", family="blocks", difficulty="hard", task_seed=seed)
        engine = Engine.start(MemoryEventStore(), folder, vlm, vgm, task=spec, input_image=family.render(task.initial),
                              config=LoopConfig(n_max=1), seed=seed)
        engine.step()  # plan step 1
        engine.step()  # its first clip
        fork_id = Engine.fork(engine.store, engine.session_id, at_seq=2)
        child = Engine(engine.store, folder, vlm, vgm, fork_id)
        child.step()
        parent_clip = events_of(engine, "ClipGenerated")[0].clip
        child_clip = [e for e in engine.store.read(fork_id) if e.type == "ClipGenerated"][0].clip
        differing += parent_clip.sha256 != child_clip.sha256
    assert differing > 0


def test_a_retry_after_a_failed_generation_gets_a_new_seed(folder):
    vgm = ScriptedVGM(failures=[FlakyError()])
    start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), vgm, n_max=1, backend_retries=1).run()
    assert len(vgm.requests) == 2 and vgm.requests[0].seed != vgm.requests[1].seed


# ----- cost -----------------------------------------------------------------------------------------------

def test_failed_and_cancelled_generations_count_their_nominal_seconds(folder):
    vgm = ScriptedVGM(failures=[FlakyError(), BackendCancelled()])
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), vgm, n_max=1, backend_retries=2)
    state = engine.run()
    assert state.finished is not None
    assert state.cost.clips == 1 and state.cost.unused_generations == 2
    assert state.cost.vgm_seconds == 3 * 6.0
    assert state.finished.cost.vgm_seconds == 18.0


def test_failed_vlm_calls_count_with_their_usage(folder):
    broken = MalformedOutput("not JSON", usage=Usage(calls=2, input_tokens=300, output_tokens=40))
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[broken, accept()])
    engine = start_engine(folder, vlm, n_max=1)
    engine.run()  # the malformed verdict is not retried by itself
    assert engine.next_command().kind is Kind.WAIT
    state = engine.state
    assert state.cost.vlm_calls == 1 + 2  # the plan, then a verify with its repair re-ask
    assert state.cost.input_tokens == 100 + 300
    engine.run()  # a person presses Run: the verify is asked again
    assert engine.state.finished is not None and engine.state.cost.vlm_calls == 1 + 2 + 1


def test_the_budget_cap_counts_failed_generations(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0), reject(0.0)])
    engine = start_engine(folder, vlm, vgm, n_max=1, m=3, max_vgm_seconds=14.0, backend_retries=1)
    for _ in range(4):  # plan, generate 1, verify 1, evolve
        engine.step()
    vgm.failures = [FlakyError()]
    # Attempt 2 is asked for (12 s spent in all) and fails; its retry would make 18 s: over the cap.
    state = engine.run()
    assert [a.purpose for a in state.steps[0].attempts] == ["attempt"]
    assert state.cost.vgm_seconds == 12.0 and state.steps[0].status == "propagated"
    propagated = events_of(engine, "BestAttemptPropagated")[0]
    assert "budget cap of 14 s" in propagated.reason


def test_a_fork_shows_its_own_cost_apart_from_what_it_inherited(folder):
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept(), accept()]), n_max=2)
    engine.run()
    # Fork after step 1 was accepted: started, plan, clip, verify, accept = 5 events.
    child_id = Engine.fork(engine.store, engine.session_id, at_seq=5)
    child = Engine(engine.store, folder, ScriptedVLM(plans=[plan("b2")], verdicts=[accept()]), ScriptedVGM(),
                   child_id)
    state = child.run()
    assert state.inherited_cost.vgm_seconds == 6.0 and state.inherited_cost.vlm_calls == 2
    assert state.own_cost.vgm_seconds == 3.0 and state.own_cost.clips == 1 and state.own_cost.vlm_calls == 2
    assert state.cost.vgm_seconds == 9.0
    parent = fold(engine.store.read(engine.session_id))
    assert parent.inherited_cost is None and parent.own_cost == parent.cost


# ----- failures outside backend calls --------------------------------------------------------------------

def test_a_missing_clip_at_accept_is_an_event_and_the_session_goes_on_once_it_is_back(folder, tmp_path):
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1)
    for _ in range(3):  # plan, generate, verify
        engine.step()
    candidate = folder.path(engine.state.steps[0].attempts[0].generated.candidate)
    kept = tmp_path / "kept.mp4"
    shutil.move(candidate, kept)
    engine.run()
    failure = engine.store.read(engine.session_id)[-1]
    assert failure.type == "CommandFailed" and failure.role == "accept"
    assert "missing from the artifact folder" in failure.message
    command = engine.next_command()
    assert command.kind is Kind.WAIT and "accept failed" in command.reason
    assert fold(engine.store.read(engine.session_id)).status == "failed"  # seen after a restart too
    shutil.move(kept, candidate)
    state = engine.run()
    assert state.finished is not None and state.steps[0].status == "accepted"


def test_clips_of_different_sizes_still_make_a_final_video(folder):
    class GrowingVGM(ScriptedVGM):
        def generate(self, request):
            clip = super().generate(request)
            if len(self.requests) == 2:  # the second step comes back twice as large
                frames = np.repeat(np.repeat(clip.frames, 2, axis=1), 2, axis=2)
                return type(clip)(frames=frames, fps=clip.fps)
            return clip

    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept(), accept()])
    engine = start_engine(folder, vlm, GrowingVGM(), n_max=2)
    state = engine.run()
    assert state.finished is not None and state.finished.n_frames == 49 + 25
    video = folder.load_clip(state.finished.final_video)
    assert video.shape[:3] == (49 + 25, 32, 64)


def test_a_run_that_reaches_its_command_limit_says_so(folder):
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1)
    state = engine.run(max_commands=2)
    assert state.finished is None
    assert "limit" in engine.last_stop and "2 commands" in engine.last_stop

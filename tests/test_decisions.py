"""People's decisions at engine level, breakpoints, backend failures and forks."""

from __future__ import annotations

import numpy as np
import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.backends import MalformedOutput
from collabvr.config import LoopConfig
from collabvr.engine import DecisionError, Engine
from collabvr.events import TaskSpec, attempt_target
from collabvr.loop import Kind
from collabvr.state import fold
from collabvr.store import MemoryEventStore

from scripted import FlakyError, ScriptedVGM, ScriptedVLM, accept, frame_code, plan, reject, route


TASK = TaskSpec(prompt="Sort the blocks.", source="upload")


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


def make(folder, vlm, vgm=None, **config):
    image = np.full((32, 64, 3), 200, dtype=np.uint8)
    return Engine.start(MemoryEventStore(), folder, vlm, vgm or ScriptedVGM(), task=TASK, input_image=image,
                        config=LoopConfig(**config), seed=3)


def step_until(engine, kind):
    for _ in range(50):
        command = engine.next_command()
        if command.kind is kind or (command.kind is Kind.WAIT and command.held.kind is kind):
            return command
        engine.step()
    raise AssertionError(f"never reached {kind}")


# ----- edit the planned action -------------------------------------------------------------------------

def test_edited_action_is_what_the_next_clip_is_generated_from(folder):
    vgm = ScriptedVGM()
    engine = make(folder, ScriptedVLM(plans=[plan("move red left")], verdicts=[accept()]), vgm, n_max=1)
    step_until(engine, Kind.GENERATE)
    event = engine.edit_action(1, "move red right", actor="ana", reason="planner misread the goal")
    engine.run()
    assert vgm.requests[0].prompt == "move red right"
    assert (event.actor, event.before, event.after) == ("ana", "move red left", "move red right")
    assert engine.state.steps[0].prompt_history == [("planner", "move red left"), ("human", "move red right")]


def test_edit_after_a_reject_replaces_the_evolution(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0, "Add this."), accept()])
    engine = make(folder, vlm, vgm, n_max=1)
    step_until(engine, Kind.EVOLVE)
    engine.edit_action(1, "b exactly", actor="ana")
    engine.run()
    assert vgm.requests[1].prompt == "b exactly"
    assert "PromptEvolved" not in [e.type for e in engine.store.read(engine.session_id)]


def test_empty_or_huge_edit_is_refused_and_nothing_is_recorded(folder):
    engine = make(folder, ScriptedVLM(plans=[plan("a")]), n_max=1)
    step_until(engine, Kind.GENERATE)
    before = engine.state.seq
    with pytest.raises(DecisionError, match="empty"):
        engine.edit_action(1, "   ", actor="ana")
    with pytest.raises(DecisionError, match="at most"):
        engine.edit_action(1, "x" * 5000, actor="ana")
    with pytest.raises(DecisionError, match="name"):
        engine.edit_action(1, "fine", actor=" ")
    assert engine.state.seq == before


# ----- override a verdict ---------------------------------------------------------------------------------

def test_override_reject_to_accept_advances_the_step_with_that_clip(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[reject(0.4), accept()])
    vgm = ScriptedVGM()
    engine = make(folder, vlm, vgm, n_max=2, breakpoints=("on_reject",))
    engine.run()
    assert engine.next_command().reason == "breakpoint: on reject"
    engine.override_verdict(1, 1, "accept", actor="ana", reason="it did move left")
    command = engine.next_command()
    assert command.kind is Kind.ACCEPT and command.attempt == 1
    engine.run()
    state = engine.state
    assert state.steps[0].status == "accepted" and state.steps[0].result_by == "human"
    assert state.steps[0].attempts[0].effective_verdict == "accept"
    assert state.steps[0].attempts[0].vlm_verdict.verdict == "reject"
    assert frame_code(vgm.requests[1].image) == (1, 48)  # step 2 starts from the overridden clip


def test_override_accept_to_reject_evolves_and_regenerates(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[accept(), accept()])
    engine = make(folder, vlm, vgm, n_max=1, breakpoints=("after_verify",))
    engine.run()
    assert engine.next_command().held.kind is Kind.ACCEPT
    engine.override_verdict(1, 1, "reject", actor="ana", suggestion="The red block must not move.")
    assert engine.next_command().kind is Kind.EVOLVE  # the person decided: the breakpoint no longer holds
    engine.run()
    held = engine.next_command().held
    assert (held.kind, held.attempt) == (Kind.ACCEPT, 2)
    engine.run()
    assert vgm.requests[1].prompt == "a The red block must not move."
    assert engine.state.steps[0].attempts[1].generated.start.kind == "step_start"
    assert engine.state.finished is not None


def test_override_of_an_accepted_step_reopens_it_before_the_next_plan(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept(), accept(), accept()])
    engine = make(folder, vlm, vgm, n_max=2)
    step_until(engine, Kind.PLAN)  # plan step 1
    engine.step()
    step_until(engine, Kind.PLAN)  # step 1 accepted, step 2 not yet planned
    engine.override_verdict(1, 1, "reject", actor="ana")
    state = engine.state
    assert state.steps[0].status == "open" and state.current_frame == state.steps[0].start_frame
    engine.run()
    assert engine.state.steps[0].result_attempt == 2


def test_override_of_a_past_step_is_refused(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept(), accept()])
    engine = make(folder, vlm, n_max=2)
    step_until(engine, Kind.VERIFY)
    engine.step()
    engine.step()
    engine.step()  # plan step 2
    with pytest.raises(DecisionError, match="not the current step"):
        engine.override_verdict(1, 1, "reject", actor="ana")


# ----- request the router ----------------------------------------------------------------------------------

def test_person_requested_regen_starts_from_the_chosen_frame_and_keeps_the_prefix(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1), accept()])
    engine = make(folder, vlm, vgm, n_max=1, breakpoints=("on_reject",))
    engine.run()
    engine.request_route(1, "regen", actor="ana", attempt=1, frame_index=30, suggestion="Slowly.")
    engine.run()
    assert frame_code(vgm.requests[1].image) == (1, 30)
    assert vgm.requests[1].prompt == "a Slowly."
    second = engine.state.steps[0].attempts[1]
    assert second.purpose == "regen" and second.generated.prefix_frames == 30
    assert len(engine.artifacts.load_clip(engine.state.steps[0].result_clip)) == 30 + 25


def test_person_requested_split_replans_in_sub_steps(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("a1"), plan("a2"), plan("a3")], verdicts=[reject(0.1)] + [accept()] * 3)
    engine = make(folder, vlm, n_max=1, breakpoints=("on_reject",))
    engine.run()
    engine.request_route(1, "split", actor="ana", estimated_steps=3)
    engine.run()
    state = engine.state
    assert [s.status for s in state.steps] == ["split", "accepted", "accepted", "accepted"]
    assert [r.split.sub_step for r in vlm.requests("plan")[1:]] == [1, 2, 3]


def test_person_requested_fallback_generates_the_task_prompt(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1), accept()])
    engine = make(folder, vlm, vgm, n_max=3, breakpoints=("on_reject",))
    engine.run()
    engine.request_route(1, "fallback", actor="ana")
    engine.run()
    assert vgm.requests[1].prompt == TASK.prompt
    assert engine.state.finished is not None and len(engine.state.steps) == 1


def test_a_requested_regen_wins_over_an_accepted_clip(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[accept(), accept()])
    engine = make(folder, vlm, vgm, n_max=1, breakpoints=("after_verify",))
    engine.run()
    engine.request_route(1, "regen", actor="ana", frame_index=10, reason="the clip is too fast")
    assert engine.next_command().kind is Kind.GENERATE
    engine.run()
    engine.run()
    step = engine.state.steps[0]
    assert [a.purpose for a in step.attempts] == ["attempt", "regen"] and step.result_attempt == 2
    assert frame_code(vgm.requests[1].image) == (1, 10)


def test_regen_frame_outside_the_clip_is_refused(folder):
    engine = make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1)]), n_max=1,
                  breakpoints=("on_reject",))
    engine.run()
    with pytest.raises(DecisionError, match="outside"):
        engine.request_route(1, "regen", actor="ana", frame_index=49)
    with pytest.raises(DecisionError, match="between 2 and 8"):
        engine.request_route(1, "split", actor="ana", estimated_steps=1)


# ----- annotations never change the flow --------------------------------------------------------------------

def test_annotations_are_recorded_without_changing_the_next_command(folder):
    engine = make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.3, "Go up.")]), n_max=1,
                  breakpoints=("on_reject",))
    engine.run()
    before = engine.next_command()
    target = attempt_target(1, 1)
    engine.annotate("session", "D1", 2, actor="ana")
    engine.annotate(target, "D2", "accept", actor="ana")
    engine.annotate(target, "D3", 3, actor="ana")
    engine.annotate(target, "note", "the disc drifted", actor="bo")
    assert engine.next_command() == before
    labels = [(a.label, a.value, a.actor) for a in engine.state.annotations]
    assert labels == [("D1", 2, "ana"), ("D2", "accept", "ana"), ("D3", 3, "ana"), ("note", "the disc drifted", "bo")]


@pytest.mark.parametrize("target,label,value,message", [
    ("step:1/attempt:1", "D1", 2, "whole session"),
    ("session", "D1", 0, "between 1 and 12"),
    ("step:1/attempt:1", "D2", "maybe", "accept or reject"),
    ("step:1/attempt:1", "D3", 4, "1, 2 or 3"),
    ("step:9/attempt:1", "D2", "accept", "not an attempt"),
])
def test_bad_annotations_are_refused_with_a_clear_message(folder, target, label, value, message):
    engine = make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.3)]), n_max=1,
                  breakpoints=("on_reject",))
    engine.run()
    with pytest.raises(DecisionError, match=message):
        engine.annotate(target, label, value, actor="ana")


# ----- breakpoints -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("breakpoint,held", [
    ("before_generate", Kind.GENERATE),
    ("after_verify", Kind.ACCEPT),
])
def test_breakpoint_holds_the_run_and_step_runs_the_held_command(folder, breakpoint, held):
    engine = make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1, breakpoints=(breakpoint,))
    engine.run()
    command = engine.next_command()
    assert command.kind is Kind.WAIT and command.held.kind is held and "breakpoint" in command.reason
    result = engine.step()
    assert result.command.kind is held


def test_on_route_breakpoint_holds_before_the_router_is_asked(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1)] * 2, routes=[route("fallback")])
    engine = make(folder, vlm, n_max=1, m=2, breakpoints=("on_route",))
    engine.run()
    command = engine.next_command()
    assert command.held.kind is Kind.ROUTE and command.reason == "breakpoint: on route"
    assert vlm.requests("route") == []


def test_breakpoints_can_be_changed_during_a_session(folder):
    engine = make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1)
    engine.set_breakpoints(["before_generate"], actor="ana")
    engine.run()
    assert engine.next_command().reason == "breakpoint: before generation"
    engine.set_breakpoints([], actor="ana")
    engine.run()
    assert engine.state.finished is not None
    with pytest.raises(DecisionError, match="unknown breakpoint"):
        make(folder, ScriptedVLM()).set_breakpoints(["whenever"], actor="ana")


# ----- backend failures ---------------------------------------------------------------------------------------

def test_backend_error_is_an_event_never_an_accept(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[MalformedOutput("verifier answered 'sure!' (not JSON)")] * 2)
    engine = make(folder, vlm, n_max=1, backend_retries=1)
    state = engine.run()
    failures = [e for e in engine.store.read(engine.session_id) if e.type == "BackendFailed"]
    # Malformed output is not retried by itself (the backend already repaired once): a person decides.
    assert [(f.role, f.error, f.retryable) for f in failures] == [("verify", "MalformedOutput", False)]
    assert "not JSON" in failures[0].message
    command = engine.next_command()
    assert command.kind is Kind.WAIT and "verify failed" in command.reason
    assert state.steps[0].attempts[0].verified is None and state.finished is None


def test_a_retry_after_a_failure_continues_where_it_stopped(folder):
    vgm = ScriptedVGM(failures=[FlakyError(), FlakyError()])
    engine = make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), vgm, n_max=1, backend_retries=1)
    engine.run()
    assert engine.state.status == "failed"
    engine.run()  # a person presses run again: the held GENERATE is retried
    state = engine.state
    assert state.finished is not None and len(vgm.requests) == 3 and state.cost.clips == 1


def test_vgm_returning_float_frames_fails_clearly(folder):
    class FloatVGM(ScriptedVGM):
        def generate(self, request):
            clip = super().generate(request)
            return type(clip)(frames=clip.frames / 255.0, fps=clip.fps)

    engine = make(folder, ScriptedVLM(plans=[plan("a")]), FloatVGM(), n_max=1, backend_retries=0)
    engine.run()
    failure = engine.state.failures[-1]
    assert failure.role == "generate" and "uint8" in failure.message


# ----- fork ------------------------------------------------------------------------------------------------------

def test_fork_copies_a_prefix_and_leaves_the_original_untouched(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept(), accept()])
    engine = make(folder, vlm, n_max=2)
    engine.run()
    original = engine.store.read(engine.session_id)
    new_id = Engine.fork(engine.store, engine.session_id, at_seq=3)  # started, planned, generated
    forked = engine.store.read(new_id)
    assert [e.type for e in forked] == [e.type for e in original[:3]]
    assert forked[0].fork.parent_session == engine.session_id and forked[0].fork.at_seq == 3
    assert engine.store.read(engine.session_id) == original
    child = Engine(engine.store, folder, ScriptedVLM(verdicts=[reject(0.0)]), ScriptedVGM(), new_id)
    assert child.next_command().kind is Kind.VERIFY
    child.step()
    assert fold(engine.store.read(engine.session_id)).finished is not None

"""The edges of the method (DESIGN.md section 1) where decisions meet: recovery after a rejected fallback,
a person's route over the VLM's, the latest decision winning, a person's suggestion after evolution, and
the first failing frame."""

from __future__ import annotations

import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.loop import Kind, evolved_prompt
from collabvr.state import failing_frame_index

from scripted import ScriptedVGM, ScriptedVLM, accept, plan, reject, route, start_engine




@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")




def step_until(engine, predicate):
    for _ in range(60):
        if predicate(engine):
            return
        engine.step()
    raise AssertionError("the condition was never reached")


def last_type(engine):
    return engine.store.read(engine.session_id)[-1].type


def test_a_rejected_fallback_propagates_the_best_attempt_and_the_run_goes_on(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a"), plan("b"), plan("c")],
                      verdicts=[reject(0.1)] * 3 + [reject(0.4), accept(), accept()],
                      routes=[route("fallback")])
    state = start_engine(folder, vlm, vgm, n_max=3, m=3).run()
    first = state.steps[0]
    assert first.attempts[-1].purpose == "fallback"
    assert first.status == "propagated" and first.result_attempt == 4  # the fallback had the best fraction
    assert [s.status for s in state.steps] == ["propagated", "accepted", "accepted"]
    assert state.finished is not None and "fallback" not in state.finished.reason
    assert len(state.trajectory) == 3


def test_an_accepted_fallback_still_finishes_the_session(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1)] * 2 + [accept()], routes=[route("fallback")])
    state = start_engine(folder, vlm, n_max=3, m=2).run()
    assert len(state.steps) == 1 and "fallback" in state.finished.reason


def test_a_persons_route_supersedes_a_pending_vlm_route(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1), reject(0.1), reject(0.3)],
                      routes=[route("regen", suggestion="Slower.")])
    engine = start_engine(folder, vlm, vgm, n_max=1, m=2)
    step_until(engine, lambda e: last_type(e) == "Routed")
    engine.request_route(1, "fallback", actor="ana", reason="the whole task in one go")
    state = engine.run()
    assert [a.purpose for a in state.steps[0].attempts] == ["attempt", "attempt", "fallback"]
    assert len(vgm.requests) == 3  # the VLM's regen never runs: no extra paid clip
    assert "Slower." not in vgm.requests[-1].prompt
    assert state.steps[0].status == "propagated" and state.finished is not None


def test_the_latest_decision_on_a_step_wins_over_an_earlier_override_accept(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0), accept()])
    engine = start_engine(folder, vlm, n_max=1)
    step_until(engine, lambda e: e.next_command().kind is Kind.EVOLVE)
    engine.override_verdict(1, 1, "accept", actor="ana", reason="looks right to me")
    engine.step()
    assert engine.state.steps[0].result_attempt == 1
    engine.request_route(1, "regen", actor="ben", attempt=1, frame_index=10, reason="the end is blurry")
    state = engine.run()
    step = state.steps[0]
    assert [a.purpose for a in step.attempts] == ["attempt", "regen"]
    assert step.status == "accepted" and step.result_attempt == 2
    assert state.finished is not None


def test_an_override_to_reject_after_evolution_applies_the_persons_suggestion(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("push left")], verdicts=[reject(0.0, "Use the red block."), accept()])
    engine = start_engine(folder, vlm, vgm, n_max=1)
    step_until(engine, lambda e: last_type(e) == "PromptEvolved")
    assert engine.state.steps[0].instruction == "push left Use the red block."
    engine.override_verdict(1, 1, "reject", actor="ana", reason="it was the wrong block",
                            suggestion="Push the blue block.")
    engine.run()
    assert vgm.requests[1].prompt == "push left Push the blue block."
    evolutions = [e for e in engine.store.read(engine.session_id) if e.type == "PromptEvolved"]
    assert [e.source for e in evolutions] == ["verifier", "override"]


def test_the_router_sees_the_persons_reason_after_an_override_to_reject(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[accept("the action happened"), accept()],
                      routes=[route("regen")])
    engine = start_engine(folder, vlm, n_max=1, m=1)
    step_until(engine, lambda e: last_type(e) == "StepAccepted")
    engine.override_verdict(1, 1, "reject", actor="ana", reason="the cup fell over")
    engine.run()
    request = vlm.requests("route")[0]
    assert request.reason == "the cup fell over"


def test_a_repeated_suggestion_is_appended_once(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0, "Fix it."), reject(0.0, "Fix it."), accept()])
    start_engine(folder, vlm, vgm, seed=11, n_max=1, m=3).run()
    assert [r.prompt for r in vgm.requests] == ["a", "a Fix it.", "a Fix it."]


def test_evolved_prompt_ignores_case_and_spacing_of_a_repeat():
    assert evolved_prompt("move left. Fix it.", "fix   it.") == "move left. Fix it."
    assert evolved_prompt("move left.", "  ") == "move left."
    assert evolved_prompt("move left.", "Go slower.") == "move left. Go slower."


def test_first_failing_frame_is_exact_for_every_fraction_k_over_n():
    float_form_wrong = 0
    for n in range(1, 301):
        for k in range(n):
            assert failing_frame_index(n, k / n) == k
            float_form_wrong += int(n * (k / n)) != k
    assert float_form_wrong > 0  # the float product really is a frame early for some pairs


def test_first_failing_frame_is_clamped_and_refuses_nonsense():
    assert failing_frame_index(49, 1.0) == 48
    assert failing_frame_index(1, 1.0) == 0
    assert failing_frame_index(10, 0.99) == 9
    assert failing_frame_index(49, 0.5) == 24
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError, match="good_fraction"):
            failing_frame_index(49, bad)
    with pytest.raises(ValueError, match="frame"):
        failing_frame_index(0, 0.5)

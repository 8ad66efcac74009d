"""The method of DESIGN.md section 1, rule by rule, driven by scripted backends."""

from __future__ import annotations

import numpy as np
import pytest

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import MemoryEventStore

from scripted import ScriptedVGM, ScriptedVLM, accept, frame_code, plan, reject, route


TASK = TaskSpec(prompt="Move the red disc to the green goal.", source="upload")


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


def make(folder, vlm, vgm=None, **config):
    image = np.full((32, 32, 3), 200, dtype=np.uint8)
    return Engine.start(MemoryEventStore(), folder, vlm, vgm or ScriptedVGM(), task=TASK, input_image=image,
                        config=LoopConfig(**config), seed=7)


def types(engine):
    return [e.type for e in engine.store.read(engine.session_id)]


def run_all(engine):
    state = engine.run()
    assert state.finished is not None, f"run stopped early: {engine.next_command()}"
    return state


# ----- rule 1: PLAN ------------------------------------------------------------------------------------

def test_planner_sees_task_frames_history_and_step_of_n_max(folder):
    vlm = ScriptedVLM(plans=[plan("first"), plan("second"), plan("third")], verdicts=[accept()] * 3)
    engine = make(folder, vlm)
    run_all(engine)
    requests = vlm.requests("plan")
    assert [(r.step, r.max_steps) for r in requests] == [(1, 3), (2, 3), (3, 3)]
    assert [r.is_last for r in requests] == [False, False, True]
    assert requests[0].task_prompt == TASK.prompt
    assert [h.instruction for h in requests[2].history] == ["first", "second"]
    assert all(h.outcome == "accepted" for h in requests[2].history)


def test_task_complete_from_planner_ends_the_run_with_a_video(folder):
    vlm = ScriptedVLM(plans=[plan("go"), plan(complete=True)], verdicts=[accept()])
    engine = make(folder, vlm)
    state = run_all(engine)
    assert types(engine)[-1] == "SessionFinished"
    assert len(state.steps) == 2 and state.steps[1].plan.task_complete
    assert state.finished.final_video is not None
    assert media.count_frames(folder.path(state.finished.final_video)) == 49


def test_task_already_complete_gives_a_still_video_and_no_generation(folder):
    vgm = ScriptedVGM()
    engine = make(folder, ScriptedVLM(plans=[plan(complete=True)]), vgm)
    state = run_all(engine)
    assert vgm.requests == [] and state.cost.vgm_seconds == 0
    assert state.finished.final_video is not None


# ----- rule 2: GENERATE --------------------------------------------------------------------------------

def test_first_step_clip_is_longer_than_later_steps(folder):
    vgm = ScriptedVGM()
    engine = make(folder, ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept()] * 2), vgm, n_max=2)
    state = run_all(engine)
    assert [r.seconds for r in vgm.requests] == [6.0, 3.0]
    assert state.cost.vgm_seconds == 9.0  # the paper's cost: the nominal lengths asked for
    assert state.cost.frame_seconds == pytest.approx((49 + 25) / 8)  # what the frames last


def test_first_frame_fidelity_is_recorded_as_ssim(folder):
    class StillVGM(ScriptedVGM):
        """Holds the conditioning frame still: perfect first-frame fidelity."""

        def generate(self, request):
            clip = super().generate(request)
            return type(clip)(frames=np.repeat(request.image[None], len(clip.frames), axis=0), fps=clip.fps)

    faithful = run_all(make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), StillVGM(), n_max=1))
    # The scripted VGM paints its own colour, not the conditioning frame.
    painted = run_all(make(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1))
    assert faithful.steps[0].attempts[0].generated.first_frame_ssim > 0.99
    assert painted.steps[0].attempts[0].generated.first_frame_ssim < 0.5


# ----- rule 3: VERIFY ------------------------------------------------------------------------------------

def test_verifier_sees_one_frame_per_second_plus_last_and_first_failing_frame_is_derived(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.5), accept()])
    engine = make(folder, vlm, n_max=1)
    state = run_all(engine)
    first = vlm.requests("verify")[0]
    assert first.clip.indices == [0, 8, 16, 24, 32, 40, 48]
    assert first.clip.n_frames == 49 and len(first.clip.frames) == 7
    assert frame_code(first.clip.frames[-1]) == (1, 48)
    verified = state.steps[0].attempts[0].verified
    assert verified.first_failing_frame == int(49 * 0.5)


def test_verifier_gets_the_instruction_and_target_state(folder):
    vlm = ScriptedVLM(plans=[plan("push left", target="block at left")], verdicts=[accept()])
    run_all(make(folder, vlm, n_max=1))
    request = vlm.requests("verify")[0]
    assert (request.instruction, request.target_state) == ("push left", "block at left")


# ----- rule 4: accept ----------------------------------------------------------------------------------

def test_accepted_clip_is_appended_and_its_last_frame_conditions_the_next_step(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept(), accept()])
    state = run_all(make(folder, vlm, vgm, n_max=2))
    assert [s.status for s in state.steps] == ["accepted", "accepted"]
    assert frame_code(vgm.requests[1].image) == (1, 48)
    assert frame_code(vlm.requests("plan")[1].current_frame) == (1, 48)


# ----- rule 5: evolve and partial regeneration ---------------------------------------------------------

def test_rejected_attempt_evolves_prompt_with_suggestion(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("move right")], verdicts=[reject(0.1, "Go right, not up."), accept()])
    engine = make(folder, vlm, vgm, n_max=1)
    run_all(engine)
    assert [r.prompt for r in vgm.requests] == ["move right", "move right Go right, not up."]
    assert len(vlm.calls) == 3  # plan, verify, verify: evolution costs no VLM call
    assert "PromptEvolved" in types(engine)


def test_evolution_accumulates_across_attempts(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("x")], verdicts=[reject(0, "A."), reject(0, "B."), accept()])
    run_all(make(folder, vlm, vgm, n_max=1))
    assert vgm.requests[-1].prompt == "x A. B."


def test_retry_after_low_good_fraction_starts_from_the_step_start(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("x")], verdicts=[reject(0.2), accept()])
    state = run_all(make(folder, vlm, vgm, n_max=1))
    assert state.steps[0].attempts[1].generated.start.kind == "step_start"
    assert vgm.requests[1].seconds == 6.0


def test_partial_regeneration_starts_at_first_failing_frame_and_keeps_the_good_prefix(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("x")], verdicts=[reject(0.5), accept()])
    state = run_all(make(folder, vlm, vgm, n_max=1))
    k = int(49 * 0.5)
    assert frame_code(vgm.requests[1].image) == (1, k)
    second = state.steps[0].attempts[1].generated
    assert (second.start.kind, second.start.from_attempt, second.start.frame_index) == ("partial", 1, k)
    assert second.prefix_frames == k and second.seconds == 3.0  # a partial regen is a short clip
    result = folder.load_clip(state.steps[0].result_clip)
    assert len(result) == k + 25
    assert frame_code(result[k - 1]) == (1, k - 1) and frame_code(result[k]) == (2, 0)


# ----- rule 6: routing after M rejections ---------------------------------------------------------------

def test_router_regen_retries_once_from_first_failing_frame_with_prefix(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("x")], verdicts=[reject(0.1)] * 2 + [reject(0.5), accept()],
                      routes=[route("regen", suggestion="Slower.")])
    engine = make(folder, vlm, vgm, n_max=1, m=3)
    state = run_all(engine)
    step = state.steps[0]
    assert [a.purpose for a in step.attempts] == ["attempt"] * 3 + ["regen"]
    assert step.attempts[3].generated.start.frame_index == int(49 * 0.5)  # attempt 3 restarted: 6 s
    assert vgm.requests[3].prompt.endswith("Slower.")
    assert step.status == "accepted" and step.result_attempt == 4
    route_request = vlm.requests("route")[0]
    assert route_request.good_fraction == 0.5 and route_request.reason == "wrong direction"


def test_router_split_replans_the_residual_as_smaller_steps(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b1"), plan("b2"), plan("c")],
                      verdicts=[accept()] + [reject(0.1)] * 3 + [accept()] * 3,
                      routes=[route("split", steps=2)])
    engine = make(folder, vlm, n_max=3, m=3)
    state = run_all(engine)
    assert [s.status for s in state.steps] == ["accepted", "split", "accepted", "accepted"]
    assert state.max_steps == 4
    requests = vlm.requests("plan")
    assert [(r.step, r.max_steps) for r in requests] == [(1, 3), (2, 3), (3, 4), (4, 4)]
    assert requests[2].split.sub_step == 1 and requests[2].split.sub_steps == 2
    assert requests[2].split.failed_instruction.startswith("b1")
    assert requests[3].is_last


def test_router_fallback_generates_the_whole_remaining_task_once_and_finishes(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1)] * 3 + [accept()],
                      routes=[route("fallback", suggestion="In one go.")])
    engine = make(folder, vlm, vgm, n_max=3, m=3)
    state = run_all(engine)
    assert vgm.requests[-1].prompt == f"{TASK.prompt} In one go."
    assert vgm.requests[-1].seconds == 6.0
    assert state.steps[0].attempts[-1].purpose == "fallback"
    assert len(state.steps) == 1 and "fallback" in state.finished.reason


def test_failed_recovery_propagates_the_best_attempt_and_the_run_goes_on(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")],
                      verdicts=[reject(0.1), reject(0.6), reject(0.3), reject(0.2), accept()],
                      routes=[route("regen")])
    engine = make(folder, vlm, n_max=2, m=3)
    state = run_all(engine)
    first = state.steps[0]
    assert first.status == "propagated" and first.result_attempt == 2
    assert "BestAttemptPropagated" in types(engine)
    assert state.steps[1].status == "accepted"
    assert len(state.trajectory) == 2


def test_router_off_propagates_after_m_rejections(folder):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.4), reject(0.1)])
    engine = make(folder, vlm, n_max=1, m=2, router=False)
    state = run_all(engine)
    assert vlm.requests("route") == []
    assert state.steps[0].status == "propagated" and state.steps[0].result_attempt == 1


def test_split_sub_steps_are_not_routed_again(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("a1"), plan("a2")],
                      verdicts=[reject(0.1)] * 2 + [reject(0.1)] * 2 + [accept()],
                      routes=[route("split", steps=2)])
    state = run_all(make(folder, vlm, n_max=1, m=2))
    assert len(vlm.requests("route")) == 1
    assert [s.status for s in state.steps] == ["split", "propagated", "accepted"]


# ----- rule 7 and budgets ------------------------------------------------------------------------------

def test_final_video_is_the_concatenation_of_accepted_clips(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b"), plan("c")], verdicts=[accept(), reject(0.5), accept(), accept()])
    state = run_all(make(folder, vlm))
    expected = sum(len(folder.load_clip(c)) for c in state.trajectory)
    assert state.finished.n_frames == expected == 49 + (12 + 25) + 25
    assert media.count_frames(folder.path(state.finished.final_video)) == expected


def test_n_max_steps_end_the_run(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[accept()] * 2)
    engine = make(folder, vlm, n_max=2)
    state = run_all(engine)
    assert len(state.steps) == 2 and "budget" in state.finished.reason


def test_cost_counts_every_generated_second_and_vlm_call(folder):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[reject(0.0), accept(), accept()])
    state = run_all(make(folder, vlm, n_max=2))
    assert state.cost.clips == 3
    assert state.cost.vgm_seconds == 6.0 + 6.0 + 3.0
    assert state.cost.vlm_calls == 5
    assert state.cost.input_tokens == 500 and state.cost.output_tokens == 100


def test_cap_on_generated_seconds_stops_generation_and_propagates(folder):
    vgm = ScriptedVGM()
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.1)])
    engine = make(folder, vlm, vgm, n_max=1, m=3, max_vgm_seconds=8.0)
    state = run_all(engine)
    assert len(vgm.requests) == 1
    assert state.steps[0].status == "propagated"
    propagated = [e for e in engine.store.read(engine.session_id) if e.type == "BestAttemptPropagated"]
    assert "budget cap of 8 s" in propagated[0].reason

"""The simulated VGM and VLM, tested against a toy family (tests/toy_family.py) through the Family protocol."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabvr import media
from collabvr.state import failing_frame_index
from collabvr.backends import (
    VGM,
    VLM,
    BackendCancelled,
    BackendError,
    ClipView,
    GenerateRequest,
    PlanRequest,
    RouteRequest,
    SelectRequest,
    SplitContext,
    VerifyRequest,
)
from collabvr.sim.base import Primitive, Scene, collapse, smoothstep
from collabvr.sim.vgm import PROFILES, SimVGM, VGMProfile, instruction_part
from collabvr.sim.vlm import VERIFIER_PROFILES, SimVLM

from toy_family import Discs, move

FAMILY = Discs()
FPS = 8.0
START = FAMILY.scene({"red": (1, 1), "blue": (6, 6)})
IMAGE = FAMILY.render(START)
TASK = "Move the red disc to column 5, row 1."
RIGHT_3 = move("red disc", "right", 3)
NO_FAILURES = VGMProfile("steady", failure_rate=0.0, drift_rate=0.0)


def generate(vgm: SimVGM, prompt: str, seed: int = 0, seconds: float = 3.0, image: np.ndarray = IMAGE):
    return vgm.generate(GenerateRequest(image=image, prompt=prompt, seconds=seconds, seed=seed))


def view(frames: np.ndarray | list[np.ndarray], fps: float = FPS, per_second: float = 1.0) -> ClipView:
    """What the engine shows a VLM: frames sampled `per_second` times a second (engine: 1) plus the last."""
    frames = np.asarray(frames)
    indices = media.sample_indices(len(frames), fps, per_second)
    return ClipView(frames=[frames[i] for i in indices], indices=indices, n_frames=len(frames), fps=fps)


def motion(scene: Scene, action: Primitive, n: int) -> tuple[list[np.ndarray], Scene]:
    """n rendered frames of `action` eased from `scene` (excluding its first frame), and the end scene."""
    frames = [FAMILY.render(FAMILY.interpolate(scene, action, smoothstep(i / n))) for i in range(1, n + 1)]
    return frames, FAMILY.apply(scene, action)


def verify(frames, instruction: str, seed: int = 0, verifier: str = "perfect"):
    request = VerifyRequest(
        task_prompt=TASK,
        input_image=IMAGE,
        instruction=instruction,
        target_state="",
        clip=view(frames),
        seed=seed,
    )
    return SimVLM(FAMILY, verifier).verify(request).value


def correct_clip() -> list[np.ndarray]:
    frames, end = motion(START, RIGHT_3, 20)
    return [IMAGE] + frames + [FAMILY.render(end)] * 4


def wrong_direction_clip() -> list[np.ndarray]:
    """8 frames of the right motion (1 of 3 cells), then 16 frames of the family's wrong direction."""
    first, middle = motion(START, move("red disc", "right", 1), 8)
    # From column 2, row 1 the only wrong direction that stays on the grid is 3 cells down.
    wrong = FAMILY.wrong_direction(middle, RIGHT_3, np.random.default_rng(0))
    assert wrong == move("red disc", "down", 3)
    second, _ = motion(middle, wrong, 16)
    return [IMAGE] + first + second


# ----- the protocols -------------------------------------------------------------------------------

def test_sim_models_satisfy_the_backend_protocols_and_say_they_are_simulated():
    vgm, vlm = SimVGM(FAMILY, "hard"), SimVLM(FAMILY, "qwen3.5-9b")
    assert isinstance(vgm, VGM) and isinstance(vlm, VLM)
    assert (vgm.info.name, vgm.info.role, vgm.info.simulated) == ("sim-vgm/hard", "vgm", True)
    assert (vlm.info.name, vlm.info.role, vlm.info.simulated) == ("sim-vlm/qwen3.5-9b", "vlm", True)
    assert PROFILES["hard"].failure_rate == 0.4
    assert VERIFIER_PROFILES["gemini-2.5-pro"].accept_recall == 0.848


def test_unknown_profile_names_are_refused():
    with pytest.raises(ValueError, match="known"):
        SimVGM(FAMILY, "turbo")
    with pytest.raises(ValueError, match="known"):
        SimVLM(FAMILY, "gpt-9")


# ----- VGM ----------------------------------------------------------------------------------------

def test_same_request_gives_identical_clip():
    vgm = SimVGM(FAMILY, "hard")
    a = generate(vgm, "Move the red disc 3 cells right.", seed=7)
    b = generate(vgm, "Move the red disc 3 cells right.", seed=7)
    assert np.array_equal(a.frames, b.frames)
    assert a.info == b.info


def test_different_seeds_can_give_different_clips():
    vgm = SimVGM(FAMILY, "hard")
    clips = [generate(vgm, "Move the red disc 3 cells right.", seed=s).frames for s in range(12)]
    assert any(not np.array_equal(clips[0], other) for other in clips[1:])


def test_clip_has_round_seconds_times_fps_plus_one_frames_of_the_input_size():
    clip = generate(SimVGM(FAMILY, "perfect"), "Move the red disc 3 cells right.", seconds=2.5)
    assert clip.frames.shape == (round(2.5 * FPS) + 1, 64, 64, 3)
    assert clip.frames.dtype == np.uint8 and clip.fps == FPS
    assert np.array_equal(clip.frames[0], IMAGE)


def test_perfect_vgm_executes_one_action_and_perfect_verifier_accepts_it_complete():
    clip = generate(SimVGM(FAMILY, "perfect"), FAMILY.describe([RIGHT_3]))
    end = FAMILY.perceive(clip.frames[-1]).find("red disc")
    assert (round(end.x), round(end.y)) == (36, 12)
    assert clip.info["executed"] == ["Move the red disc 3 cells right."] and clip.info["failure"] is None
    verdict = verify(clip.frames, FAMILY.describe([RIGHT_3]))
    assert verdict.verdict == "accept" and verdict.progress == "complete" and verdict.action_executed


def test_motion_ends_by_motion_share_and_then_holds():
    clip = generate(SimVGM(FAMILY, "perfect"), FAMILY.describe([RIGHT_3]), seconds=5.0)
    n = len(clip.frames)
    settled = int(np.ceil(0.85 * (n - 1)))
    assert all(np.array_equal(clip.frames[i], clip.frames[-1]) for i in range(settled, n))
    assert not np.array_equal(clip.frames[settled - 2], clip.frames[-1])


def test_motion_is_smooth_between_frames():
    clip = generate(SimVGM(FAMILY, "perfect"), FAMILY.describe([RIGHT_3]), seconds=5.0)
    xs = [FAMILY.perceive(f).find("red disc").x for f in clip.frames]
    assert max(np.abs(np.diff(xs))) < 3.0  # 24 pixels over ~34 frames, eased: no jumps
    assert all(b >= a - 0.5 for a, b in zip(xs, xs[1:]))


def test_horizon_two_vgm_does_not_complete_four_actions():
    actions = [move("red disc", "right", 1), move("red disc", "down", 1)] * 2
    full = START
    for action in actions:
        full = FAMILY.apply(full, action)
    two = FAMILY.apply(FAMILY.apply(START, actions[0]), actions[1])
    vgm = SimVGM(FAMILY, NO_FAILURES)
    clips = [generate(vgm, FAMILY.describe(actions), seed=s) for s in range(30)]
    ends = [FAMILY.perceive(clip.frames[-1]).find("red disc") for clip in clips]
    target = full.find("red disc")
    assert all(abs(e.x - target.x) + abs(e.y - target.y) > 4 for e in ends)
    # Past the horizon the clip either stops after the two reliable actions or goes a wrong way.
    stopped = [e for e in ends if abs(e.x - two.find("red disc").x) + abs(e.y - two.find("red disc").y) < 1]
    assert 0 < len(stopped) < 30


def test_perfect_profile_executes_long_instructions():
    actions = [move("red disc", "right", 1), move("red disc", "down", 1)] * 2
    clip = generate(SimVGM(FAMILY, "perfect"), FAMILY.describe(actions))
    end = FAMILY.perceive(clip.frames[-1]).find("red disc")
    assert (round(end.x), round(end.y)) == (28, 28)


@pytest.mark.parametrize("profile, rate", [("default", 0.25), ("hard", 0.40)])
def test_failure_rate_over_seeds_matches_the_profile(profile, rate):
    vgm = SimVGM(FAMILY, profile)
    seeds = range(1000)
    failures = [generate(vgm, "Move the red disc 3 cells right.", seed=s, seconds=0.25).info["failure"] for s in seeds]
    observed = sum(f is not None for f in failures) / len(seeds)
    assert abs(observed - rate) <= 0.05
    modes = {f["mode"] for f in failures if f}
    assert modes == {"wrong_direction", "wrong_object", "stop_early", "scene_collapse"}


def test_perfect_verifier_mostly_agrees_with_the_vgm_ground_truth():
    vgm, vlm = SimVGM(FAMILY, "hard"), SimVLM(FAMILY, "perfect")
    instruction = FAMILY.describe([RIGHT_3])
    agree = 0
    for seed in range(60):
        clip = generate(vgm, instruction, seed=seed)
        request = VerifyRequest(TASK, IMAGE, instruction, "", view(clip.frames), seed)
        accepted = vlm.verify(request).value.verdict == "accept"
        # A failure late in the motion may leave a clip that still does the action, so allow a few.
        agree += accepted == (clip.info["failure"] is None)
    assert agree >= 50


def test_greedy_prompt_is_executed_straight_through_walls():
    start = FAMILY.scene({"red": (1, 3), "blue": (6, 6)})
    clip = generate(SimVGM(FAMILY, "perfect"), "Move the red disc to column 5, row 3.", image=FAMILY.render(start))
    assert clip.info["greedy"] is True
    assert clip.info["executed"] == ["Move the red disc 4 cells right."]
    scenes = [FAMILY.perceive(f) for f in clip.frames]
    assert any(FAMILY.violations(a, b) for a, b in zip(scenes, scenes[1:]))


def test_unreadable_prompt_gives_a_still_clip_and_says_so():
    clip = generate(SimVGM(FAMILY, "perfect"), "Dance elegantly.")
    assert all(np.array_equal(f, IMAGE) for f in clip.frames)
    assert clip.info["actions_read"] == [] and "still" in clip.info["note"]


def test_appended_correction_is_not_executed_as_a_second_action():
    prompt = "Move the red disc 2 cells right. Correction: move the red disc 2 cells right, not up."
    assert instruction_part(prompt) == "Move the red disc 2 cells right."
    clip = generate(SimVGM(FAMILY, "perfect"), prompt)
    assert clip.info["actions_read"] == ["Move the red disc 2 cells right."]


def test_drift_lowers_first_frame_similarity_only_at_the_start():
    drifting = SimVGM(FAMILY, VGMProfile("drifty", failure_rate=0.0, drift_rate=1.0))
    clean = SimVGM(FAMILY, NO_FAILURES)
    prompt = FAMILY.describe([RIGHT_3])
    drifted, steady = generate(drifting, prompt, seed=3), generate(clean, prompt, seed=3)
    assert drifted.info["drift"] and not steady.info["drift"]
    assert media.first_frame_ssim(IMAGE, steady.frames[0]) == pytest.approx(1.0)
    assert media.first_frame_ssim(IMAGE, drifted.frames[0]) < 0.95
    assert np.array_equal(drifted.frames[4:], steady.frames[4:])
    assert verify(drifted.frames, prompt).verdict == "accept"


def test_collapse_failure_makes_an_object_vanish_or_double():
    vgm = SimVGM(FAMILY, VGMProfile("collapsing", failure_rate=1.0, drift_rate=0.0))
    for seed in range(40):
        clip = generate(vgm, FAMILY.describe([RIGHT_3]), seed=seed)
        if clip.info["failure"]["mode"] == "scene_collapse":
            assert len(FAMILY.perceive(clip.frames[-1]).objects) != 2
            return
    pytest.fail("no collapse in 40 failing clips")


def test_seconds_out_of_range_is_a_backend_error():
    vgm = SimVGM(FAMILY)
    for seconds in (0, -1, 61):
        with pytest.raises(BackendError, match="seconds"):
            generate(vgm, "Move the red disc 1 cell right.", seconds=seconds)


def test_progress_is_reported_per_frame_and_cancel_stops_generation():
    seen: list[tuple[int, int]] = []
    request = GenerateRequest(IMAGE, "Move the red disc 1 cell right.", 1.0, 0, progress=lambda *p: seen.append(p))
    SimVGM(FAMILY).generate(request)
    assert seen == [(i, 9) for i in range(1, 10)]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(BackendCancelled):
        SimVGM(FAMILY).generate(GenerateRequest(IMAGE, "Move the red disc 1 cell right.", 1.0, 0, cancel=cancel))


def test_image_the_family_cannot_perceive_raises_backend_error():
    photo = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    with pytest.raises(BackendError, match="only understands frames of the simulated discs world"):
        generate(SimVGM(FAMILY), "Move the red disc 1 cell right.", image=photo)
    with pytest.raises(BackendError, match="cannot read"):
        SimVLM(FAMILY).plan(PlanRequest(TASK, photo, photo, [], 1, 3, 0))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    profile=st.sampled_from(["default", "hard"]),
    n_actions=st.integers(1, 4),
    seconds=st.sampled_from([0.5, 3.0, 6.0]),
)
def test_every_generated_clip_is_well_formed_and_gets_a_valid_verdict(seed, profile, n_actions, seconds):
    actions = [move("red disc", "right", 1), move("red disc", "down", 1), move("blue disc", "up", 2)][:n_actions]
    actions += [move("blue disc", "left", 1)] * (n_actions - len(actions))
    clip = generate(SimVGM(FAMILY, profile), FAMILY.describe(actions), seed=seed, seconds=seconds)
    assert clip.frames.shape == (round(seconds * FPS) + 1, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.info["simulated"] is True and len(clip.info["actions_read"]) == n_actions
    verdict = verify(clip.frames, FAMILY.describe(actions), seed=seed, verifier="gemini-2.5-pro")
    assert verdict.verdict in ("accept", "reject")


# ----- verify -------------------------------------------------------------------------------------

def test_correct_clip_is_accepted_and_half_done_clip_is_partial():
    assert verify(correct_clip(), FAMILY.describe([RIGHT_3])).progress == "complete"
    first, _ = motion(START, move("red disc", "right", 1), 8)
    verdict = verify([IMAGE] + first + [first[-1]] * 8, FAMILY.describe([RIGHT_3]))
    assert (verdict.verdict, verdict.progress) == ("accept", "partial")


def test_wrong_direction_clip_is_rejected_with_frames_up_to_the_last_good_sample_as_good_fraction():
    frames = wrong_direction_clip()
    clip = view(frames)
    assert clip.indices == [0, 8, 16, 24]
    verdict = verify(frames, FAMILY.describe([RIGHT_3]))
    assert (verdict.verdict, verdict.error_type) == ("reject", "wrong_direction")
    # Sample 8 is the last one still on the path; by sample 16 the disc has gone down. Frames 0..8 were
    # right, so the first failing frame is 9 and the sample the verifier saw fail is 16.
    assert verdict.good_fraction == pytest.approx(9 / 25)
    assert failing_frame_index(25, verdict.good_fraction) == 9
    assert verdict.suggestion.startswith("Correction:") and "Move the red disc 3 cells right." in verdict.suggestion


def test_going_back_along_the_path_is_a_wrong_direction():
    there, middle = motion(START, move("red disc", "right", 2), 8)
    back, _ = motion(middle, move("red disc", "left", 2), 16)
    verdict = verify([IMAGE] + there + back, FAMILY.describe([RIGHT_3]))
    assert verdict.error_type == "wrong_direction" and "back" in verdict.reason


def test_collapse_clip_is_rejected_as_scene_collapse():
    first, middle = motion(START, move("red disc", "right", 1), 8)
    collapsed, _ = collapse(middle, np.random.default_rng(1))
    frames = [IMAGE] + first + [FAMILY.render(collapsed)] * 16
    verdict = verify(frames, FAMILY.describe([RIGHT_3]))
    assert (verdict.verdict, verdict.error_type) == ("reject", "scene_collapse")
    assert verdict.good_fraction == pytest.approx(9 / 25)  # frames 0..8 were right
    assert "must not vanish or be doubled" in verdict.suggestion


def test_wrong_object_clip_is_rejected_as_wrong_object():
    wrong = FAMILY.wrong_object(START, move("red disc", "up", 1), np.random.default_rng(0))
    assert wrong is not None and wrong.obj == "blue disc"
    frames, _ = motion(START, wrong, 16)
    verdict = verify([IMAGE] + frames + [frames[-1]] * 8, "Move the red disc 1 cell up.")
    assert (verdict.verdict, verdict.error_type) == ("reject", "wrong_object")
    assert "keep the blue disc still" in verdict.suggestion
    # Half-way (sample 8) the blue disc has moved 4 pixels, within tolerance; by sample 16 it has moved 8.
    assert verdict.good_fraction == pytest.approx(9 / 25)  # frames 0..8 were right


def test_still_clip_is_rejected_as_not_executed():
    verdict = verify([IMAGE] * 25, FAMILY.describe([RIGHT_3]))
    assert (verdict.verdict, verdict.error_type, verdict.good_fraction) == ("reject", "not_executed", 0.0)
    assert "Show the motion" in verdict.suggestion


def test_crossing_a_wall_is_rejected_as_wrong_action():
    start = FAMILY.scene({"red": (1, 3), "blue": (6, 6)})
    frames, _ = motion(start, move("red disc", "right", 4), 24)
    clip = view([FAMILY.render(start)] + frames)
    request = VerifyRequest(TASK, IMAGE, "Move the red disc 4 cells right.", "", clip, 0)
    verdict = SimVLM(FAMILY, "perfect").verify(request).value
    assert (verdict.verdict, verdict.error_type) == ("reject", "wrong_action")
    assert "entered a wall" in verdict.reason


def test_verifier_aligns_a_first_frame_that_drifted_as_a_whole():
    shifted = np.clip(np.roll(IMAGE, shift=(4, -4), axis=(0, 1)).astype(int) - 8, 0, 255).astype(np.uint8)
    # Read as is, the shifted frame would put the still blue disc further away than the tolerance.
    blue_then, blue_now = FAMILY.perceive(shifted).find("blue disc"), START.find("blue disc")
    assert np.hypot(blue_then.x - blue_now.x, blue_then.y - blue_now.y) > 5.0
    verdict = verify([shifted] + correct_clip()[1:], FAMILY.describe([RIGHT_3]))
    assert (verdict.verdict, verdict.progress) == ("accept", "complete")


def test_greedy_instruction_is_checked_against_the_solution_path():
    start = FAMILY.scene({"red": (1, 3), "blue": (6, 6)})
    image, task = FAMILY.render(start), "Move the red disc to column 5, row 3."
    through_wall = generate(SimVGM(FAMILY, "perfect"), task, image=image)
    # The detour around the wall is one 8-pixel cell, so the verifier needs more than 1 frame a second
    # to see the disc leave it.
    request = VerifyRequest(task, image, task, "", view(through_wall.frames, per_second=4), 0)
    verdict = SimVLM(FAMILY, "perfect").verify(request).value
    assert verdict.verdict == "reject" and verdict.error_type in ("wrong_direction", "wrong_action")
    around = FAMILY.describe(FAMILY.solve(start, FAMILY.goal_from(task, start)))
    assert "Move the red disc" in verdict.suggestion and around in verdict.suggestion


def test_two_actions_between_samples_are_not_taken_as_cutting_the_corner_through_a_wall():
    start = FAMILY.scene({"red": (2, 2), "blue": (6, 6)})
    right, down = move("red disc", "right", 2), move("red disc", "down", 2)
    first, corner = motion(start, right, 4)
    second, end = motion(corner, down, 8)
    frames = [FAMILY.render(start)] + first + second + [FAMILY.render(end)] * 4
    clip = view(frames)
    # The straight line from sample 0 to sample 8 crosses the wall at column 3, row 3; the motion did not.
    assert FAMILY.violations(FAMILY.perceive(clip.frames[0]), FAMILY.perceive(clip.frames[1]))
    request = VerifyRequest(TASK, IMAGE, FAMILY.describe([right, down]), "", clip, 0)
    verdict = SimVLM(FAMILY, "perfect").verify(request).value
    assert (verdict.verdict, verdict.progress) == ("accept", "complete")


def test_verify_reads_the_instruction_without_its_corrections():
    instruction = FAMILY.describe([RIGHT_3]) + " Correction: move the red disc 3 cells right, not up."
    assert verify(correct_clip(), instruction).progress == "complete"


def test_unreadable_instruction_is_a_backend_error():
    with pytest.raises(BackendError, match="cannot read an action"):
        verify(correct_clip(), "Do something nice.")


def test_gemini_profile_false_reject_rate_on_correct_clips_is_near_the_paper():
    frames, _ = motion(START, RIGHT_3, 8)  # one second: the verifier samples its first and last frame
    frames = [IMAGE] + frames
    verdicts = [verify(frames, FAMILY.describe([RIGHT_3]), seed=s, verifier="gemini-2.5-pro") for s in range(400)]
    rejects = [v for v in verdicts if v.verdict == "reject"]
    assert abs(len(rejects) / 400 - 0.152) <= 0.05
    assert all(v.error_type == "other" and 0.2 <= v.good_fraction <= 0.9 for v in rejects)
    assert all(0.5 <= v.confidence < 0.75 for v in rejects)
    assert all(0.75 <= v.confidence <= 0.95 for v in verdicts if v.verdict == "accept")


def test_gemini_profile_false_accept_rate_on_wrong_clips_is_near_the_paper():
    frames, _ = motion(START, move("red disc", "down", 3), 8)
    frames = [IMAGE] + frames
    assert verify(frames, FAMILY.describe([RIGHT_3])).error_type == "wrong_direction"
    verdicts = [verify(frames, FAMILY.describe([RIGHT_3]), seed=s, verifier="gemini-2.5-pro") for s in range(400)]
    accepts = [v for v in verdicts if v.verdict == "accept"]
    assert abs(len(accepts) / 400 - 0.344) <= 0.05
    assert all(v.reason == "The action appears to have been executed." for v in accepts)


# ----- plan ---------------------------------------------------------------------------------------

def plan(frame: np.ndarray, step: int, max_steps: int, split: SplitContext | None = None, task: str = TASK):
    return SimVLM(FAMILY).plan(PlanRequest(task, IMAGE, frame, [], step, max_steps, 0, split)).value


HARD_TASK = "Move the red disc to column 5, row 4. Move the blue disc to column 2, row 5."  # 4 actions


def test_planner_spreads_remaining_actions_over_the_step_budget():
    assert len(FAMILY.solve(START, FAMILY.goal_from(HARD_TASK, START))) == 4
    first = plan(IMAGE, step=1, max_steps=2, task=HARD_TASK)
    assert not first.task_complete
    assert len(FAMILY.parse(first.instruction, START).actions) == 2
    assert first.estimated_steps_remaining == 2
    assert first.remaining_goal == FAMILY.describe(FAMILY.solve(START, FAMILY.goal_from(HARD_TASK, START)))


def test_planner_puts_every_remaining_action_into_the_last_step():
    last = plan(IMAGE, step=3, max_steps=3, task=HARD_TASK)
    assert len(FAMILY.parse(last.instruction, START).actions) == 4
    assert last.estimated_steps_remaining == 1
    split_last = plan(IMAGE, step=3, max_steps=3, split=SplitContext("x", 1, 2), task=HARD_TASK)
    assert len(FAMILY.parse(split_last.instruction, START).actions) == 4


def test_planner_takes_one_action_at_a_time_while_splitting():
    split = plan(IMAGE, step=1, max_steps=3, split=SplitContext("x", 1, 2), task=HARD_TASK)
    assert len(FAMILY.parse(split.instruction, START).actions) == 1
    assert split.estimated_steps_remaining == 4


def test_planner_target_state_describes_the_scene_after_the_instruction():
    first = plan(IMAGE, step=1, max_steps=3)
    assert first.instruction == "Move the red disc 4 cells right."
    assert first.target_state == FAMILY.describe_scene(FAMILY.apply(START, move("red disc", "right", 4)))
    assert first.observation == FAMILY.describe_scene(START)


def test_planner_says_task_complete_on_a_solved_scene():
    solved = FAMILY.render(FAMILY.apply(START, move("red disc", "right", 4)))
    result = plan(solved, step=2, max_steps=3)
    assert result.task_complete and result.instruction == "" and result.estimated_steps_remaining == 0


def test_planner_refuses_a_scene_it_cannot_plan_from_instead_of_calling_it_complete():
    without_red = START.with_objects([o for o in START.objects if o.name != "red disc"])
    with pytest.raises(BackendError, match="no way to the goal"):
        plan(FAMILY.render(without_red), step=2, max_steps=3)


# ----- route and select ---------------------------------------------------------------------------

def route(instruction: str, good_fraction: float, frame: np.ndarray = IMAGE, task: str = TASK):
    clip = view([frame] * 9)
    request = RouteRequest(task, IMAGE, instruction, clip, "bad", "Correction: try again.", good_fraction, 1, 3, 0)
    return SimVLM(FAMILY).route(request).value


def test_route_splits_an_instruction_that_conflates_actions():
    three = [move("red disc", "right", 1), move("red disc", "down", 1), move("red disc", "right", 1)]
    decision = route(FAMILY.describe(three), 0.8)
    assert (decision.action, decision.estimated_steps) == ("split", 3)
    assert decision.suggestion == "Correction: try again."


def test_route_regenerates_a_single_action_with_a_useful_prefix():
    assert route("Move the red disc 4 cells right.", 0.3).action == "regen"


def test_route_falls_back_when_the_residual_fits_in_one_clip():
    assert route("Move the red disc 4 cells right.", 0.1).action == "fallback"


def test_route_splits_the_residual_when_it_is_long_and_the_attempt_failed_early():
    decision = route("Move the blue disc 2 cells down.", 0.1, task=HARD_TASK)
    assert (decision.action, decision.estimated_steps) == ("split", 4)


def test_select_picks_the_clip_that_reached_the_goal():
    still = [IMAGE] * 9
    done_frames, _ = motion(START, move("red disc", "right", 4), 8)
    half_frames, _ = motion(START, move("red disc", "right", 2), 8)
    clips = [view(still), view([IMAGE] + half_frames), view([IMAGE] + done_frames)]
    selection = SimVLM(FAMILY).select(SelectRequest(TASK, IMAGE, clips, 0)).value
    assert selection.best_index == 2 and "clip 0: 4" in selection.reason


def test_select_ranks_a_collapsed_clip_below_a_clean_one():
    done_frames, end = motion(START, move("red disc", "right", 4), 8)
    collapsed = end.with_objects([o for o in end.objects if o.name != "blue disc"])
    broken = view([IMAGE] + done_frames[:-1] + [FAMILY.render(collapsed)])
    selection = SimVLM(FAMILY).select(SelectRequest(TASK, IMAGE, [broken, view([IMAGE] * 9)], 0)).value
    assert selection.best_index == 1


# ----- smoke tests on the real families -------------------------------------------------------------

REAL_FAMILIES = {"maze": "MazeFamily", "blocks": "BlocksFamily", "shapes": "ShapesFamily"}


def real_family(name: str):
    module = pytest.importorskip(f"collabvr.sim.{name}")
    return getattr(module, REAL_FAMILIES[name])()


@pytest.mark.parametrize("name", sorted(REAL_FAMILIES))
def test_perfect_models_solve_a_hard_task_of_each_family_step_by_step(name):
    family = real_family(name)
    task = family.generate(0, "hard")
    vlm, vgm = SimVLM(family, "perfect"), SimVGM(family, "perfect")
    image = family.render(task.initial)
    frame, video = image, [image]
    for step in range(1, 4):
        plan = vlm.plan(PlanRequest(task.prompt, image, frame, [], step, 3, 0)).value
        if plan.task_complete:
            break
        clip = vgm.generate(GenerateRequest(frame, plan.instruction, 3.0, step))
        clip_view = view(clip.frames, clip.fps)
        request = VerifyRequest(task.prompt, image, plan.instruction, plan.target_state, clip_view, step)
        verdict = vlm.verify(request).value
        assert verdict.verdict == "accept", (plan.instruction, verdict.reason)
        frame = clip.frames[-1]
        video.extend(clip.frames[1:])
    assert family.success(video, task)


@pytest.mark.parametrize("name", sorted(REAL_FAMILIES))
def test_failing_models_plan_generate_verify_route_and_select_on_each_family(name):
    family = real_family(name)
    task = family.generate(1, "hard")
    vlm, vgm = SimVLM(family, "gemini-2.5-pro"), SimVGM(family, VGMProfile("failing", failure_rate=1.0, drift_rate=1.0))
    image = family.render(task.initial)
    plan = vlm.plan(PlanRequest(task.prompt, image, image, [], 1, 3, 0)).value
    clips, verdicts = [], []
    for seed in range(4):
        clip = vgm.generate(GenerateRequest(image, plan.instruction, 3.0, seed))
        assert clip.info["failure"] is not None and clip.info["drift"]
        clips.append(view(clip.frames, clip.fps))
        request = VerifyRequest(task.prompt, image, plan.instruction, plan.target_state, clips[-1], seed)
        verdicts.append(vlm.verify(request).value)
    assert {v.verdict for v in verdicts} <= {"accept", "reject"}
    rejected = next((v for v in verdicts if v.verdict == "reject"), verdicts[0])
    decision = vlm.route(
        RouteRequest(task.prompt, image, plan.instruction, clips[0], rejected.reason, rejected.suggestion,
                     rejected.good_fraction or 0.0, 1, 3, 0)
    ).value
    assert decision.action in ("regen", "split", "fallback")
    assert 0 <= vlm.select(SelectRequest(task.prompt, image, clips, 0)).value.best_index < len(clips)

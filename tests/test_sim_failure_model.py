"""The simulated VGM's `paper` failure model, one knob at a time, and the `legacy` model kept as it was.

Each test measures a behaviour over many draws (many steps, many seeds) and would fail if the knob that
produces it stopped working.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from collabvr.backends import GenerateRequest
from collabvr.sim import get_family, make_task
from collabvr.sim.corrections import named_errors, read_prompt
from collabvr.sim.vgm import PROFILES, SimVGM, VGMProfile

from toy_family import Discs, cell_of, move

FAMILY = Discs()
FREE = [(c, r) for c in range(8) for r in range(8) if (c, r) not in FAMILY.walls and c >= 5]
# Uniform modes (each 1/4 of the hazard), a strong named fix and a strong distraction: the mechanism
# shows clearly. The calibrated profile is tested for the same direction further down.
MECHANISM = VGMProfile("mechanism", model="paper", drift_rate=0.0, difficulty_mean=0.5, difficulty_concentration=2.0,
                       mode_persistence=0.25, named_fix=0.3, vague_penalty=0.5, continue_rate=1.0)
PAPER = PROFILES["paper"]
NAMES_WRONG_DIRECTION = " Correction: Move the red disc 2 cells right. The red disc must follow exactly this motion, not another one."
VAGUE = " Correction: Make the motion clearer and steadier."


def steps():
    """Many distinct steps: (start image, instruction), each a different scene or instruction."""
    for blue in FREE:
        for cells in (1, 2):
            scene = FAMILY.scene({"red": (1, 1), "blue": blue})
            yield FAMILY.render(scene), f"Move the red disc {cells} cells right."


def generate(profile, image, prompt, seed=0, seconds=2.0):
    return SimVGM(FAMILY, profile).generate(GenerateRequest(image=image, prompt=prompt, seconds=seconds, seed=seed))


def failure_modes(profile, suffix: str, seeds=range(3)) -> list[str | None]:
    modes = []
    for image, instruction in steps():
        for seed in seeds:
            failure = generate(profile, image, instruction + suffix, seed=seed).info["failure"]
            modes.append(failure["mode"] if failure else None)
    return modes


def rate(modes: list[str | None], mode: str | None = "any") -> float:
    hits = [m for m in modes if (m is not None if mode == "any" else m == mode)]
    return len(hits) / len(modes)


# ----- reading the prompt ---------------------------------------------------------------------------

def test_corrections_are_read_for_the_errors_they_name():
    assert named_errors("Move only the red disc; keep the blue disc still.") == {"wrong_object"}
    assert named_errors("Keep every object in place: the red disc must not vanish or be doubled.") == {"scene_collapse"}
    assert "wrong_direction" in named_errors("Keep moving forward; do not turn back.")
    assert "shortcut" in named_errors("Respect the scene's rules: the red disc crossed a wall must not happen.")
    assert named_errors("Make the motion clearer and steadier.") == frozenset()
    read = read_prompt("Move the red disc 2 cells right." + NAMES_WRONG_DIRECTION + VAGUE)
    assert read.instruction == "Move the red disc 2 cells right."
    assert read.named == {"wrong_direction"} and read.vague and len(read.corrections) == 2


# ----- instruction sensitivity ----------------------------------------------------------------------

def test_a_correction_naming_the_error_lowers_that_errors_rate_and_not_the_others():
    plain = failure_modes(MECHANISM, "", seeds=range(6))
    named = failure_modes(MECHANISM, NAMES_WRONG_DIRECTION, seeds=range(6))
    assert rate(plain, "wrong_direction") > 0.08
    assert rate(named, "wrong_direction") < 0.6 * rate(plain, "wrong_direction")
    others = ("wrong_object", "stop_early", "scene_collapse")
    assert sum(rate(named, m) for m in others) > 0.85 * sum(rate(plain, m) for m in others)


def test_a_vague_correction_does_not_lower_errors_and_distracts_the_model():
    plain = failure_modes(MECHANISM, "")
    vague = failure_modes(MECHANISM, VAGUE)
    assert rate(vague) > rate(plain) + 0.03
    assert rate(vague, "wrong_direction") >= rate(plain, "wrong_direction")


def test_the_calibrated_profile_follows_a_named_correction():
    plain = failure_modes(PAPER, "", seeds=range(4))
    named = failure_modes(PAPER, NAMES_WRONG_DIRECTION, seeds=range(4))
    assert rate(named, "wrong_direction") < 0.9 * rate(plain, "wrong_direction")


def test_a_correction_repeated_twice_counts_once():
    image, instruction = next(steps())
    once = generate(MECHANISM, image, instruction + NAMES_WRONG_DIRECTION, seed=5)
    twice = generate(MECHANISM, image, instruction + NAMES_WRONG_DIRECTION * 2, seed=5)
    assert np.array_equal(once.frames, twice.frames) and once.info["failure"] == twice.info["failure"]


def test_a_move_written_twice_or_restated_in_a_correction_is_executed_once():
    steady = dataclasses.replace(PAPER, difficulty_mean=0.0, overload_hazard=0.0, continue_rate=1.0, drift_rate=0.0)
    image = FAMILY.render(FAMILY.scene({"red": (1, 1), "blue": (6, 6)}))
    for prompt in ("Move the red disc 2 cells right. Move the red disc 2 cells right.",
                   "Move the red disc 2 cells right. Correction: Move the red disc 2 cells right, not up."):
        clip = generate(steady, image, prompt)
        assert cell_of(FAMILY.perceive(clip.frames[-1]).find("red disc")) == (3, 1), prompt
        assert clip.info["truth"]["moves_executed"] == ["Move the red disc 2 cells right."]


# ----- per-step difficulty ----------------------------------------------------------------------------

def test_a_steps_difficulty_is_the_same_on_every_retry_and_drawn_anew_for_a_new_phrasing():
    start = FAMILY.scene({"red": (1, 1), "blue": (6, 6)})
    action = move("red disc", "right", 3)
    middle = FAMILY.render(FAMILY.interpolate(start, action, 0.5))
    instruction = FAMILY.describe([action])
    latents = [generate(PAPER, FAMILY.render(start), instruction + suffix, seed=s).info["latent"]
               for s, suffix in enumerate(("", NAMES_WRONG_DIRECTION, VAGUE))]
    latents.append(generate(PAPER, middle, instruction, seed=9).info["latent"])  # a partial regeneration
    assert all(latent == latents[0] for latent in latents)
    others = {json.dumps(generate(PAPER, FAMILY.render(start), f"Move the red disc {n} cells right.").info["latent"])
              for n in (1, 2, 4)}
    assert len(others | {json.dumps(latents[0])}) > 1


def test_failures_of_the_same_step_are_correlated_across_retries():
    first, second = [], []
    for image, instruction in steps():
        truths = [generate(PAPER, image, instruction, seed=s).info["truth"]["verdict"] for s in (11, 12)]
        first.append(truths[0] == "reject")
        second.append(truths[1] == "reject")
    first, second = np.array(first), np.array(second)
    assert 0.1 < first.mean() < 0.9
    # Given that the first try failed, the retry fails far more often than a retry in general.
    assert second[first].mean() > second.mean() + 0.2
    assert second[~first].mean() < second.mean() - 0.1


# ----- partial competence ------------------------------------------------------------------------------

def test_a_four_move_prompt_is_sometimes_executed_only_for_its_first_moves():
    steady = dataclasses.replace(PAPER, difficulty_mean=0.0, overload_hazard=0.0, drift_rate=0.0)
    start = FAMILY.scene({"red": (0, 0), "blue": (7, 7)})
    actions = [move("red disc", "right", 1), move("red disc", "down", 1)] * 2
    attempted = []
    for seed in range(40):
        clip = generate(steady, FAMILY.render(start), FAMILY.describe(actions), seed=seed)
        n = clip.info["overload"]["attempted"]
        attempted.append(n)
        expected = start
        for action in actions[:n]:
            expected = FAMILY.apply(expected, action)
        end = FAMILY.perceive(clip.frames[-1]).find("red disc")
        assert cell_of(end) == cell_of(expected.find("red disc"))
        assert clip.info["truth"]["verdict"] == "accept"  # partial progress is no error
    assert 4 in attempted and any(n < 4 for n in attempted) and min(attempted) >= 1


def test_a_crowded_prompt_is_followed_less_well_even_for_its_first_move():
    profile = dataclasses.replace(MECHANISM, difficulty_mean=0.05, overload_hazard=0.2, continue_rate=0.0)
    crowded = " Move the red disc 1 cell down. Move the blue disc 1 cell up. Move the blue disc 1 cell left."
    alone, among = [], []
    for image, instruction in steps():
        for seed in range(2):
            alone.append(generate(profile, image, instruction, seed=seed).info["failure"] is not None)
            clip = generate(profile, image, instruction + crowded, seed=seed)
            assert clip.info["overload"] == {"asked": 4, "attempted": 1}  # only the first move is tried
            among.append(clip.info["failure"] is not None)
    assert np.mean(among) > np.mean(alone) + 0.3


def test_the_raw_maze_prompt_takes_the_wall_shortcut_for_some_tasks_and_the_route_for_others():
    maze = get_family("maze")
    outcomes = []
    for seed in range(30):
        task = make_task("maze", "hard", seed)
        clip = SimVGM(maze, "paper").generate(GenerateRequest(maze.render(task.initial), task.prompt, 6.0, 0))
        info = clip.info
        assert info["greedy"] is True
        if info["shortcut"]:
            assert info["truth"]["moves_asked"] == ["Move the red disc straight to " + _cell(task.goal) + "."]
        else:
            assert len(info["truth"]["moves_asked"]) >= 4  # the proper route around the walls
        outcomes.append((info["shortcut"], bool(info["truth"]["violations"]),
                         info["overload"]["attempted"] < info["overload"]["asked"]))
    assert any(shortcut and through_wall for shortcut, through_wall, _ in outcomes)
    assert not all(shortcut for shortcut, _, _ in outcomes)
    assert any(partly for shortcut, _, partly in outcomes if not shortcut)


def _cell(goal) -> str:
    return f"row {goal.row + 1}, column {goal.col + 1}"


# ----- ground truth ------------------------------------------------------------------------------------

def test_the_ground_truth_names_the_frame_where_a_visible_failure_begins():
    failing = dataclasses.replace(MECHANISM, difficulty_mean=1.0)
    modes = set()
    for image, instruction in list(steps())[::3]:
        start = FAMILY.perceive(image)
        for seed in range(3):
            clip = generate(failing, image, instruction, seed=seed, seconds=3.0)
            failure, truth = clip.info["failure"], clip.info["truth"]
            if truth["verdict"] != "reject":
                continue
            assert truth["simulated"] and failure["mode"] == truth["error"]
            modes.add(failure["mode"])
            if failure["mode"] == "scene_collapse":
                continue  # the toy world's perception can merge a doubled disc with its twin
            scenes = [FAMILY.perceive(frame) for frame in clip.frames]
            # Up to the failure the clip does what was asked (the red disc moves right along its row, the
            # blue one stays); from the failure on some frame shows otherwise.
            frame = failure["frame"]
            assert as_asked(scenes[:frame], start)
            assert not as_asked(scenes, start)
    assert modes == {"wrong_direction", "wrong_object", "scene_collapse"}


def as_asked(scenes, start) -> bool:
    """Whether frames of "move the red disc right" could be right: both discs, the blue one still, the red
    one on its row and never going back."""
    furthest = start.find("red disc").x
    for scene in scenes:
        red, blue = scene.find("red disc"), scene.find("blue disc")
        if len(scene.objects) != 2 or red is None or blue != start.find("blue disc"):
            return False
        if abs(red.y - start.find("red disc").y) >= 0.5 or red.x < furthest - 0.5:
            return False
        furthest = max(furthest, red.x)
    return True


# ----- the legacy model ----------------------------------------------------------------------------------

# sha256 over the frames of 54 clips (3 families x 2 tasks x 3 prompts x 3 seeds) that the simulated VGM's
# default profile produced before the paper model existed (commit 57427f2).
LEGACY_DIGEST = "ca30e15773d868da3e632dbf7501e9c76ddd7056bb02fe1b0d53d32d2d8119e8"


@pytest.mark.parametrize("name", ["legacy", "default"])
def test_the_legacy_profile_renders_exactly_the_clips_of_the_old_default(name):
    digests = {}
    for family_name in ("maze", "blocks", "shapes"):
        family = get_family(family_name)
        for task_seed in (1, 2):
            task = make_task(family_name, "hard", task_seed)
            image = family.render(task.initial)
            plan = family.solve(task.initial, task.goal)
            prompts = [task.prompt, family.describe(plan[:2]),
                       family.describe(plan[:2]) + " Correction: Keep moving forward; do not turn back."]
            for index, prompt in enumerate(prompts):
                for seed in (0, 7, 13):
                    clip = SimVGM(family, name).generate(GenerateRequest(image, prompt, 3.0, seed))
                    key = f"{family_name}/{task_seed}/{index}/{seed}"
                    digests[key] = hashlib.sha256(np.ascontiguousarray(clip.frames).tobytes()).hexdigest()[:16]
    assert hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest() == LEGACY_DIGEST

"""The blocks family: generation, pixels (render/perceive, H.264), grammar, dynamics, planning, success."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, HealthCheck, given, settings
from hypothesis import strategies as st

from collabvr import media
from collabvr.sim.base import (
    PALETTE,
    GrammarError,
    PerceptionError,
    Primitive,
    Scene,
    collapse,
    drift_image,
)
from collabvr.sim.blocks import (
    BLOCK_COLOURS,
    BlocksFamily,
    BlocksGoal,
    config_of,
    in_air,
    layout_for,
)

FAMILY = BlocksFamily()
POSITION_TOLERANCE = 0.75
SIZE_TOLERANCE = 1.5
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(min_value=0, max_value=10_000)
difficulties = st.sampled_from(["easy", "hard"])


def assert_same_scene(expected: Scene, seen: Scene) -> None:
    """Same layout and the same blocks (matched by name, nearest first) within the perception tolerance."""
    assert seen.layout == expected.layout
    assert sorted(seen.names()) == sorted(expected.names())
    unmatched = list(seen.objects)
    for obj in expected.objects:
        twin = min((o for o in unmatched if o.name == obj.name), key=lambda o: abs(o.x - obj.x) + abs(o.y - obj.y))
        unmatched.remove(twin)
        assert abs(twin.x - obj.x) <= POSITION_TOLERANCE, (obj, twin)
        assert abs(twin.y - obj.y) <= POSITION_TOLERANCE, (obj, twin)
        assert abs(twin.size - obj.size) <= SIZE_TOLERANCE, (obj, twin)


def random_legal_moves(scene: Scene, choices: list[tuple[int, int]]) -> Scene:
    """Apply legal moves (a top block to another pad) picked by the given (source, target) numbers."""
    for source_pick, target_pick in choices:
        config = config_of(scene)
        assert config is not None
        sources = [p for p, stack in enumerate(config) if stack]
        source = sources[source_pick % len(sources)]
        targets = [p for p in range(len(config)) if p != source]
        target = targets[target_pick % len(targets)]
        scene = FAMILY.apply(scene, Primitive("put", f"{config[source][-1]} block", ("pad", "ABCD"[target])))
    return scene


def play(scene: Scene, plan: list[Primitive], steps: int = 6) -> tuple[Scene, list[np.ndarray]]:
    """Render a clip acting out `plan`; returns the final scene and the frames."""
    frames = [FAMILY.render(scene)]
    for action in plan:
        for t in np.linspace(0, 1, steps)[1:]:
            frames.append(FAMILY.render(FAMILY.interpolate(scene, action, float(t))))
        scene = FAMILY.apply(scene, action)
    return scene, frames


moves = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=6)


# ----- generation -----------------------------------------------------------------------------------

def test_generate_is_deterministic_per_seed_and_difficulty():
    for seed in range(5):
        for difficulty in ("easy", "hard"):
            assert FAMILY.generate(seed, difficulty) == FAMILY.generate(seed, difficulty)
    assert len({FAMILY.generate(seed, "hard").prompt for seed in range(10)}) > 1


def test_generate_rejects_unknown_difficulty():
    with pytest.raises(ValueError):
        FAMILY.generate(0, "medium")


@pytest.mark.parametrize("difficulty,pads,blocks", [("easy", 3, (2, 3)), ("hard", 4, (3, 5))])
def test_generated_scenes_have_the_difficultys_pads_and_distinct_blocks(difficulty, pads, blocks):
    for seed in range(20):
        task = FAMILY.generate(seed, difficulty)
        assert task.initial.layout.n_pads == pads
        assert task.initial.size == (128, 128)
        names = task.initial.names()
        assert blocks[0] <= len(names) <= blocks[1]
        assert len(set(names)) == len(names)
        assert all(n.removesuffix(" block") in BLOCK_COLOURS for n in names)
        assert not in_air(task.initial)


def test_easy_tasks_need_one_or_two_moves_and_hard_tasks_at_least_three():
    for seed in range(30):
        assert 1 <= len(FAMILY.solve((easy := FAMILY.generate(seed, "easy")).initial, easy.goal)) <= 2
        assert len(FAMILY.solve((hard := FAMILY.generate(seed, "hard")).initial, hard.goal)) >= 3


def test_hard_tasks_include_stacking_and_sorting():
    kinds = {FAMILY.generate(seed, "hard").meta["kind"] for seed in range(30)}
    assert kinds == {"stack", "sort"}
    prompts = [FAMILY.generate(seed, "hard").prompt for seed in range(30)]
    assert any(p.startswith("Stack all the blocks on pad") and p.endswith("block on top.") for p in prompts)
    assert any(p.startswith("Sort the blocks: the ") for p in prompts)


def test_layout_is_hashable_and_fixed_by_pad_count():
    assert hash(layout_for(3)) == hash(layout_for(3))
    assert layout_for(4).pad_xs == tuple(sorted(layout_for(4).pad_xs))
    with pytest.raises(ValueError):
        layout_for(5)


# ----- pixels ---------------------------------------------------------------------------------------

def test_render_draws_floor_pads_and_blocks_in_their_colours():
    task = FAMILY.generate(0, "hard")
    image = FAMILY.render(task.initial)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    layout = task.initial.layout
    assert tuple(image[layout.floor_y, 64]) == PALETTE["black"]
    for x in layout.pad_xs:
        assert tuple(image[layout.pad_top + 1, x]) == PALETTE["grey"]
    for obj in task.initial.objects:
        assert tuple(image[int(obj.y), int(obj.x)]) == obj.color


@FAST
@given(seeds, difficulties)
def test_perceive_inverts_render_on_generated_scenes(seed, difficulty):
    scene = FAMILY.generate(seed, difficulty).initial
    assert_same_scene(scene, FAMILY.perceive(FAMILY.render(scene)))


@FAST
@given(seeds, difficulties, moves)
def test_perceive_inverts_render_after_random_legal_moves(seed, difficulty, choices):
    scene = random_legal_moves(FAMILY.generate(seed, difficulty).initial, choices)
    assert_same_scene(scene, FAMILY.perceive(FAMILY.render(scene)))


@FAST
@given(seeds, difficulties, moves, st.floats(0.0, 1.0))
def test_perceive_inverts_render_mid_move(seed, difficulty, choices, t):
    task = FAMILY.generate(seed, difficulty)
    scene = random_legal_moves(task.initial, choices)
    plan = FAMILY.solve(scene, task.goal)
    assume(plan)  # a legal next move: an illegal one may pull a block through another and hide it
    moving = FAMILY.interpolate(scene, plan[0], t)
    assert_same_scene(moving, FAMILY.perceive(FAMILY.render(moving)))


def test_perception_survives_an_h264_round_trip(tmp_path):
    task = FAMILY.generate(4, "hard")
    scenes = [task.initial]
    scene = task.initial
    for action in FAMILY.solve(task.initial, task.goal):
        scenes += [FAMILY.interpolate(scene, action, float(t)) for t in np.linspace(0, 1, 8)[1:]]
        scene = FAMILY.apply(scene, action)
    path = media.write_mp4([FAMILY.render(s) for s in scenes], 8, tmp_path / "clip.mp4")
    decoded = media.read_frames(path)
    assert len(decoded) == len(scenes)
    for expected, frame in zip(scenes, decoded):
        assert_same_scene(expected, FAMILY.perceive(frame))
    assert FAMILY.success(list(decoded), task)


def test_perceive_sees_a_doubled_block_twice_and_a_vanished_block_not_at_all():
    scene = FAMILY.generate(2, "hard").initial
    for seed in range(6):
        collapsed, _ = collapse(scene, np.random.default_rng(seed))
        assert sorted(FAMILY.perceive(FAMILY.render(collapsed)).names()) == sorted(collapsed.names())


def test_perceive_reads_a_drifted_frame_relative_to_its_stage():
    task = FAMILY.generate(5, "hard")
    for seed in range(5):
        drifted = drift_image(FAMILY.render(task.initial), np.random.default_rng(seed))
        seen = FAMILY.perceive(drifted)
        assert sorted(seen.names()) == sorted(task.initial.names())
        for obj in task.initial.objects:
            assert abs(seen.find(obj.name).x - obj.x) <= 1.5 and abs(seen.find(obj.name).y - obj.y) <= 1.5
        # A goal the undrifted scene satisfies is still met in the drifted frame.
        first = task.initial.objects[0]
        where = "ABCD"[task.initial.layout.nearest_pad(first.x)]
        met = dataclasses.replace(task, goal=FAMILY.goal_from(f"Put the {first.name} on pad {where}.", task.initial))
        assert FAMILY.success([drifted], met)


def test_perceive_rejects_noise_blank_and_wrong_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(PerceptionError):
        FAMILY.perceive(rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8))
    with pytest.raises(PerceptionError):
        FAMILY.perceive(np.full((128, 128, 3), 250, dtype=np.uint8))
    with pytest.raises(PerceptionError):
        FAMILY.perceive(np.zeros((128, 128, 3), dtype=np.uint8))
    with pytest.raises(PerceptionError):
        FAMILY.perceive(FAMILY.render(FAMILY.generate(0, "easy").initial)[:96])


def test_perceive_rejects_a_floor_without_pads():
    image = FAMILY.render(FAMILY.generate(0, "easy").initial)
    layout = FAMILY.generate(0, "easy").initial.layout
    image[layout.pad_top: layout.floor_y] = PALETTE["white"]
    with pytest.raises(PerceptionError):
        FAMILY.perceive(image)


# ----- language -------------------------------------------------------------------------------------

@FAST
@given(seeds, difficulties, moves)
def test_describe_and_parse_round_trip_plans(seed, difficulty, choices):
    task = FAMILY.generate(seed, difficulty)
    scene = random_legal_moves(task.initial, choices)
    plan = FAMILY.solve(scene, task.goal) + FAMILY.greedy(scene, task.goal)
    if not plan:
        return
    text = FAMILY.describe(plan)
    assert text[0].isupper() and text.endswith(".")
    assert FAMILY.parse(text, scene).actions == tuple(plan)
    assert FAMILY.parse(text, scene).unparsed == ()


def test_parse_tolerates_synonyms_case_and_connectives():
    scene = FAMILY.generate(0, "hard").initial
    parsed = FAMILY.parse(
        "place the BLUE block onto pad c and Move the red block on top of the blue block; then the green block "
        "on pad A.",
        scene,
    )
    assert parsed.actions == (
        Primitive("put", "blue block", ("pad", "C")),
        Primitive("put", "red block", ("on", "blue block")),
        Primitive("put", "green block", ("pad", "A")),
    )
    assert not parsed.greedy and parsed.unparsed == ()


def test_parse_keeps_unreadable_sentences_and_unknown_pads_apart():
    easy = FAMILY.generate(0, "easy").initial  # three pads: there is no pad D
    parsed = FAMILY.parse("Put the red block on pad D. Juggle the blocks, then put the blue block on pad A.", easy)
    assert parsed.actions == (Primitive("put", "blue block", ("pad", "A")),)
    assert parsed.unparsed == ("put the red block on pad d", "juggle the blocks")


def test_task_prompts_parse_as_greedy_and_goal_from_reads_the_goal_back():
    for seed in range(20):
        for difficulty in ("easy", "hard"):
            task = FAMILY.generate(seed, difficulty)
            assert FAMILY.goal_from(task.prompt, task.initial) == task.goal
            parsed = FAMILY.parse(task.prompt, task.initial)
            if task.meta["kind"] in ("stack", "sort"):
                assert parsed.greedy and parsed.actions == ()
            else:  # an easy prompt is itself one pick-and-place instruction
                assert len(parsed.actions) == 1


def test_goal_from_reads_each_prompt_form():
    scene = FAMILY.generate(0, "hard").initial
    blocks = tuple(sorted(n.removesuffix(" block") for n in scene.names()))
    assert FAMILY.goal_from("Put the blue block on pad C.", scene) == BlocksGoal(blocks, on_pad=(("blue", "C"),))
    assert FAMILY.goal_from("put the red block onto the blue block", scene) == BlocksGoal(
        blocks, on_block=(("red", "blue"),)
    )
    assert FAMILY.goal_from(
        "Stack all the blocks on pad D with the red block at the bottom, then the yellow block, then the blue "
        "block on top.",
        scene,
    ) == BlocksGoal(blocks, stacks=(("D", ("red", "yellow", "blue")),))
    assert FAMILY.goal_from(
        "Sort the blocks: the red block on pad A, the blue block on pad B, and the green block on pad C.", scene
    ) == BlocksGoal(blocks, on_pad=(("red", "A"), ("blue", "B"), ("green", "C")))


@pytest.mark.parametrize(
    "prompt",
    [
        "Make me a sandwich.",
        "Put the orange block on pad A.",
        "Put the red block on pad E.",
        "Stack all the blocks on pad A with the red block at the bottom, then the red block on top.",
        "Put the red block on pad A, then put the blue block on pad B.",
    ],
)
def test_goal_from_rejects_prompts_it_cannot_read(prompt):
    with pytest.raises(GrammarError):
        FAMILY.goal_from(prompt, FAMILY.generate(0, "hard").initial)


def test_describe_scene_lists_every_pad_bottom_to_top_and_blocks_in_the_air():
    layout = layout_for(3)
    scene = FAMILY._scene_from_config(layout, (("red", "blue"), (), ("green",)))
    assert FAMILY.describe_scene(scene) == (
        "Pad A holds the red block under the blue block; pad B is empty; pad C holds the green block."
    )
    carried = FAMILY.interpolate(scene, Primitive("put", "blue block", ("pad", "B")), 0.5)
    assert "The blue block is in the air" in FAMILY.describe_scene(carried)


# ----- dynamics -------------------------------------------------------------------------------------

def test_apply_puts_the_block_on_top_of_the_destination_stack():
    layout = layout_for(3)
    scene = FAMILY._scene_from_config(layout, (("red", "blue"), (), ("green",)))
    after = FAMILY.apply(scene, Primitive("put", "blue block", ("on", "green block")))
    assert config_of(after) == (("red",), (), ("green", "blue"))
    assert after.find("blue block").y == layout.rest_y(1) and after.find("blue block").x == layout.pad_xs[2]
    assert after.names() == scene.names()
    assert not in_air(after)


def test_apply_of_a_missing_block_leaves_the_scene_unchanged():
    scene = FAMILY._scene_from_config(layout_for(3), (("red",), (), ()))
    assert FAMILY.apply(scene, Primitive("put", "blue block", ("pad", "B"))) == scene
    assert FAMILY.interpolate(scene, Primitive("put", "blue block", ("pad", "B")), 0.5) == scene


def test_apply_does_not_check_legality():
    scene = FAMILY._scene_from_config(layout_for(3), (("red", "blue"), (), ()))
    after = FAMILY.apply(scene, Primitive("put", "red block", ("pad", "C")))  # red is under blue
    assert after.find("red block").x == layout_for(3).pad_xs[2]
    assert in_air(after) == ["blue block"]


def test_interpolate_lifts_carries_above_every_stack_and_lowers():
    layout = layout_for(4)
    scene = FAMILY._scene_from_config(layout, (("red",), ("green", "yellow", "purple"), (), ()))
    action = Primitive("put", "red block", ("pad", "D"))
    path = [FAMILY.interpolate(scene, action, float(t)).find("red block") for t in np.linspace(0, 1, 401)]
    assert FAMILY.interpolate(scene, action, 0.0) == scene
    assert FAMILY.interpolate(scene, action, 1.0) == FAMILY.apply(scene, action)
    steps = [abs(a.x - b.x) + abs(a.y - b.y) for a, b in zip(path, path[1:])]
    assert max(steps) < 2.0  # continuous: no jumps between close t
    tallest_top = layout.rest_y(2) - layout.block_size / 2
    for block in path:
        if min(abs(block.x - x) for x in layout.pad_xs) > layout.block_size:  # between pads: above all stacks
            assert block.y + block.size / 2 < tallest_top
    assert path[5].x == path[0].x and path[5].y < path[0].y  # starts by lifting straight up
    assert path[-6].x == path[-1].x and path[-6].y < path[-1].y  # ends by lowering straight down


# ----- planning and success --------------------------------------------------------------------------

@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_executing_solve_reaches_distance_zero_and_success_on_the_rendered_clip(difficulty):
    for seed in range(4):
        task = FAMILY.generate(seed, difficulty)
        plan = FAMILY.solve(task.initial, task.goal)
        assert FAMILY.distance(task.initial, task.goal) == len(plan)
        scene = task.initial
        for k, action in enumerate(plan):
            assert FAMILY.distance(scene, task.goal) == len(plan) - k
            scene = FAMILY.apply(scene, action)
        assert FAMILY.distance(scene, task.goal) == 0 and FAMILY.solve(scene, task.goal) == []
        final, frames = play(task.initial, plan)
        assert FAMILY.success(frames, task)
        assert not FAMILY.success(frames[:1], task)


def test_solve_plans_are_legal_moves_of_top_blocks():
    task = FAMILY.generate(7, "hard")
    scene = task.initial
    for action in FAMILY.solve(scene, task.goal):
        config = config_of(scene)
        assert action.obj.removesuffix(" block") in [stack[-1] for stack in config if stack]
        scene = FAMILY.apply(scene, action)
        assert not in_air(scene)


def test_a_block_left_in_mid_air_is_put_down_before_anything_else():
    task = FAMILY.generate(1, "easy")
    action = FAMILY.solve(task.initial, task.goal)[0]
    almost = FAMILY.interpolate(task.initial, action, 0.9)
    assert in_air(almost)
    # Where it hangs the planner's config already shows the goal, yet the pixel test fails: one move left.
    assert FAMILY.distance(almost, task.goal) == 1 + FAMILY.distance(FAMILY.apply(task.initial, action), task.goal)
    plan = FAMILY.solve(almost, task.goal)
    assert plan[0].obj == action.obj
    final = almost
    for step in plan:
        final = FAMILY.apply(final, step)
    assert not in_air(final) and FAMILY.success([FAMILY.render(final)], task)


def test_clip_with_a_vanished_or_doubled_block_fails_success():
    task = FAMILY.generate(3, "easy")
    final, frames = play(task.initial, FAMILY.solve(task.initial, task.goal))
    for seed in range(4):
        collapsed, what = collapse(final, np.random.default_rng(seed))
        assert not FAMILY.success(frames + [FAMILY.render(collapsed)], task), what
        assert FAMILY.distance(collapsed, task.goal) >= 1000


def test_clip_ending_with_a_block_in_the_air_fails_success():
    task = FAMILY.generate(3, "easy")
    plan = FAMILY.solve(task.initial, task.goal)
    scene = task.initial
    for action in plan[:-1]:
        scene = FAMILY.apply(scene, action)
    hovering = FAMILY.interpolate(scene, plan[-1], 0.97)
    assert in_air(hovering)
    assert not FAMILY.success([FAMILY.render(hovering)], task)
    assert not FAMILY.success([np.zeros((128, 128, 3), dtype=np.uint8)], task)


def test_greedy_moves_blocks_straight_to_their_places_even_when_covered():
    layout = layout_for(4)
    scene = FAMILY._scene_from_config(layout, (("blue", "red"), ("yellow",), (), ()))
    goal = BlocksGoal(("blue", "red", "yellow"), stacks=(("D", ("red", "yellow", "blue")),))
    assert FAMILY.greedy(scene, goal) == [
        Primitive("put", "red block", ("pad", "D")),
        Primitive("put", "yellow block", ("on", "red block")),
        Primitive("put", "blue block", ("on", "yellow block")),
    ]
    sort = BlocksGoal(("blue", "red", "yellow"), on_pad=(("blue", "C"), ("red", "A")))
    assert FAMILY.greedy(scene, sort) == [Primitive("put", "blue block", ("pad", "C"))]  # blue is under red
    satisfied = FAMILY.apply(scene, Primitive("put", "red block", ("pad", "D")))
    assert FAMILY.greedy(satisfied, BlocksGoal(goal.blocks, on_pad=(("red", "D"),))) == []


def test_wrong_direction_sends_the_same_block_elsewhere():
    task = FAMILY.generate(11, "hard")
    action = FAMILY.solve(task.initial, task.goal)[0]
    right = FAMILY.apply(task.initial, action).find(action.obj)
    for seed in range(8):
        wrong = FAMILY.wrong_direction(task.initial, action, np.random.default_rng(seed))
        assert wrong is not None and wrong.obj == action.obj and wrong.args != action.args
        assert FAMILY.apply(task.initial, wrong).find(action.obj).x != right.x


def test_wrong_object_moves_another_top_block_to_the_same_place():
    layout = layout_for(3)
    scene = FAMILY._scene_from_config(layout, (("red", "blue"), ("green",), ()))
    action = Primitive("put", "blue block", ("pad", "C"))
    for seed in range(5):
        wrong = FAMILY.wrong_object(scene, action, np.random.default_rng(seed))
        assert wrong == Primitive("put", "green block", ("pad", "C"))
    lonely = FAMILY._scene_from_config(layout, (("red",), (), ()))
    assert FAMILY.wrong_object(lonely, Primitive("put", "red block", ("pad", "B")), np.random.default_rng(0)) is None

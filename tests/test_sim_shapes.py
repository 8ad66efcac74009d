import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabvr.sim.base import (
    PALETTE,
    GrammarError,
    Obj,
    PerceptionError,
    Primitive,
    Scene,
    angle_diff,
    collapse,
)
from collabvr.sim.shapes import (
    ANCHORS,
    ANGLE_TOL,
    COLOR_MATCH,
    COLORS,
    DIRECTIONS,
    GOAL_SIZES,
    POS_TOL,
    ShapesFamily,
    ShapesGoal,
    size_tolerance,
)

FAMILY = ShapesFamily()
SEEDS = st.integers(min_value=0, max_value=10_000)
DIFFICULTIES = st.sampled_from(["easy", "hard"])
SETTINGS = settings(max_examples=40, deadline=None)


def action_strategy(obj: str = "triangle") -> st.SearchStrategy[Primitive]:
    """Absolute actions as the planner writes them: a colour, a height in px, an anchor, an apex direction
    (the named ones and a few off-grid angles a recovery from a wrong step may need)."""
    return st.one_of(
        st.sampled_from(COLORS).map(lambda c: Primitive("recolour", obj, (c,))),
        st.sampled_from(GOAL_SIZES + (17.5, 22.25)).map(lambda s: Primitive("scale", obj, (s,))),
        st.sampled_from(list(ANCHORS)).map(lambda a: Primitive("move", obj, (a,))),
        st.sampled_from(list(DIRECTIONS.values()) + [37, 172.5]).map(lambda d: Primitive("rotate", obj, (d,))),
    )


def triangle_scene(**changes) -> Scene:
    """A lone triangle at the center pointing up, 24 px tall, red, with the given attributes changed."""
    triangle = Obj("triangle", "triangle", PALETTE["red"], *ANCHORS["center"], 24.0, 90.0).moved(**changes)
    return Scene("shapes", FAMILY.generate(0, "easy").initial.layout, (triangle,))


def run(scene: Scene, actions) -> Scene:
    for action in actions:
        scene = FAMILY.apply(scene, action)
    return scene


def assert_same_triangle(want: Obj, got: Obj) -> None:
    """The same end state within the goal's tolerances."""
    assert angle_diff(got.angle, want.angle) <= ANGLE_TOL, (want, got)
    assert abs(got.size - want.size) <= size_tolerance(want.size), (want, got)
    assert math.hypot(got.x - want.x, got.y - want.y) <= POS_TOL, (want, got)
    assert math.dist(got.color, want.color) <= COLOR_MATCH, (want, got)


def assert_same_scene(truth: Scene, seen: Scene, color_tol: float = 0.0) -> None:
    """Perception within its promised tolerances: 1 px, 2 px, 6 degrees, palette colour (or blend)."""
    assert [o.name for o in seen.objects] == [o.name for o in truth.objects]
    for want, got in zip(truth.objects, seen.objects):
        assert got.shape == want.shape
        assert math.hypot(got.x - want.x, got.y - want.y) <= 1.0, (want, got)
        assert abs(got.size - want.size) <= 2.0, (want, got)
        if want.shape == "triangle":
            assert angle_diff(got.angle, want.angle) <= 6.0, (want, got)
        if want.color in PALETTE.values() and color_tol == 0.0:
            assert got.color == want.color, (want, got)
        else:
            assert math.dist(got.color, want.color) <= max(color_tol, 25.0), (want, got)


def clip(scene: Scene, actions: list[Primitive], steps: int = 4) -> tuple[list[np.ndarray], Scene]:
    """Frames of the actions executed one after another, and the final scene."""
    frames = [FAMILY.render(scene)]
    for action in actions:
        frames += [FAMILY.render(FAMILY.interpolate(scene, action, t)) for t in np.linspace(0, 1, steps + 1)[1:]]
        scene = FAMILY.apply(scene, action)
    return frames, scene


def h264_round_trip(frames: list[np.ndarray], tmp_path: Path) -> np.ndarray:
    from collabvr import media

    return media.read_frames(media.write_mp4(np.stack(frames), 8, tmp_path / "clip.mp4"))


# ----- generation -----------------------------------------------------------------------------------------

def test_generate_is_deterministic_and_varies_with_seed():
    assert FAMILY.generate(7, "hard") == FAMILY.generate(7, "hard")
    prompts = {FAMILY.generate(seed, "hard").prompt for seed in range(20)}
    assert len(prompts) > 15


@pytest.mark.parametrize("seed", range(40))
def test_easy_needs_two_transformations_and_hard_at_least_four(seed):
    easy, hard = FAMILY.generate(seed, "easy"), FAMILY.generate(seed, "hard")
    assert len(FAMILY.solve(easy.initial, easy.goal)) == 2
    assert len(FAMILY.solve(hard.initial, hard.goal)) >= 4
    assert easy.initial.names() == ["triangle"]
    assert 1 <= len(hard.goal.distractors) <= 2
    assert hard.prompt.startswith("Transform the triangle step by step: ")


@pytest.mark.parametrize("seed", range(40))
def test_distractors_sit_at_anchors_the_task_never_uses(seed):
    task = FAMILY.generate(seed, "hard")
    visited = {(o.x, o.y) for o in task.initial.objects if o.name == "triangle"}
    visited |= {ANCHORS[a.args[0]] for a in task.meta["actions"] if a.verb == "move"}
    for distractor in task.goal.distractors:
        assert (distractor.x, distractor.y) not in visited
        assert (distractor.x, distractor.y) in ANCHORS.values()


def test_unknown_difficulty_is_refused():
    with pytest.raises(ValueError):
        FAMILY.generate(0, "medium")


# ----- perception -------------------------------------------------------------------------------------------

@SETTINGS
@given(SEEDS, DIFFICULTIES)
def test_perceive_inverts_render_for_generated_tasks(seed, difficulty):
    task = FAMILY.generate(seed, difficulty)
    assert_same_scene(task.initial, FAMILY.perceive(FAMILY.render(task.initial)))


@SETTINGS
@given(SEEDS, DIFFICULTIES, st.lists(action_strategy(), min_size=1, max_size=5))
def test_perceive_inverts_render_after_random_transformations(seed, difficulty, actions):
    scene = FAMILY.generate(seed, difficulty).initial
    for action in actions:
        scene = FAMILY.apply(scene, action)
    triangle = scene.find("triangle")
    # Random steps can shrink the triangle below what pixels resolve or push it onto another shape.
    if not 16 <= triangle.size <= 36 or any((o.x, o.y) == (triangle.x, triangle.y) for o in scene.objects[1:]):
        return
    assert_same_scene(scene, FAMILY.perceive(FAMILY.render(scene)))


@SETTINGS
@given(SEEDS, DIFFICULTIES, st.floats(min_value=0.0, max_value=1.0))
def test_perceive_follows_every_transformation_part_way(seed, difficulty, t):
    task = FAMILY.generate(seed, difficulty)
    scene = task.initial
    for action in task.meta["actions"]:
        middle = FAMILY.interpolate(scene, action, t)
        assert_same_scene(middle, FAMILY.perceive(FAMILY.render(middle)), color_tol=25.0)
        scene = FAMILY.apply(scene, action)


def test_mid_recolour_reports_the_blended_colour_and_a_kind_based_name():
    scene = Scene("shapes", FAMILY.generate(0, "easy").initial.layout,
                  (Obj("triangle", "triangle", PALETTE["red"], 63.5, 63.5, 30.0, 90.0),))
    middle = FAMILY.interpolate(scene, Primitive("recolour", "triangle", ("cyan",)), 0.5)
    seen = FAMILY.perceive(FAMILY.render(middle)).objects[0]
    assert seen.name == "triangle"
    assert math.dist(seen.color, middle.objects[0].color) <= 5


def test_perception_survives_h264(tmp_path):
    scenes = []
    for seed in range(6):
        task = FAMILY.generate(seed, "hard")
        scene = task.initial
        for action in task.meta["actions"]:
            scenes += [FAMILY.interpolate(scene, action, t) for t in (0.0, 0.3, 0.6)]
            scene = FAMILY.apply(scene, action)
        scenes.append(scene)
    decoded = h264_round_trip([FAMILY.render(s) for s in scenes], tmp_path)
    assert len(decoded) == len(scenes)
    for truth, frame in zip(scenes, decoded):
        assert_same_scene(truth, FAMILY.perceive(frame), color_tol=25.0)


def test_vanished_and_doubled_objects_are_seen_as_such():
    task = FAMILY.generate(3, "hard")
    rng = np.random.default_rng(0)
    for _ in range(6):
        collapsed, _ = collapse(task.initial, rng)
        seen = FAMILY.perceive(FAMILY.render(collapsed))
        assert sorted(seen.names()) == sorted(collapsed.names())


def test_perceive_refuses_noise_blank_and_wrong_size_images():
    rng = np.random.default_rng(0)
    with pytest.raises(PerceptionError):
        FAMILY.perceive(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    with pytest.raises(PerceptionError):
        FAMILY.perceive(rng.integers(180, 256, (128, 128, 3), dtype=np.uint8))
    with pytest.raises(PerceptionError):
        FAMILY.perceive(np.full((128, 128, 3), 250, dtype=np.uint8))
    with pytest.raises(PerceptionError):
        FAMILY.perceive(np.full((64, 96, 3), 250, dtype=np.uint8))


# ----- language ---------------------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.one_of(action_strategy("triangle"), action_strategy("square")), min_size=1, max_size=5))
def test_parse_reads_back_what_describe_writes(actions):
    scene = FAMILY.generate(1, "hard").initial
    parsed = FAMILY.parse(FAMILY.describe(actions), scene)
    assert parsed.actions == tuple(actions)
    assert not parsed.unparsed and not parsed.greedy


def test_describe_writes_plain_english_naming_the_target_state():
    text = FAMILY.describe([Primitive("recolour", "triangle", ("blue",)), Primitive("rotate", "triangle", (270,)),
                            Primitive("scale", "triangle", (36.0,)), Primitive("move", "square", ("top left",)),
                            Primitive("rotate", "triangle", (135,)), Primitive("rotate", "triangle", (37,))])
    assert text == ("Make the triangle blue, then turn it to point down, then make it 36 px tall, then move the "
                    "square to the top left, then turn the triangle to point up-left, then turn it to point at "
                    "37 degrees.")


def test_parse_tolerates_everyday_phrasings():
    scene = triangle_scene(angle=90.0, size=24.0)
    text = ("Point it left and then turn the triangle so that it points up-right; make it 20 px tall, "
            "resize it to 30 pixels. Colour it red, then move it to the Top-Right, turn it to face downwards, "
            "point it at 45 degrees")
    assert FAMILY.parse(text, scene).actions == (
        Primitive("rotate", "triangle", (180,)),
        Primitive("rotate", "triangle", (45,)),
        Primitive("scale", "triangle", (20.0,)),
        Primitive("scale", "triangle", (30.0,)),
        Primitive("recolour", "triangle", ("red",)),
        Primitive("move", "triangle", ("top right",)),
        Primitive("rotate", "triangle", (270,)),
        Primitive("rotate", "triangle", (45,)),
    )
    odd = FAMILY.parse("Make it blue, then dance a jig.", scene)
    assert odd.actions == (Primitive("recolour", "triangle", ("blue",)),)
    assert odd.unparsed == ("dance a jig",)


def test_relative_phrasings_are_read_as_absolute_targets_walking_through_the_actions():
    scene = triangle_scene(angle=90.0, size=24.0)
    text = ("Turn it blue and then rotate the triangle by 90 degrees counterclockwise; double its size, "
            "halve its size. Colour it red, then move it to the Top-Right, scale it to 1.5x, "
            "rotate it 90 degrees clockwise, then rotate it 180 degrees")
    assert FAMILY.parse(text, scene).actions == (
        Primitive("recolour", "triangle", ("blue",)),
        Primitive("rotate", "triangle", (180,)),
        Primitive("scale", "triangle", (48.0,)),
        Primitive("scale", "triangle", (24.0,)),
        Primitive("recolour", "triangle", ("red",)),
        Primitive("move", "triangle", ("top right",)),
        Primitive("scale", "triangle", (36.0,)),
        Primitive("rotate", "triangle", (90,)),
        Primitive("rotate", "triangle", (270,)),
    )
    walk = "Rotate it 90 degrees clockwise, then rotate it 180 degrees."
    assert FAMILY.parse(walk, triangle_scene(angle=90.0)).actions == (
        Primitive("rotate", "triangle", (0,)), Primitive("rotate", "triangle", (180,)))
    # A perceived angle or size within tolerance of the grid counts as on it.
    assert FAMILY.parse(walk, triangle_scene(angle=93.5)).actions == (
        Primitive("rotate", "triangle", (0,)), Primitive("rotate", "triangle", (180,)))
    assert FAMILY.parse("Double its size", triangle_scene(size=18.9)).actions == (Primitive("scale", "triangle", (36.0,)),)
    # Relative means relative to the scene given: from a half-turned frame it overshoots (which is why the
    # planner's actions name the target instead).
    half = FAMILY.interpolate(triangle_scene(angle=90.0), Primitive("rotate", "triangle", (0,)), 0.5)
    seen = FAMILY.perceive(FAMILY.render(half))
    (overshoot,) = FAMILY.parse("Rotate it 90 degrees clockwise.", seen).actions
    assert angle_diff(float(overshoot.args[0]), 0.0) > ANGLE_TOL
    (target,) = FAMILY.parse("Turn it to point right.", seen).actions
    assert target.args == (0,)
    # A relative step about a shape the scene does not show cannot be pinned down; an absolute one can.
    missing = FAMILY.parse("Rotate the square 90 degrees, then make the square 20 px wide.", triangle_scene())
    assert missing.unparsed == ("rotate the square 90 degrees",)
    assert missing.actions == (Primitive("scale", "square", (20.0,)),)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_task_prompt_is_greedy_and_states_the_goal(seed, difficulty):
    task = FAMILY.generate(seed, difficulty)
    assert FAMILY.parse(task.prompt, task.initial).greedy
    assert FAMILY.goal_from(task.prompt, task.initial) == task.goal


@pytest.mark.parametrize("seed", range(10))
def test_goal_read_from_a_compressed_input_image_is_the_task_goal(seed, tmp_path):
    task = FAMILY.generate(seed, "hard")
    frame = h264_round_trip([FAMILY.render(task.initial)] * 2, tmp_path)[0]
    assert FAMILY.goal_from(task.prompt, FAMILY.perceive(frame)) == task.goal


def test_goal_from_refuses_unreadable_prompts():
    scene = FAMILY.generate(0, "easy").initial
    with pytest.raises(GrammarError):
        FAMILY.goal_from("Draw me a sheep.", scene)
    with pytest.raises(GrammarError):
        FAMILY.goal_from("Transform the triangle step by step: juggle it.", scene)


def test_describe_scene_names_colour_place_direction_and_size():
    scene = Scene("shapes", FAMILY.generate(0, "easy").initial.layout, (
        Obj("triangle", "triangle", PALETTE["red"], 63.5, 63.5, 24.0, 90.0),
        Obj("square", "square", PALETTE["blue"], *ANCHORS["bottom left"], 16.0),
    ))
    assert FAMILY.describe_scene(scene) == (
        "A red triangle at the center pointing up, about 24 px tall; a blue square at the bottom left, about 16 px wide.")


# ----- dynamics and planning -------------------------------------------------------------------------------

def test_apply_turns_to_the_target_by_the_smallest_turn_keeping_the_unnormalised_angle():
    scene = FAMILY.generate(2, "easy").initial.with_object("triangle", angle=0.0)
    down = Primitive("rotate", "triangle", (270,))
    turned = FAMILY.apply(FAMILY.apply(scene, down), Primitive("rotate", "triangle", (180,)))
    assert turned.objects[0].angle == -180  # two clockwise quarter turns, so interpolation turns clockwise
    halfway = FAMILY.interpolate(scene, down, 0.5)
    assert halfway.objects[0].angle == -45
    # Exactly half a turn goes counter-clockwise; a target already reached is no turn at all.
    assert FAMILY.apply(scene, Primitive("rotate", "triangle", (180,))).objects[0].angle == 180
    assert FAMILY.interpolate(scene.with_object("triangle", angle=90.0), down, 0.5).objects[0].angle == 180
    assert FAMILY.apply(turned, Primitive("rotate", "triangle", (180,))).objects[0].angle == -180
    # Scaling sets the height; applying the same action again changes nothing.
    big = FAMILY.apply(scene, Primitive("scale", "triangle", (36.0,)))
    assert big.objects[0].size == 36.0 and FAMILY.apply(big, Primitive("scale", "triangle", (36.0,))) == big
    assert FAMILY.apply(scene, Primitive("move", "square", ("top",))) == scene


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_same_instruction_from_a_mid_action_frame_reaches_the_same_state(seed, difficulty):
    """Partial regeneration: the same instruction re-read from a frame half-way through any of its actions
    finishes those actions rather than redoing them from there."""
    task = FAMILY.generate(seed, difficulty)
    checked = 0
    for plan in (FAMILY.solve(task.initial, task.goal), list(task.meta["actions"])):
        text = FAMILY.describe(plan)
        want = run(task.initial, FAMILY.parse(text, task.initial).actions).find("triangle")
        assert FAMILY.distance(run(task.initial, plan), task.goal) == 0
        scene = task.initial
        for action in plan:
            middle = FAMILY.interpolate(scene, action, 0.5)
            seen = FAMILY.perceive(FAMILY.render(middle))
            scene = FAMILY.apply(scene, action)
            if sorted(seen.names()) != sorted(middle.names()):
                continue  # the solver's straight move can pass over a distractor: no triangle to read there
            checked += 1
            parsed = FAMILY.parse(text, seen)
            assert not parsed.unparsed and not parsed.greedy
            final = run(seen, parsed.actions)
            assert_same_triangle(want, final.find("triangle"))
            assert FAMILY.distance(final, task.goal) == 0, (action, final)
    assert checked >= len(task.meta["actions"])  # every step of the generated plan, which avoids distractors


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_executing_solve_reaches_the_goal_and_passes_the_pixel_check(seed, difficulty, tmp_path):
    task = FAMILY.generate(seed, difficulty)
    plan = FAMILY.solve(task.initial, task.goal)
    assert FAMILY.greedy(task.initial, task.goal) == plan
    frames, final = clip(task.initial, plan)
    assert FAMILY.distance(final, task.goal) == 0
    assert FAMILY.solve(final, task.goal) == []
    assert FAMILY.success(frames, task)
    assert not FAMILY.success(frames[:1], task)
    if seed < 2:
        assert FAMILY.success(list(h264_round_trip(frames, tmp_path)), task)


@pytest.mark.parametrize("seed", range(8))
def test_a_wrong_direction_rotation_fails(seed):
    task = FAMILY.generate(seed, "hard")
    rng = np.random.default_rng(seed)
    plan = FAMILY.solve(task.initial, task.goal)
    wrong = [FAMILY.wrong_direction(task.initial, a, rng) if a.verb == "rotate" else a for a in plan]
    frames, final = clip(task.initial, wrong)
    assert FAMILY.distance(final, task.goal) > 0
    assert not FAMILY.success(frames, task)


@pytest.mark.parametrize("seed", range(8))
def test_a_changed_distractor_fails(seed):
    task = FAMILY.generate(seed, "hard")
    rng = np.random.default_rng(seed)
    plan = FAMILY.solve(task.initial, task.goal)
    stray = FAMILY.wrong_object(task.initial, Primitive("recolour", "triangle", ("red",)), rng)
    assert stray is not None and stray.obj != "triangle"
    own = task.initial.find(stray.obj).color
    other = next(c for c in COLORS if math.dist(PALETTE[c], own) > 100)
    frames, final = clip(task.initial, plan + [Primitive("recolour", stray.obj, (other,))])
    assert FAMILY.distance(final, task.goal) == 1
    assert not FAMILY.success(frames, task)
    assert FAMILY.success(frames[: -4], task)  # the same clip stopped before the stray step passes


def test_wrong_direction_gives_plausible_mistakes():
    scene = FAMILY.generate(4, "hard").initial.with_object("triangle", angle=90.0, size=24.0)
    rng = np.random.default_rng(0)
    tri = scene.objects[0]
    # A quarter turn the other way; for a half turn (or none) a quarter turn either way.
    assert FAMILY.wrong_direction(scene, Primitive("rotate", "triangle", (0,)), rng).args == (180,)
    assert FAMILY.wrong_direction(scene, Primitive("rotate", "triangle", (180,)), rng).args == (0,)
    assert {FAMILY.wrong_direction(scene, Primitive("rotate", "triangle", (270,)), rng).args for _ in range(20)} == \
        {(0,), (180,)}
    assert FAMILY.wrong_direction(scene, Primitive("rotate", "triangle", (90,)), rng).args in ((0,), (180,), (270,))
    # Scaled by the inverse factor, kept within the sizes a triangle may have and visibly wrong.
    assert FAMILY.wrong_direction(scene, Primitive("scale", "triangle", (36.0,)), rng).args == (16.0,)
    assert FAMILY.wrong_direction(scene, Primitive("scale", "triangle", (16.0,)), rng).args == (36.0,)
    small = scene.with_object("triangle", size=18.0)
    wrong = FAMILY.wrong_direction(small, Primitive("scale", "triangle", (36.0,)), rng).args[0]
    assert abs(wrong - 18.0) > size_tolerance(18.0) and abs(wrong - 36.0) > size_tolerance(36.0) and 16 <= wrong <= 36
    move = FAMILY.wrong_direction(scene, Primitive("move", "triangle", ("center",)), rng)
    assert move.args[0] != "center" and ANCHORS[move.args[0]] != (tri.x, tri.y)
    assert all(ANCHORS[move.args[0]] != (o.x, o.y) for o in scene.objects[1:])
    recolour = FAMILY.wrong_direction(scene, Primitive("recolour", "triangle", ("blue",)), rng)
    assert recolour.args[0] != "blue" and PALETTE[recolour.args[0]] != tri.color


def test_wrong_object_needs_another_shape_it_would_visibly_change():
    easy, hard = FAMILY.generate(0, "easy"), FAMILY.generate(0, "hard")
    rng = np.random.default_rng(0)
    assert FAMILY.wrong_object(easy.initial, Primitive("move", "triangle", ("top",)), rng) is None
    assert FAMILY.wrong_object(hard.initial, Primitive("rotate", "triangle", (90,)), rng) is None
    stray = FAMILY.wrong_object(hard.initial, Primitive("move", "triangle", ("top",)), rng)
    assert stray.obj in {o.name for o in hard.goal.distractors} and stray.args == ("top",)


@pytest.mark.parametrize("seed", range(6))
def test_solve_recovers_from_an_off_grid_mistake(seed):
    task = FAMILY.generate(seed, "easy")
    tri = task.initial.find("triangle")
    scene = FAMILY.apply(task.initial, Primitive("scale", "triangle", (tri.size * 0.67,)))
    scene = FAMILY.apply(scene, Primitive("rotate", "triangle", ((tri.angle + 37) % 360,)))
    assert FAMILY.distance(scene, task.goal) > 0
    for _ in range(3):
        for action in FAMILY.solve(scene, task.goal):
            scene = FAMILY.apply(scene, action)
    assert FAMILY.distance(scene, task.goal) == 0


def test_distance_counts_wrong_attributes_and_penalises_missing_or_doubled_shapes():
    task = FAMILY.generate(9, "hard")
    _, final = clip(task.initial, FAMILY.solve(task.initial, task.goal))
    assert FAMILY.distance(final, task.goal) == 0
    assert FAMILY.distance(task.initial, task.goal) == len(FAMILY.solve(task.initial, task.goal))
    triangle = final.objects[0]
    doubled = final.with_objects(final.objects + (triangle.moved(x=triangle.x + 40),))
    assert FAMILY.distance(doubled, task.goal) > 0
    for change in ({"size": 24.0}, {"x": ANCHORS["center"][0], "y": ANCHORS["center"][1]}, {"color": PALETTE["black"]}):
        changed = final.with_object(final.objects[1].name, **change)
        assert FAMILY.distance(changed, task.goal) == 1
    vanished = final.with_objects(final.objects[1:])
    assert FAMILY.distance(vanished, task.goal) > FAMILY.distance(task.initial, task.goal)


def test_goal_is_hashable():
    assert isinstance(hash(FAMILY.generate(0, "hard").goal), int)
    assert isinstance(FAMILY.generate(0, "hard").goal, ShapesGoal)

"""The maze family: generation, rendering and perception (also through H.264), grammar, dynamics, success."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from collabvr import media
from collabvr.sim.base import PALETTE, Obj, Parsed, PerceptionError, Primitive, Scene, SimTask, smoothstep
from collabvr.sim.maze import CELL, DISC, MazeFamily, MazeGoal, MazeLayout

FAMILY = MazeFamily()
HARD_SCENE = FAMILY.generate(0, "hard").initial
POS_TOL = 0.75
SIZE_TOL = 1.5

seeds = st.integers(min_value=0, max_value=10**6)
difficulties = st.sampled_from(["easy", "hard"])
moves = st.builds(
    lambda d, i: Primitive("move", DISC, (d, i)),
    st.sampled_from(["up", "down", "left", "right"]),
    st.integers(min_value=0, max_value=8),
)
glides = st.builds(lambda r, c: Primitive("glide", DISC, (r, c)), st.integers(0, 8), st.integers(0, 8))


def assert_same_scene(seen: Scene, truth: Scene) -> None:
    """Same layout, and each true disc matched by a perceived one within the tolerances."""
    assert seen.layout == truth.layout
    assert len(seen.objects) == len(truth.objects)
    for obj in truth.objects:
        nearest = min(seen.objects, key=lambda o: math.hypot(o.x - obj.x, o.y - obj.y))
        assert nearest.name == DISC
        assert abs(nearest.x - obj.x) <= POS_TOL and abs(nearest.y - obj.y) <= POS_TOL, (nearest, obj)
        assert abs(nearest.size - obj.size) <= SIZE_TOL, (nearest, obj)


def disc(scene: Scene) -> Obj:
    found = scene.find(DISC)
    assert found is not None
    return found


def solution_clip(task: SimTask, frames_per_action: int = 6) -> tuple[list[np.ndarray], list[Scene]]:
    """Frames of the solver's actions played smoothly one after the other, with the true scenes."""
    scene = task.initial
    frames, truth = [FAMILY.render(scene)], [scene]
    for action in FAMILY.solve(scene, task.goal):
        for i in range(1, frames_per_action + 1):
            mid = FAMILY.interpolate(scene, action, smoothstep(i / frames_per_action))
            frames.append(FAMILY.render(mid))
            truth.append(mid)
        scene = FAMILY.apply(scene, action)
    return frames, truth


def at_cell(scene: Scene, cell: tuple[int, int]) -> Scene:
    """The scene with its disc moved to the centre of `cell`."""
    x, y = scene.layout.centre(cell)
    return scene.with_object(DISC, x=x, y=y)


def cell(scene: Scene) -> tuple[int, int]:
    d = disc(scene)
    return scene.layout.cell_of(d.x, d.y)


def clip_of(scene: Scene, action: Primitive, n: int = 12) -> list[np.ndarray]:
    return [FAMILY.render(FAMILY.interpolate(scene, action, i / (n - 1))) for i in range(n)]


def crossing_task() -> SimTask:
    """A hard task whose straight line from start to goal passes through a wall (first such seed)."""
    for seed in range(50):
        task = FAMILY.generate(seed, "hard")
        after = FAMILY.apply(task.initial, FAMILY.greedy(task.initial, task.goal)[0])
        if FAMILY.violations(task.initial, after):
            return task
    raise AssertionError("no hard maze in 50 seeds has its goal behind a wall")


# ----- generation -------------------------------------------------------------------------------------

def test_generate_is_deterministic_and_varies_with_seed() -> None:
    assert FAMILY.generate(7, "hard") == FAMILY.generate(7, "hard")
    layouts = {FAMILY.generate(seed, "easy").initial.layout for seed in range(10)}
    assert len(layouts) > 1


def test_generate_rejects_unknown_difficulty() -> None:
    with pytest.raises(ValueError):
        FAMILY.generate(0, "medium")


@pytest.mark.parametrize("difficulty, low, high", [("easy", 1, 2), ("hard", 4, 99)])
def test_difficulty_sets_number_of_straight_segments(difficulty: str, low: int, high: int) -> None:
    for seed in range(25):
        task = FAMILY.generate(seed, difficulty)
        plan = FAMILY.solve(task.initial, task.goal)
        assert low <= len(plan) <= high, (seed, plan)
        assert all(a.verb == "move" for a in plan)


def test_frames_are_even_and_at_most_160_pixels() -> None:
    for difficulty in ("easy", "hard"):
        image = FAMILY.render(FAMILY.generate(1, difficulty).initial)
        height, width, _ = image.shape
        assert image.dtype == np.uint8 and height % 2 == 0 and width % 2 == 0 and max(height, width) <= 160


def test_render_draws_disc_on_goal_as_a_ring() -> None:
    task = FAMILY.generate(2, "easy")
    layout: MazeLayout = task.initial.layout
    x, y = layout.centre(layout.goal)
    image = FAMILY.render(task.initial.with_object(DISC, x=x, y=y))
    assert tuple(image[int(y), int(x)]) == PALETTE["red"]
    r, c = layout.goal
    assert tuple(image[r * CELL + 1, c * CELL + 1]) == PALETTE["green"]  # the ring around the disc


# ----- perception -------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seeds, difficulties)
def test_perceive_inverts_render_on_initial_scene(seed: int, difficulty: str) -> None:
    task = FAMILY.generate(seed, difficulty)
    assert_same_scene(FAMILY.perceive(FAMILY.render(task.initial)), task.initial)


@settings(max_examples=40, deadline=None)
@given(seeds, difficulties, st.floats(0, 1), st.floats(0, 1), st.booleans())
def test_perceive_inverts_render_mid_motion(seed: int, difficulty: str, cut: float, t: float, glide: bool) -> None:
    task = FAMILY.generate(seed, difficulty)
    plan = FAMILY.solve(task.initial, task.goal)
    scene = task.initial
    for action in plan[: int(cut * len(plan))]:
        scene = FAMILY.apply(scene, action)
    # Either the next solver move or a greedy glide, which drags the disc across walls.
    action = FAMILY.greedy(scene, task.goal)[0] if glide else (FAMILY.solve(scene, task.goal) or plan)[0]
    mid = FAMILY.interpolate(scene, action, t)
    assert_same_scene(FAMILY.perceive(FAMILY.render(mid)), mid)


def test_perceive_sees_vanished_and_doubled_disc() -> None:
    scene = FAMILY.generate(4, "hard").initial
    gone = scene.with_objects(())
    assert FAMILY.perceive(FAMILY.render(gone)).objects == ()
    d = disc(scene)
    twin = scene.with_objects((d, d.moved(x=d.x + 1.2 * d.size)))
    assert_same_scene(FAMILY.perceive(FAMILY.render(twin)), twin)


def test_perception_survives_h264_round_trip(tmp_path) -> None:
    frames, truth = [], []
    for seed, difficulty in [(0, "easy"), (5, "hard")]:
        clip, scenes = solution_clip(FAMILY.generate(seed, difficulty))
        frames += clip
        truth += scenes
    # Keep one frame size per file; the easy and hard mazes differ in size.
    for size in {s.size for s in truth}:
        picked = [i for i, s in enumerate(truth) if s.size == size]
        path = media.write_mp4([frames[i] for i in picked], 8, tmp_path / f"maze{size[0]}.mp4")
        decoded = media.read_frames(path)
        assert len(decoded) == len(picked)
        assert not np.array_equal(decoded, np.stack([frames[i] for i in picked]))  # really lossy
        for frame, i in zip(decoded, picked):
            assert_same_scene(FAMILY.perceive(frame), truth[i])


def test_success_holds_after_h264_round_trip(tmp_path) -> None:
    task = FAMILY.generate(5, "hard")
    frames, _ = solution_clip(task)
    decoded = media.read_frames(media.write_mp4(frames, 8, tmp_path / "solve.mp4"))
    assert FAMILY.success(list(decoded), task)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, size=(112, 112, 3), dtype=np.uint8),
        np.full((112, 112, 3), 250, dtype=np.uint8),
        np.zeros((144, 144, 3), dtype=np.uint8),
        np.full((100, 120, 3), 250, dtype=np.uint8),
        np.zeros((112, 112), dtype=np.uint8),
    ],
    ids=["noise", "blank", "all-black", "wrong-size", "grayscale"],
)
def test_perceive_rejects_images_that_are_not_mazes(image: np.ndarray) -> None:
    with pytest.raises(PerceptionError):
        FAMILY.perceive(image)


def test_perceive_rejects_maze_without_goal() -> None:
    task = FAMILY.generate(0, "easy")
    image = FAMILY.render(task.initial)
    r, c = task.initial.layout.goal
    image[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = PALETTE["white"]
    with pytest.raises(PerceptionError):
        FAMILY.perceive(image)


# ----- language -------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(moves, glides), min_size=1, max_size=6))
def test_parse_reads_back_what_describe_writes(actions: list[Primitive]) -> None:
    assert FAMILY.parse(FAMILY.describe(actions), HARD_SCENE) == Parsed(actions=tuple(actions))


def test_describe_names_absolute_targets_one_based() -> None:
    text = FAMILY.describe([
        Primitive("move", DISC, ("right", 5)),
        Primitive("move", DISC, ("down", 3)),
        Primitive("glide", DISC, (1, 2)),
    ])
    assert text == "Move the red disc right to column 6, then down to row 4, then straight to row 2, column 3."


@pytest.mark.parametrize(
    "start, text, expected",
    [
        ((1, 1), "Move the red disc 3 cells right, then 2 cells down.", [("right", 4), ("down", 3)]),
        ((1, 1), "move the red disc two cells to the right and then down three cells", [("right", 3), ("down", 4)]),
        ((7, 7), "MOVE THE RED DISC ONE CELL UP, THEN 4 CELLS LEFT.", [("up", 6), ("left", 3)]),
        ((1, 1), "Move right 3 cells. Then move 1 cell down.", [("right", 4), ("down", 2)]),
        ((7, 7), "Slide the disc a cell left and six cells upwards", [("left", 6), ("up", 1)]),
        ((5, 3), "Move right by 2 cells, then 4 cells up, then 2 cells left", [("right", 5), ("up", 1), ("left", 3)]),
        ((1, 1), "Move the red disc right to column 6, then down to row 4.", [("right", 5), ("down", 3)]),
        ((3, 5), "move it right to column eight and then 2 cells down", [("right", 7), ("down", 5)]),
        ((3, 5), "Go left as far as column 2. Then two cells right", [("left", 1), ("right", 3)]),
    ],
)
def test_parse_turns_relative_and_absolute_phrasing_into_absolute_targets(
    start: tuple[int, int], text: str, expected: list[tuple[str, int]]
) -> None:
    # Relative moves are walked from the disc's cell in the scene, in the order they are written.
    parsed = FAMILY.parse(text, at_cell(HARD_SCENE, start))
    assert parsed.actions == tuple(Primitive("move", DISC, args) for args in expected)
    assert not parsed.greedy and parsed.unparsed == ()


def test_parse_walks_relative_moves_on_from_a_glide() -> None:
    parsed = FAMILY.parse("Glide straight to row 5, column 3. Then 2 cells right, then 3 cells up.", HARD_SCENE)
    assert parsed.actions == (
        Primitive("glide", DISC, (4, 2)),
        Primitive("move", DISC, ("right", 4)),
        Primitive("move", DISC, ("up", 1)),
    )


def test_parse_without_a_disc_keeps_relative_moves_it_cannot_place_as_unparsed() -> None:
    empty = HARD_SCENE.with_objects(())
    parsed = FAMILY.parse("Move the red disc 3 cells right. Move it down to row 4.", empty)
    assert parsed.actions == (Primitive("move", DISC, ("down", 3)),)
    assert parsed.unparsed == ("Move the red disc 3 cells right",)
    # Once an absolute move fixes the column, a relative horizontal move can be placed from it.
    parsed = FAMILY.parse("Move it right to column 3, then 2 cells right.", empty)
    assert parsed.actions == (Primitive("move", DISC, ("right", 2)), Primitive("move", DISC, ("right", 4)))
    # ...but not a vertical one: the row is still unknown.
    assert FAMILY.parse("Move it right to column 3, then 2 cells up.", empty).actions == ()


def test_parse_rejects_a_target_on_the_wrong_axis() -> None:
    parsed = FAMILY.parse("Move the red disc right to row 4.", HARD_SCENE)
    assert parsed.actions == () and parsed.unparsed == ("Move the red disc right to row 4",)


def test_task_prompt_parses_as_greedy_and_names_the_goal() -> None:
    for seed in range(12):
        task = FAMILY.generate(seed, "easy" if seed % 2 else "hard")
        assert FAMILY.parse(task.prompt, task.initial) == Parsed(greedy=True)
        assert FAMILY.goal_from(task.prompt, task.initial) == task.goal


def test_unreadable_sentences_are_kept_as_unparsed() -> None:
    scene = FAMILY.generate(0, "easy").initial
    parsed = FAMILY.parse("Move the red disc 2 cells up. Do a little dance!", scene)
    assert parsed.actions == (Primitive("move", DISC, ("up", cell(scene)[0] - 2)),)
    assert parsed.unparsed == ("Do a little dance",)


def test_straight_to_the_goal_is_a_glide_to_the_goal_cell() -> None:
    scene = FAMILY.generate(3, "easy").initial
    parsed = FAMILY.parse("Glide the red disc straight to the green goal.", scene)
    assert parsed.actions == (Primitive("glide", DISC, scene.layout.goal),)


def test_describe_scene_names_disc_and_goal_cells_one_based() -> None:
    task = FAMILY.generate(0, "easy")
    r, c = task.initial.layout.cell_of(disc(task.initial).x, disc(task.initial).y)
    text = FAMILY.describe_scene(task.initial)
    assert f"The red disc is in row {r + 1}, column {c + 1}" in text
    assert f"the green goal is in row {task.goal.row + 1}, column {task.goal.col + 1}" in text
    assert "not visible" in FAMILY.describe_scene(task.initial.with_objects(()))


# ----- dynamics, planning and success -----------------------------------------------------------------

@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_solution_reaches_goal_legally_and_its_clip_succeeds(difficulty: str) -> None:
    for seed in range(3):
        task = FAMILY.generate(seed, difficulty)
        scene = task.initial
        remaining = FAMILY.distance(scene, task.goal)
        assert remaining > 0
        for action in FAMILY.solve(scene, task.goal):
            after = FAMILY.apply(scene, action)
            assert FAMILY.violations(scene, after) == []
            assert FAMILY.distance(after, task.goal) < remaining
            scene, remaining = after, FAMILY.distance(after, task.goal)
        assert remaining == 0 and FAMILY.solve(scene, task.goal) == []
        frames, _ = solution_clip(task)
        assert FAMILY.success(frames, task)


def test_glide_through_walls_is_reported_and_fails_success() -> None:
    task = crossing_task()
    glide = FAMILY.greedy(task.initial, task.goal)
    assert glide == [Primitive("glide", DISC, (task.goal.row, task.goal.col))]
    after = FAMILY.apply(task.initial, glide[0])
    assert FAMILY.distance(after, task.goal) == 0  # it does arrive...
    problems = FAMILY.violations(task.initial, after)
    assert problems and "crossed a wall" in problems[0]
    assert not FAMILY.success(clip_of(task.initial, glide[0]), task)  # ...but not legally


def test_success_fails_when_a_fast_clip_jumps_over_a_wall() -> None:
    task = crossing_task()
    after = FAMILY.apply(task.initial, FAMILY.greedy(task.initial, task.goal)[0])
    assert not FAMILY.success([FAMILY.render(task.initial), FAMILY.render(after)], task)


def test_success_fails_without_exactly_one_disc_on_goal() -> None:
    task = FAMILY.generate(1, "easy")
    frames, truth = solution_clip(task)
    final = truth[-1]
    d = disc(final)
    doubled = final.with_objects((d, d.moved(x=d.x + 1.2 * d.size)))
    assert FAMILY.success(frames, task)
    assert not FAMILY.success(frames[:-6], task)  # stopped before the last move (6 frames each)
    assert not FAMILY.success(frames + [FAMILY.render(final.with_objects(()))], task)
    assert not FAMILY.success(frames + [FAMILY.render(doubled)], task)
    assert not FAMILY.success(frames + [np.zeros_like(frames[0])], task)
    assert not FAMILY.success([], task)


def test_violations_report_a_disc_ending_inside_a_wall() -> None:
    scene = FAMILY.generate(0, "easy").initial
    layout = scene.layout
    wall = next(w for w in layout.walls if 0 < w[0] < layout.rows - 1 and 0 < w[1] < layout.cols - 1)
    x, y = layout.centre(wall)
    problems = FAMILY.violations(scene, scene.with_object(DISC, x=x, y=y))
    assert any("inside a wall" in p for p in problems)


def test_apply_recentres_off_centre_disc_in_target_cell() -> None:
    scene = FAMILY.generate(0, "easy").initial
    d = disc(scene)
    nudged = scene.with_object(DISC, x=d.x + 5, y=d.y - 6)
    moved = disc(FAMILY.apply(nudged, Primitive("move", DISC, ("right", cell(scene)[1] + 2))))
    assert (moved.x, moved.y) == (d.x + 2 * CELL, d.y)
    moved = disc(FAMILY.apply(nudged, Primitive("move", DISC, ("up", 1))))
    assert (moved.x, moved.y) == (d.x, 1.5 * CELL)


def test_apply_goes_to_the_named_row_or_column_from_anywhere_in_the_maze() -> None:
    scene = at_cell(HARD_SCENE, (3, 5))
    assert cell(FAMILY.apply(scene, Primitive("move", DISC, ("right", 7)))) == (3, 7)
    assert cell(FAMILY.apply(scene, Primitive("move", DISC, ("left", 1)))) == (3, 1)
    assert cell(FAMILY.apply(scene, Primitive("move", DISC, ("down", 6)))) == (6, 5)
    assert cell(FAMILY.apply(scene, Primitive("move", DISC, ("up", 1)))) == (1, 5)
    # The same move from another row keeps that row: the target is a column, not a cell.
    assert cell(FAMILY.apply(at_cell(HARD_SCENE, (7, 2)), Primitive("move", DISC, ("right", 7)))) == (7, 7)


def test_same_instruction_from_a_mid_move_frame_reaches_the_same_cell() -> None:
    """Partial regeneration: a clip restarted from a frame in the middle of a move, with the same
    instruction, must finish that move rather than travel the whole distance again."""
    moved_on = 0
    for seed in range(8):
        for difficulty in ("easy", "hard"):
            task = FAMILY.generate(seed, difficulty)
            action = FAMILY.solve(task.initial, task.goal)[0]
            expected = cell(FAMILY.apply(task.initial, action))
            mid = FAMILY.perceive(FAMILY.render(FAMILY.interpolate(task.initial, action, 0.5)))
            parsed = FAMILY.parse(FAMILY.describe([action]), mid)
            assert parsed.actions == (action,) and parsed.unparsed == ()
            after = FAMILY.apply(mid, parsed.actions[0])
            assert cell(after) == expected, (seed, difficulty, action)
            assert FAMILY.violations(mid, after) == []
            moved_on += cell(mid) != cell(task.initial)
    assert moved_on >= 4  # most mid frames really are cells away from the start


def test_solve_from_off_centre_disc_still_reaches_goal() -> None:
    task = FAMILY.generate(6, "hard")
    d = disc(task.initial)
    scene = task.initial.with_object(DISC, x=d.x + 4, y=d.y + 3)
    for action in FAMILY.solve(scene, task.goal):
        after = FAMILY.apply(scene, action)
        assert FAMILY.violations(scene, after) == []
        scene = after
    assert FAMILY.distance(scene, task.goal) == 0


def test_apply_leaves_vanished_disc_alone_and_moves_first_of_doubled() -> None:
    scene = FAMILY.generate(0, "easy").initial
    move = Primitive("move", DISC, ("down", cell(scene)[0] + 1))
    empty = scene.with_objects(())
    assert FAMILY.apply(empty, move) == empty
    assert FAMILY.interpolate(empty, move, 0.5) == empty
    d = disc(scene)
    twin = d.moved(x=d.x + CELL)
    after = FAMILY.apply(scene.with_objects((d, twin)), move)
    assert after.objects[1] == twin and after.objects[0].y == d.y + CELL


def test_interpolate_moves_in_a_straight_line() -> None:
    scene = FAMILY.generate(0, "easy").initial
    d = disc(scene)
    mid = disc(FAMILY.interpolate(scene, Primitive("move", DISC, ("left", cell(scene)[1] - 2)), 0.25))
    assert (mid.x, mid.y) == (d.x - 0.5 * CELL, d.y)


def test_distance_is_zero_anywhere_in_goal_cell_and_large_without_one_disc() -> None:
    task = FAMILY.generate(2, "hard")
    layout = task.initial.layout
    x, y = layout.centre(layout.goal)
    assert FAMILY.distance(task.initial.with_object(DISC, x=x + 7, y=y - 7), task.goal) == 0
    assert FAMILY.distance(task.initial.with_object(DISC, x=x + 9, y=y), task.goal) > 0
    assert FAMILY.distance(task.initial.with_objects(()), task.goal) > 1000
    wall = layout.centre((0, 0))
    stuck = FAMILY.distance(task.initial.with_object(DISC, x=wall[0], y=wall[1]), task.goal)
    assert stuck > FAMILY.distance(task.initial, task.goal)
    assert FAMILY.solve(task.initial.with_object(DISC, x=wall[0], y=wall[1]), task.goal) == [
        Primitive("glide", DISC, layout.goal)
    ]


def test_wrong_direction_keeps_amount_and_changes_direction() -> None:
    scene = at_cell(FAMILY.generate(0, "hard").initial, (4, 4))
    rng = np.random.default_rng(0)
    action = Primitive("move", DISC, ("up", 1))  # 3 cells from row 5 (1-based) to row 2
    seen = {}
    for _ in range(40):
        wrong = FAMILY.wrong_direction(scene, action, rng)
        assert wrong is not None and wrong.verb == "move"
        seen[wrong.args[0]] = wrong.args[1]
    assert seen == {"down": 7, "left": 1, "right": 7}  # 3 cells the other ways, as absolute targets
    # The amount is what is left to travel from the scene's cell; targets are clamped onto the grid.
    corner = at_cell(scene, (1, 1))
    for _ in range(40):
        wrong = FAMILY.wrong_direction(corner, Primitive("move", DISC, ("down", 4)), rng)
        assert wrong is not None and wrong.args in {("up", 0), ("left", 0), ("right", 4)}
    assert FAMILY.wrong_direction(scene.with_objects(()), action, rng) is None
    glide = Primitive("glide", DISC, scene.layout.goal)
    wrong_glide = FAMILY.wrong_direction(scene, glide, rng)
    assert wrong_glide is not None and wrong_glide.verb == "glide" and wrong_glide.args != glide.args
    assert not scene.layout.blocked(wrong_glide.args)
    assert FAMILY.wrong_object(scene, action, rng) is None


def test_layout_and_goal_are_hashable() -> None:
    task = FAMILY.generate(0, "easy")
    assert hash(task.initial) == hash(FAMILY.generate(0, "easy").initial)
    assert {task.goal: 1}[MazeGoal(task.goal.row, task.goal.col)] == 1

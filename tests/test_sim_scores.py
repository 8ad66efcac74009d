"""Graded scores of the simulated families against hand-made final frames, and the planner's view of a
frame agreeing with the pixel test of the same frame."""

from __future__ import annotations

import numpy as np
import pytest

from collabvr.config import LoopConfig
from collabvr.sim import FAMILIES, get_family, judge_for, make_task
from collabvr.sim.base import Obj, SimTask
from collabvr.sim.blocks import BlocksGoal, in_air, layout_for
from collabvr.sim.shapes import ANCHORS, ShapesGoal

from cli_helpers import run_session

MAZE, BLOCKS, SHAPES = get_family("maze"), get_family("blocks"), get_family("shapes")


def frames_of(family, *scenes):
    return [family.render(scene) for scene in scenes]


# ----- maze: the share of the route covered, 0 on a broken rule --------------------------------------

def test_maze_score_is_the_share_of_the_route_covered():
    task = make_task("maze", "hard", 3)
    moves = MAZE.solve(task.initial, task.goal)
    route = MAZE.distance(task.initial, task.goal)
    assert MAZE.score(frames_of(MAZE, task.initial), task) == 0.0
    first = MAZE.apply(task.initial, moves[0])
    covered = route - MAZE.distance(first, task.goal)
    assert 0 < covered < route
    assert MAZE.score(frames_of(MAZE, *_walk(task.initial, moves[:1])), task) == pytest.approx(covered / route)
    assert MAZE.score(frames_of(MAZE, *_walk(task.initial, moves)), task) == 1.0


def test_maze_score_is_zero_when_any_frame_crosses_a_wall_even_if_the_disc_ends_on_the_goal():
    task = make_task("maze", "hard", 3)
    moves = MAZE.solve(task.initial, task.goal)
    honest = _walk(task.initial, moves)
    glide = MAZE.greedy(task.initial, task.goal)[0]
    through = MAZE.apply(task.initial, glide)
    assert MAZE.violations(task.initial, through)
    assert MAZE.score(frames_of(MAZE, task.initial, through), task) == 0.0
    assert MAZE.score(frames_of(MAZE, *honest), task) == 1.0
    disc = honest[-1].objects[0]
    doubled = honest[-1].with_objects((disc, disc.moved(x=disc.x + 16)))
    assert MAZE.score(frames_of(MAZE, *honest, doubled), task) == 0.0


def _walk(scene, moves):
    """The scenes of a clip that walks the moves a cell at a time."""
    scenes = [scene]
    for move in moves:
        after = MAZE.apply(scene, move)
        scenes.extend(_cells_between(scene, after))
        scene = after
    return scenes


def _cells_between(before, after):
    a, b = before.objects[0], after.objects[0]
    steps = int(round(max(abs(b.x - a.x), abs(b.y - a.y)) / 16))
    return [after.with_objects((a.moved(x=a.x + (b.x - a.x) * k / steps, y=a.y + (b.y - a.y) * k / steps),))
            for k in range(1, steps + 1)]


# ----- blocks: the share of the goal's placements, 0 when a block hangs or is missing -----------------

def blocks_scene(config):
    return BLOCKS._scene_from_config(layout_for(len(config)), config)


def test_blocks_score_counts_the_placements_of_a_sort():
    goal = BlocksGoal(("blue", "red", "yellow"), on_pad=(("yellow", "A"), ("blue", "C"), ("red", "D")))
    task = SimTask("blocks", "hard", 0, "", blocks_scene(((), ("yellow", "blue", "red"), (), ())), goal)
    assert BLOCKS.score(frames_of(BLOCKS, blocks_scene((("yellow",), (), ("red",), ("blue",)))), task) == pytest.approx(1 / 3)
    assert BLOCKS.score(frames_of(BLOCKS, blocks_scene((("yellow",), (), ("blue",), ("red",)))), task) == 1.0
    assert BLOCKS.score(frames_of(BLOCKS, blocks_scene(((), ("yellow", "blue", "red"), (), ()))), task) == 0.0


def test_blocks_score_counts_a_stack_level_only_when_every_level_below_is_right():
    goal = BlocksGoal(("blue", "green", "red"), stacks=(("A", ("red", "green", "blue")),))
    task = SimTask("blocks", "hard", 0, "", blocks_scene(((), ("red",), ("green", "blue"), ())), goal)

    def score(config):
        return BLOCKS.score(frames_of(BLOCKS, blocks_scene(config)), task)

    assert score((("red", "blue"), ("green",), (), ())) == pytest.approx(1 / 3)
    assert score((("red", "green"), ("blue",), (), ())) == pytest.approx(2 / 3)
    assert score((("green", "red"), ("blue",), (), ())) == 0.0  # red is not at the bottom: nothing above counts
    assert score((("red", "green", "blue"), (), (), ())) == 1.0


def test_blocks_score_is_zero_with_a_block_in_the_air_or_a_block_missing():
    task = make_task("blocks", "hard", 3)
    plan = BLOCKS.solve(task.initial, task.goal)
    scene = task.initial
    for action in plan[:-1]:
        scene = BLOCKS.apply(scene, action)
    hanging = BLOCKS.interpolate(scene, plan[-1], 0.97)
    assert in_air(hanging)
    assert BLOCKS.score(frames_of(BLOCKS, hanging), task) == 0.0
    final = BLOCKS.apply(scene, plan[-1])
    assert BLOCKS.score(frames_of(BLOCKS, final), task) == 1.0
    assert BLOCKS.score(frames_of(BLOCKS, final.with_objects(final.objects[1:])), task) == 0.0


# ----- shapes: the share of the asked changes, 0 when the other shapes changed --------------------------

def test_shapes_score_is_the_share_of_the_asked_changes_the_triangle_shows():
    task = make_task("shapes", "hard", 5)
    goal: ShapesGoal = task.goal
    start = task.initial.find("triangle")
    done = [Obj("triangle", "triangle", start.color, start.x, start.y, start.size, start.angle)]
    x, y = ANCHORS[goal.anchor]
    two = start.moved(x=x, y=y, angle=goal.angle)  # moved and turned, not recoloured or scaled
    others = tuple(o for o in task.initial.objects if o.name != "triangle")
    assert SHAPES.score(frames_of(SHAPES, task.initial.with_objects(tuple(done) + others)), task) == 0.0
    assert SHAPES.score(frames_of(SHAPES, task.initial.with_objects((two,) + others)), task) == pytest.approx(0.5)
    solved = task.initial
    for action in SHAPES.solve(task.initial, task.goal):
        solved = SHAPES.apply(solved, action)
    assert SHAPES.score(frames_of(SHAPES, solved), task) == 1.0


def test_shapes_score_is_zero_when_another_shape_changed_or_the_triangle_is_doubled():
    task = make_task("shapes", "hard", 5)
    solved = task.initial
    for action in SHAPES.solve(task.initial, task.goal):
        solved = SHAPES.apply(solved, action)
    triangle = solved.find("triangle")
    distractor = next(o for o in solved.objects if o.name != "triangle")
    recoloured = solved.with_object(distractor.name, color=(140, 60, 180) if distractor.color != (140, 60, 180) else (40, 170, 70))
    assert SHAPES.score(frames_of(SHAPES, recoloured), task) == 0.0
    twin = triangle.moved(x=ANCHORS["center"][0], y=ANCHORS["center"][1])
    if all(np.hypot(o.x - twin.x, o.y - twin.y) > 20 for o in solved.objects):
        assert SHAPES.score(frames_of(SHAPES, solved.with_objects(solved.objects + (twin,))), task) == 0.0


def test_an_easy_shapes_task_gives_no_credit_for_attributes_it_never_asked_to_change():
    task = make_task("shapes", "easy", 2)
    assert SHAPES.score(frames_of(SHAPES, task.initial), task) == 0.0


# ----- success, score and the planner agree -------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_score_is_one_exactly_when_success_and_the_planner_sees_the_same_as_the_pixel_test(family):
    fam = get_family(family)
    rng = np.random.default_rng(0)
    checked = 0
    for seed in range(25):
        task = make_task(family, "hard", seed)
        plan = fam.solve(task.initial, task.goal)
        scene = task.initial
        cut = int(rng.integers(len(plan)))
        for action in plan[:cut]:
            scene = fam.apply(scene, action)
        # Interrupted somewhere inside a move (a block may hang in the air), or at rest after the whole plan.
        for frame_scene in (fam.interpolate(scene, plan[cut], float(rng.uniform(0.05, 0.99))), _done(fam, task)):
            frame = fam.render(frame_scene)
            seen = fam.perceive(frame)
            success = fam.success([frame], task)
            score = fam.score([frame], task)
            assert 0.0 <= score <= 1.0 and (score == 1.0) == success
            if family != "maze":  # the maze's test also reads the frames before: a single frame is the whole clip
                assert (fam.distance(seen, task.goal) == 0) == success, (family, seed)
            checked += 1
    assert checked == 50


def _done(fam, task):
    scene = task.initial
    for action in fam.solve(task.initial, task.goal):
        scene = fam.apply(scene, action)
    return scene


def test_blocks_planner_and_pixel_test_agree_on_hanging_blocks_over_many_seeds():
    rng = np.random.default_rng(1)
    hanging = 0
    for seed in range(60):
        task = make_task("blocks", "hard" if seed % 2 else "easy", seed)
        plan = BLOCKS.solve(task.initial, task.goal)
        scene = task.initial
        for action in plan[:-1]:
            scene = BLOCKS.apply(scene, action)
        frame = BLOCKS.render(BLOCKS.interpolate(scene, plan[-1], float(rng.uniform(0.9, 0.99))))
        seen = BLOCKS.perceive(frame)
        hanging += bool(in_air(seen))
        assert (BLOCKS.distance(seen, task.goal) == 0) == BLOCKS.success([frame], task)
        # And what the planner then asks for leads to success.
        for action in BLOCKS.solve(seen, task.goal):
            seen = BLOCKS.apply(seen, action)
        assert BLOCKS.success([BLOCKS.render(seen)], task)
    assert hanging >= 30


# ----- the judge of a session -------------------------------------------------------------------------

def test_judge_returns_success_and_score_and_the_session_records_both(tmp_path):
    task = make_task("maze", "easy", 1)
    success, score = judge_for(task)(np.stack([MAZE.render(task.initial)]))
    assert (success, score) == (False, 0.0)
    engine = run_session("maze", "hard", 2, LoopConfig(), tmp_path, vgm_profile="paper",
                         verifier_profile="gemini-2.5-pro-paper")
    finished = engine.state.finished
    assert finished is not None and finished.score is not None and 0.0 <= finished.score <= 1.0
    assert finished.success == (finished.score == 1.0)

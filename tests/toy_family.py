"""A tiny task family for testing the simulated models against the `Family` protocol alone.

Coloured discs sit on an 8x8 grid of 8-pixel cells in a 64x64 frame; black cells are walls. Actions
move one disc along one axis ("Move the red disc 2 cells right."); a task asks for discs at cells
("Move the red disc to column 5, row 2."), which the grammar reads as a greedy goal.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from collabvr.sim.base import (
    PALETTE,
    Family,
    GrammarError,
    Obj,
    Parsed,
    PerceptionError,
    Primitive,
    Scene,
    SimTask,
    check_difficulty,
    color_mask,
)

CELL = 8
GRID = 8
SIZE = CELL * GRID
RADIUS = 3.5
DISC_COLOURS = ("red", "blue", "green")
DIRECTIONS: dict[str, tuple[int, int]] = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}

_ACTION = re.compile(r"move the (\w+ disc) (\d+) cells? (left|right|up|down)")
_TASK = re.compile(r"move the (\w+ disc) to column (\d+),? row (\d+)")

Cell = tuple[int, int]

# Pixel centres, for rasterising discs.
_YS, _XS = np.mgrid[0:SIZE, 0:SIZE] + 0.5


def centre(cell: Cell) -> tuple[float, float]:
    return cell[0] * CELL + CELL / 2, cell[1] * CELL + CELL / 2


def cell_of(obj: Obj) -> Cell:
    return int(round((obj.x - CELL / 2) / CELL)), int(round((obj.y - CELL / 2) / CELL))


def disc(colour: str, cell: Cell) -> Obj:
    x, y = centre(cell)
    return Obj(name=f"{colour} disc", shape="disc", color=PALETTE[colour], x=x, y=y, size=2 * RADIUS)


def move(name: str, direction: str, cells: int) -> Primitive:
    dx, dy = DIRECTIONS[direction]
    return Primitive("move", name, (dx * cells, dy * cells))


def _direction(action: Primitive) -> tuple[str, int]:
    dx, dy = action.args
    cells = abs(dx) + abs(dy)
    unit = (int(np.sign(dx)), int(np.sign(dy)))
    return next(name for name, d in DIRECTIONS.items() if d == unit), cells


class Discs(Family):
    name = "discs"
    description = "Coloured discs moved across a grid with walls."

    def __init__(self, walls: frozenset[Cell] = frozenset({(3, 3), (3, 4)})) -> None:
        self.walls = walls

    # ----- tasks and pixels -------------------------------------------------------------------
    def scene(self, discs: dict[str, Cell]) -> Scene:
        objects = tuple(disc(colour, cell) for colour, cell in discs.items())
        return Scene(family=self.name, layout=self.walls, objects=objects, size=(SIZE, SIZE))

    def generate(self, seed: int, difficulty: str) -> SimTask:
        check_difficulty(difficulty)
        rng = np.random.default_rng(seed)
        free = [(c, r) for c in range(GRID) for r in range(GRID) if (c, r) not in self.walls]
        picks = rng.choice(len(free), size=4, replace=False)
        initial = self.scene({"red": free[picks[0]], "blue": free[picks[1]]})
        targets = {"red disc": free[picks[2]]}
        if difficulty == "hard":
            targets["blue disc"] = free[picks[3]]
        prompt = " ".join(f"Move the {name} to column {c}, row {r}." for name, (c, r) in targets.items())
        return SimTask(self.name, difficulty, seed, prompt, initial, targets)

    def render(self, scene: Scene) -> np.ndarray:
        image = np.full((SIZE, SIZE, 3), PALETTE["white"], dtype=np.uint8)
        for c, r in scene.layout:
            image[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = PALETTE["black"]
        for obj in scene.objects:
            inside = (_XS - obj.x) ** 2 + (_YS - obj.y) ** 2 <= (obj.size / 2) ** 2
            image[inside] = obj.color
        return image

    def perceive(self, image: np.ndarray) -> Scene:
        image = np.asarray(image)
        if image.shape != (SIZE, SIZE, 3) or image.dtype != np.uint8:
            raise PerceptionError(f"expected a {SIZE}x{SIZE} RGB uint8 frame, got {image.shape} {image.dtype}")
        if color_mask(image, PALETTE["white"]).mean() < 0.5:
            raise PerceptionError("the frame has no white background")
        objects = []
        for colour in DISC_COLOURS:
            mask = color_mask(image, PALETTE[colour])
            labels, count = ndimage.label(mask)
            for index in range(1, count + 1):
                if (labels == index).sum() < 10:
                    continue
                y, x = ndimage.center_of_mass(mask, labels, index)
                # Every toy disc has the same size; reading it back exactly keeps object_delta positional.
                x, y = float(x) + 0.5, float(y) + 0.5
                objects.append(Obj(f"{colour} disc", "disc", PALETTE[colour], x, y, 2 * RADIUS))
        black = color_mask(image, PALETTE["black"])
        # The central 4x4 block of a cell stays mostly black under a drift shift of up to 3 pixels,
        # while a neighbour's block is covered by at most a quarter.
        centres = black.reshape(GRID, CELL, GRID, CELL)[:, 2:6, :, 2:6].mean(axis=(1, 3))
        walls = frozenset((int(c), int(r)) for r, c in zip(*np.nonzero(centres >= 0.4)))
        if not objects:
            raise PerceptionError("no disc is visible")
        return Scene(family=self.name, layout=walls, objects=tuple(objects), size=(SIZE, SIZE))

    def success(self, frames: Sequence[np.ndarray], task: SimTask) -> bool:
        return self.satisfied(self.perceive(frames[-1]), task.goal)

    # ----- language ---------------------------------------------------------------------------
    def goal_from(self, prompt: str, initial: Scene) -> dict[str, Cell]:
        goal = {name: (int(c), int(r)) for name, c, r in _TASK.findall(prompt.lower())}
        if not goal:
            raise GrammarError(f"no task in {prompt!r}")
        missing = [name for name in goal if initial.find(name) is None]
        if missing:
            raise GrammarError(f"the scene has no {', '.join(missing)}")
        return goal

    def describe(self, actions: Sequence[Primitive]) -> str:
        sentences = []
        for action in actions:
            direction, cells = _direction(action)
            sentences.append(f"Move the {action.obj} {cells} cell{'s' if cells != 1 else ''} {direction}.")
        return " ".join(sentences)

    def describe_scene(self, scene: Scene) -> str:
        parts = [f"the {o.name} is at column {cell_of(o)[0]}, row {cell_of(o)[1]}" for o in scene.objects]
        return ("; ".join(parts) + ".").capitalize()

    def parse(self, text: str, scene: Scene) -> Parsed:
        lowered = text.lower()
        if _TASK.search(lowered):
            return Parsed(greedy=True)
        actions = tuple(move(name, direction, int(n)) for name, n, direction in _ACTION.findall(lowered))
        unparsed = tuple(s for s in re.split(r"(?<=\.)\s+", text.strip()) if s and not _ACTION.search(s.lower()))
        return Parsed(actions=actions, unparsed=unparsed)

    # ----- dynamics and planning --------------------------------------------------------------
    def apply(self, scene: Scene, action: Primitive) -> Scene:
        dx, dy = action.args
        return scene.with_objects(
            [o.moved(x=o.x + dx * CELL, y=o.y + dy * CELL) if o.name == action.obj else o for o in scene.objects]
        )

    def _path(self, start: Cell, goal: Cell, blocked: set[Cell]) -> list[Cell] | None:
        previous: dict[Cell, Cell | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == goal:
                path = [cell]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            for dx, dy in DIRECTIONS.values():
                nxt = (cell[0] + dx, cell[1] + dy)
                if 0 <= nxt[0] < GRID and 0 <= nxt[1] < GRID and nxt not in blocked and nxt not in previous:
                    previous[nxt] = cell
                    queue.append(nxt)
        return None

    def solve(self, scene: Scene, goal: dict[str, Cell]) -> list[Primitive]:
        """The shortest way around walls; [] when done and, as the protocol asks, when no plan exists."""
        actions: list[Primitive] = []
        for name, target in sorted(goal.items()):
            obj = scene.find(name)
            path = None if obj is None else self._path(cell_of(obj), target, set(self.walls))
            if path is None:
                return []
            # Runs of steps in one direction become one primitive action.
            for a, b in zip(path, path[1:]):
                step = (b[0] - a[0], b[1] - a[1])
                if actions and actions[-1].obj == name and _same_direction(actions[-1].args, step):
                    last = actions.pop()
                    step = (last.args[0] + step[0], last.args[1] + step[1])
                actions.append(Primitive("move", name, step))
        return actions

    def distance(self, scene: Scene, goal: dict[str, Cell]) -> float:
        total = 0.0
        for name, (c, r) in goal.items():
            obj = scene.find(name)
            if obj is None:
                total += 2 * GRID
                continue
            oc, orow = cell_of(obj)
            total += abs(oc - c) + abs(orow - r)
        return total

    def greedy(self, scene: Scene, goal: dict[str, Cell]) -> list[Primitive]:
        """Straight at the target, horizontal then vertical, through walls."""
        actions = []
        for name, (c, r) in sorted(goal.items()):
            obj = scene.find(name)
            if obj is None:
                continue
            oc, orow = cell_of(obj)
            if c != oc:
                actions.append(Primitive("move", name, (c - oc, 0)))
            if r != orow:
                actions.append(Primitive("move", name, (0, r - orow)))
        return actions

    def violations(self, before: Scene, after: Scene) -> list[str]:
        """A disc whose straight way from `before` to `after` passes through a wall cell."""
        walls = set(before.layout) | set(after.layout)
        problems = []
        for old, new in zip(before.objects, after.objects):
            if old.name != new.name:
                continue
            for t in np.linspace(0.0, 1.0, 17):
                x, y = old.x + (new.x - old.x) * t, old.y + (new.y - old.y) * t
                if (int(x // CELL), int(y // CELL)) in walls:
                    problems.append(f"the {new.name} entered a wall")
                    break
        return problems

    # ----- failure modes ----------------------------------------------------------------------
    def wrong_direction(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        obj = scene.find(action.obj)
        direction, cells = _direction(action)
        if obj is None:
            return None
        options = []
        for other in DIRECTIONS:
            if other == direction:
                continue
            candidate = move(action.obj, other, cells)
            c, r = cell_of(obj)
            dx, dy = candidate.args
            if 0 <= c + dx < GRID and 0 <= r + dy < GRID:
                options.append(candidate)
        return options[int(rng.integers(len(options)))] if options else None

    def wrong_object(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        others = sorted({o.name for o in scene.objects} - {action.obj})
        if not others:
            return None
        return Primitive(action.verb, others[int(rng.integers(len(others)))], action.args)


def _same_direction(a: Any, b: Any) -> bool:
    return (np.sign(a[0]), np.sign(a[1])) == (np.sign(b[0]), np.sign(b[1]))

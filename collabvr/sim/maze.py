"""The maze family: move a red disc through a grid maze to a green goal cell without crossing a wall.

A frame is a grid of 16-pixel cells: black wall cells, white free cells, one green goal cell and the red
disc (0.6 of a cell across, so the goal stays visible as a ring when the disc sits on it). Because the
cell size is fixed, the grid shape follows from the frame size, which is what lets `perceive` read a
maze back from pixels alone. Easy mazes are 7x7 cells (112x112 px) with a start one or two straight
segments from the goal; hard mazes are 9x9 cells (144x144 px) and need at least four segments.

Cells are (row, col), 0-based in code and 1-based in every English sentence. Pixel (i, j) covers
[j, j+1) x [i, i+1), so the centre of cell (r, c) is at x = (c + 0.5) * CELL, y = (r + 0.5) * CELL.

Moves name where to go, not how far: Primitive("move", DISC, ("right", 5)) is "right to column 6" and
takes the disc to column 5 of the row it is in. A clip regenerated from a frame in the middle of a move
therefore finishes the same move instead of travelling the whole distance again. Relative phrases ("3
cells right") are still understood; `parse` turns them into absolute targets against the scene it reads.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
from skimage.measure import label, regionprops

from collabvr.sim.base import (
    BACKGROUND,
    DIFFICULTIES,
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

CELL = 16  # pixels per cell; fixed so that the grid can be inferred from the frame size
GRID = {"easy": 7, "hard": 9}  # odd, so that rooms sit on odd indices inside a wall border
DISC_FRACTION = 0.6  # disc diameter as a fraction of the cell
DISC = "red disc"
DIRECTIONS: dict[str, tuple[int, int]] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
# Ranking penalty for a disc that cannot walk to the goal (inside a wall or off the grid): worse than any
# reachable position, still ordered by how far away it is.
UNREACHABLE_PENALTY = 1000.0
# Distance when the scene does not show exactly one disc (vanished or doubled): worse than everything.
NO_SINGLE_DISC = 1.0e6

_RED = PALETTE["red"]
_GREEN = PALETTE["green"]
_DARK_LEVEL = 100  # a pixel whose channels are all below this is wall ink, even after gain and compression
_MIN_DISC_AREA = 12  # red blobs smaller than this are compression noise or a sliver of a disc off-frame
_MIN_GOAL_FRACTION = 0.15  # of a cell; a goal under the disc still shows about 70 % of its pixels
_MIN_CLEAN_FRACTION = 0.85  # share of pixels that must look like palette colours for a frame to be a maze
_CLEAN_TOLERANCE = 90.0


@dataclass(frozen=True)
class MazeLayout:
    """The static part of a maze frame. Hashable; two layouts are equal when they draw the same maze."""

    rows: int
    cols: int
    cell: int
    walls: tuple[tuple[int, int], ...]  # sorted (row, col) of every wall cell
    goal: tuple[int, int]

    @cached_property
    def wall_set(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.walls)

    def blocked(self, cell: tuple[int, int]) -> bool:
        """A wall cell, or a cell outside the grid (the border is all wall, so leaving means crossing it)."""
        r, c = cell
        return not (0 <= r < self.rows and 0 <= c < self.cols) or cell in self.wall_set

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        return (math.floor(y / self.cell), math.floor(x / self.cell))

    def centre(self, cell: tuple[int, int]) -> tuple[float, float]:
        """(x, y) pixel centre of a cell."""
        r, c = cell
        return ((c + 0.5) * self.cell, (r + 0.5) * self.cell)

    @property
    def size(self) -> tuple[int, int]:
        return (self.rows * self.cell, self.cols * self.cell)


@dataclass(frozen=True)
class MazeGoal:
    """The disc's centre must end inside this cell."""

    row: int
    col: int

    @property
    def cell(self) -> tuple[int, int]:
        return (self.row, self.col)


# ----- grammar ------------------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_DIRECTION_WORDS = {
    "up": "up", "upward": "up", "upwards": "up", "north": "up",
    "down": "down", "downward": "down", "downwards": "down", "south": "down",
    "left": "left", "leftward": "left", "leftwards": "left", "west": "left",
    "right": "right", "rightward": "right", "rightwards": "right", "east": "right",
}
_NUM = r"(?:\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_DIR = r"(?:" + "|".join(sorted(_DIRECTION_WORDS, key=len, reverse=True)) + r")"
# The axis an absolute move's target lies on: a column for a horizontal move, a row for a vertical one.
_AXIS_OF = {"left": "column", "right": "column", "up": "row", "down": "row"}
# One regex with named alternatives, so that finditer returns the actions in the order they are written:
#   "right to column 6", "down to row 4"                 -> absolute move (what `describe` writes)
#   "3 cells right", "two cells to the right"            -> relative, count first
#   "right 3 cells", "down by two cells"                 -> relative, direction first
#   "straight to row 6, column 7"                        -> glide to a cell
#   "straight to the green goal"                         -> glide to the scene's goal
_ACTION_RE = re.compile(
    rf"\b(?P<d0>{_DIR})\s+(?:to|into|until|till|as\s+far\s+as)\s+(?:reaching\s+)?(?:the\s+)?"
    rf"(?P<axis>row|col(?:umn)?)\s+(?P<n0>{_NUM})\b"
    rf"|\b(?P<n1>{_NUM})\s+cells?\s+(?:to\s+the\s+)?(?P<d1>{_DIR})\b"
    rf"|\b(?P<d2>{_DIR})\s+(?:by\s+)?(?P<n2>{_NUM})\s+cells?\b"
    rf"|\bstraight(?:\s+line)?\s+(?:to|towards)\s+(?:the\s+cell\s+(?:in|at)\s+)?"
    rf"row\s+(?P<row>{_NUM})\s*,?\s*(?:and\s+)?col(?:umn)?\s+(?P<col>{_NUM})\b"
    rf"|\bstraight(?:\s+line)?\s+(?:to|towards)\s+the\s+(?:green\s+)?goal\b",
    re.IGNORECASE,
)
# A sentence that states the task (or its wall rule) rather than moves, e.g. the prompt itself.
_TASK_RE = re.compile(r"\bgoal\b|\bthrough\s+the\s+maze\b|\bsolve\s+the\s+maze\b|\bwalls?\b", re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"[.;!?\n]+")

_PROMPTS = (
    "Move the red disc through the maze to the green goal without crossing any black wall.",
    "Guide the red disc through the maze to the green goal cell. It must not cross the black walls.",
    "Bring the red disc to the green goal, travelling through the maze without crossing any black wall.",
)


def _number(word: str) -> int:
    word = word.lower()
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _target_index(direction: str, cell: tuple[int, int]) -> int:
    """The index an absolute move towards `cell` names: its column for left/right, its row for up/down."""
    return cell[1] if _AXIS_OF[direction] == "column" else cell[0]


def _move_target(direction: str, index: int, here: tuple[int, int]) -> tuple[int, int]:
    """The cell an absolute move ends in when it starts from the cell `here`."""
    if direction not in _AXIS_OF:
        raise ValueError(f"the maze has no direction {direction!r}")
    return (here[0], int(index)) if _AXIS_OF[direction] == "column" else (int(index), here[1])


def _place(cell: tuple[int, int]) -> str:
    """A cell as English, 1-based."""
    return f"row {cell[0] + 1}, column {cell[1] + 1}"


# ----- maze geometry ------------------------------------------------------------------------------------

def _carve(size: int, rng: np.random.Generator, extra_openings: int) -> set[tuple[int, int]]:
    """Free cells of a perfect maze carved by randomized depth-first search, plus a few extra openings.

    Rooms are the cells with two odd indices; carving opens the wall cell between two rooms. The extra
    openings remove walls between already connected rooms, which adds loops (several routes).
    """
    rooms = [(r, c) for r in range(1, size - 1, 2) for c in range(1, size - 1, 2)]
    start = rooms[int(rng.integers(len(rooms)))]
    free = {start}
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [
            (r + 2 * dr, c + 2 * dc)
            for dr, dc in DIRECTIONS.values()
            if 0 < r + 2 * dr < size - 1 and 0 < c + 2 * dc < size - 1 and (r + 2 * dr, c + 2 * dc) not in free
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        free.add(((r + nr) // 2, (c + nc) // 2))
        free.add((nr, nc))
        stack.append((nr, nc))
    between = [
        (r, c)
        for r in range(1, size - 1)
        for c in range(1, size - 1)
        if (r + c) % 2 == 1 and (r, c) not in free
    ]
    for index in rng.permutation(len(between))[:extra_openings]:
        free.add(between[int(index)])
    return free


def _bfs(layout: MazeLayout, start: tuple[int, int]) -> dict[tuple[int, int], tuple[int, int] | None]:
    """Predecessor map of a breadth-first search over free cells (fixed neighbour order: deterministic)."""
    previous: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in DIRECTIONS.values():
            nxt = (r + dr, c + dc)
            if nxt not in previous and not layout.blocked(nxt):
                previous[nxt] = (r, c)
                queue.append(nxt)
    return previous


def _path(layout: MazeLayout, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]] | None:
    """Shortest cell path from start to goal inclusive, or None when the goal cannot be reached."""
    if layout.blocked(start) or layout.blocked(goal):
        return None
    previous = _bfs(layout, start)
    if goal not in previous:
        return None
    path = [goal]
    while (step := previous[path[-1]]) is not None:
        path.append(step)
    return path[::-1]


def _segments(path: Sequence[tuple[int, int]]) -> list[tuple[str, int]]:
    """A cell path compressed into straight (direction, n_cells) runs."""
    runs: list[tuple[str, int]] = []
    for (r0, c0), (r1, c1) in zip(path, path[1:]):
        direction = next(d for d, v in DIRECTIONS.items() if v == (r1 - r0, c1 - c0))
        if runs and runs[-1][0] == direction:
            runs[-1] = (direction, runs[-1][1] + 1)
        else:
            runs.append((direction, 1))
    return runs


def _discs(scene: Scene) -> list[Obj]:
    return scene.named(DISC)


def _goal_cell(goal: MazeGoal | tuple[int, int]) -> tuple[int, int]:
    return goal.cell if isinstance(goal, MazeGoal) else (int(goal[0]), int(goal[1]))


def _layout(scene: Scene) -> MazeLayout:
    if not isinstance(scene.layout, MazeLayout):
        raise ValueError(f"not a maze scene: layout is {type(scene.layout).__name__}")
    return scene.layout


# ----- the family ---------------------------------------------------------------------------------------

class MazeFamily(Family):
    """Grid mazes: one red disc, black walls, a green goal cell. See the module docstring."""

    name = "maze"
    description = "Move a red disc through a grid maze to the green goal without crossing a black wall."

    # ----- tasks and pixels -----------------------------------------------------------------------------
    def generate(self, seed: int, difficulty: str) -> SimTask:
        check_difficulty(difficulty)
        # crc32, not hash(): string hashes are salted per process and would break determinism.
        entropy = [zlib.crc32(f"maze/{difficulty}".encode()), DIFFICULTIES.index(difficulty), seed % 2**64]
        rng = np.random.default_rng(entropy)
        size = GRID[difficulty]
        while True:  # a hard maze occasionally has no pair four segments apart: carve another one
            free = _carve(size, rng, extra_openings=int(rng.integers(0, 3)))
            walls = tuple(sorted((r, c) for r in range(size) for c in range(size) if (r, c) not in free))
            probe = MazeLayout(size, size, CELL, walls, (0, 0))
            pairs = self._candidate_pairs(probe, sorted(free), difficulty)
            if pairs:
                break
        start, goal = pairs[int(rng.integers(len(pairs)))]
        layout = MazeLayout(size, size, CELL, walls, goal)
        x, y = layout.centre(start)
        disc = Obj(DISC, "disc", _RED, x, y, DISC_FRACTION * CELL)
        initial = Scene(self.name, layout, (disc,), layout.size)
        path = _path(layout, start, goal) or []
        return SimTask(
            family=self.name,
            difficulty=difficulty,
            seed=seed,
            prompt=_PROMPTS[int(rng.integers(len(_PROMPTS)))],
            initial=initial,
            goal=MazeGoal(*goal),
            meta={"start": start, "path_cells": len(path) - 1, "segments": len(_segments(path))},
        )

    @staticmethod
    def _candidate_pairs(
        layout: MazeLayout, free: list[tuple[int, int]], difficulty: str
    ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """(start, goal) pairs whose shortest path has the segment count the difficulty asks for."""
        pairs = []
        for start in free:
            previous = _bfs(layout, start)  # one search per start serves every goal
            for goal in free:
                if goal not in previous:
                    continue
                path = [goal]
                while (step := previous[path[-1]]) is not None:
                    path.append(step)
                if len(path) < 3:  # at least two cells of travel: never a trivial task
                    continue
                n = len(_segments(path[::-1]))
                if (difficulty == "easy" and n <= 2) or (difficulty == "hard" and n >= 4):
                    pairs.append((start, goal))
        return pairs

    def render(self, scene: Scene) -> np.ndarray:
        layout = _layout(scene)
        height, width = scene.size
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:] = BACKGROUND
        cell = layout.cell
        for r, c in layout.walls:
            image[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = PALETTE["black"]
        gr, gc = layout.goal
        image[gr * cell:(gr + 1) * cell, gc * cell:(gc + 1) * cell] = _GREEN
        # Pixel centres sit at half-integers; a pixel is inside a disc when its centre is.
        ys = np.arange(height)[:, None] + 0.5
        xs = np.arange(width)[None, :] + 0.5
        for obj in scene.objects:
            radius = obj.size / 2
            image[(xs - obj.x) ** 2 + (ys - obj.y) ** 2 <= radius * radius] = obj.color
        return image

    def perceive(self, image: np.ndarray) -> Scene:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise PerceptionError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        height, width = image.shape[:2]
        if height % CELL or width % CELL:
            raise PerceptionError(f"a maze frame is a whole number of {CELL}-pixel cells, not {width}x{height}")
        rows, cols = height // CELL, width // CELL
        if rows < 5 or cols < 5 or rows % 2 == 0 or cols % 2 == 0:
            raise PerceptionError(f"a maze has an odd number (at least 5) of rows and columns, not {rows}x{cols}")
        pixels = image.astype(np.int32)

        # A maze frame is drawn only in white, black, green and red; a photo or noise is not.
        clean = np.zeros((height, width), dtype=bool)
        for name in ("white", "black", "green", "red"):
            diff = pixels - np.asarray(PALETTE[name], dtype=np.int32)
            clean |= (diff * diff).sum(axis=-1) <= _CLEAN_TOLERANCE**2
        if clean.mean() < _MIN_CLEAN_FRACTION:
            raise PerceptionError("the image is not drawn in the maze's colours")

        # A cell is a wall when most of its pixels are dark: robust to blurred edges, to a disc lying over
        # part of a wall and to a shift of a few pixels.
        dark = (pixels < _DARK_LEVEL).all(axis=-1)
        dark_share = dark.reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))
        wall_grid = dark_share > 0.5
        border = np.concatenate([wall_grid[0], wall_grid[-1], wall_grid[:, 0], wall_grid[:, -1]])
        if not border.all():
            raise PerceptionError("a maze is enclosed by a wall; this image has no wall border")
        if wall_grid.all():
            raise PerceptionError("the image has no free cells")

        green = color_mask(image, _GREEN).reshape(rows, CELL, cols, CELL).sum(axis=(1, 3))
        goal = np.unravel_index(int(np.argmax(green)), green.shape)
        if green[goal] < _MIN_GOAL_FRACTION * CELL * CELL:
            raise PerceptionError("the image shows no green goal")
        goal_cell = (int(goal[0]), int(goal[1]))
        wall_grid[goal_cell] = False

        walls = tuple((int(r), int(c)) for r, c in zip(*np.nonzero(wall_grid)))
        layout = MazeLayout(rows, cols, CELL, walls, goal_cell)
        return Scene(self.name, layout, tuple(self._find_discs(pixels)), (height, width))

    def _find_discs(self, pixels: np.ndarray) -> list[Obj]:
        """Red blobs as discs: centroid for the centre, area for the diameter.

        Two discs that touch (a doubled disc sits only 0.2 diameters from its twin, and compression can
        bridge that gap) make one blob of about twice a disc's area; it is split by k-means on its pixels.
        """
        # Nearest-colour classification puts the red/background boundary half-way between the colours,
        # where a blurred (compressed) edge crosses it; a tolerance mask would shrink every disc.
        candidates = np.asarray([_RED, PALETTE["white"], PALETTE["black"], _GREEN], dtype=np.int32)
        diff = pixels[:, :, None, :] - candidates[None, None, :, :]
        red = (diff * diff).sum(axis=-1).argmin(axis=-1) == 0
        expected_area = math.pi * (DISC_FRACTION * CELL / 2) ** 2
        discs = []
        for region in regionprops(label(red, connectivity=1)):
            if region.area < _MIN_DISC_AREA:
                continue
            count = max(1, round(region.area / expected_area))
            coords = region.coords.astype(np.float64)
            for part in _split(coords, count):
                area = len(part)
                cy, cx = part.mean(axis=0) + 0.5  # pixel (i, j) is centred at (j + 0.5, i + 0.5)
                discs.append(Obj(DISC, "disc", _RED, float(cx), float(cy), 2 * math.sqrt(area / math.pi)))
        return discs

    def success(self, frames: Sequence[np.ndarray], task: SimTask) -> bool:
        return self.score(frames, task) == 1.0

    def score(self, frames: Sequence[np.ndarray], task: SimTask) -> float:
        """The share of the route the disc has covered: 1 - (cells left to walk) / (cells to walk from the
        start), 1 on the goal; 0 when a rule is broken in any frame (the disc inside or across a wall, the
        maze redrawn) or the final frame does not show exactly one disc."""
        if len(frames) == 0:
            return 0.0
        layout = _layout(task.initial)
        try:
            scenes = [self.perceive(frame) for frame in frames]
        except PerceptionError:
            return 0.0
        # The maze itself must stay the task's maze: a video that redraws the walls solves nothing.
        if any(scene.layout != layout for scene in scenes):
            return 0.0
        for scene in scenes:
            if any(layout.blocked(layout.cell_of(d.x, d.y)) for d in _discs(scene)):
                return 0.0
        # A fast video can jump over a wall between two frames; consecutive positions must not cross one.
        for before, after in zip(scenes, scenes[1:]):
            if self.violations(before, after):
                return 0.0
        final = _discs(scenes[-1])
        if len(final) != 1:
            return 0.0
        left = self.distance(scenes[-1], task.goal)
        if left == 0:
            return 1.0
        route = self.distance(task.initial, task.goal)
        return max(0.0, 1.0 - left / route) if route > 0 else 0.0

    # ----- language -------------------------------------------------------------------------------------
    def goal_from(self, prompt: str, initial: Scene) -> MazeGoal:
        layout = _layout(initial)
        for match in _ACTION_RE.finditer(prompt):
            if match.group("row"):
                return MazeGoal(_number(match.group("row")) - 1, _number(match.group("col")) - 1)
        if _TASK_RE.search(prompt):
            return MazeGoal(*layout.goal)
        raise GrammarError(f"the prompt names no goal for the red disc: {prompt!r}")

    def describe(self, actions: Sequence[Primitive]) -> str:
        if not actions:
            return ""
        clauses = []
        for action in actions:
            if action.verb == "move":
                direction, index = action.args
                clauses.append(f"{direction} to {_AXIS_OF[direction]} {int(index) + 1}")
            elif action.verb == "glide":
                clauses.append(f"straight to {_place((int(action.args[0]), int(action.args[1])))}")
            else:
                raise ValueError(f"the maze has no action {action.verb!r}")
        return f"Move the {DISC} " + ", then ".join(clauses) + "."

    def describe_scene(self, scene: Scene) -> str:
        layout = _layout(scene)
        goal = f"the green goal is in {_place(layout.goal)}."
        discs = _discs(scene)
        if not discs:
            return f"The {DISC} is not visible; {goal}"
        places = []
        for disc in discs:
            cell = layout.cell_of(disc.x, disc.y)
            places.append(_place(cell) + (" (inside a wall)" if layout.blocked(cell) else ""))
        if len(discs) == 1:
            return f"The {DISC} is in {places[0]}; {goal}"
        return f"There are {len(discs)} red discs, in " + " and ".join(places) + f"; {goal}"

    def parse(self, text: str, scene: Scene) -> Parsed:
        actions: list[Primitive] = []
        unparsed: list[str] = []
        states_task = False
        # Where the disc will be after the actions read so far, one coordinate at a time (None: unknown).
        # Relative moves are resolved against it, so "3 cells right" means a column counted from the disc's
        # cell in this scene; with no disc only the coordinates an earlier action fixed are known.
        cursor: tuple[int | None, int | None] = (None, None)
        discs = _discs(scene) if isinstance(scene.layout, MazeLayout) else []
        if discs:
            cursor = scene.layout.cell_of(discs[0].x, discs[0].y)
        for sentence in (s.strip() for s in _SENTENCE_SPLIT.split(text)):
            if not sentence:
                continue
            matches = list(_ACTION_RE.finditer(sentence))
            if matches:
                found, after = self._actions(matches, scene, cursor)
                if found is None:  # a move that cannot be pinned down: the whole sentence is unreadable
                    unparsed.append(sentence)
                else:
                    actions.extend(found)
                    cursor = after
            elif _TASK_RE.search(sentence):
                states_task = True
            else:
                unparsed.append(sentence)
        # Explicit moves win: "3 cells right to reach the goal" is an instruction, not the whole task.
        return Parsed(actions=tuple(actions), greedy=states_task and not actions, unparsed=tuple(unparsed))

    @staticmethod
    def _actions(
        matches: list[re.Match[str]], scene: Scene, cursor: tuple[int | None, int | None]
    ) -> tuple[list[Primitive] | None, tuple[int | None, int | None]]:
        """The absolute actions of one sentence's matches and the cursor after them; None if unreadable."""
        row, col = cursor
        found = []
        for match in matches:
            if match.group("d0"):
                direction = _DIRECTION_WORDS[match.group("d0").lower()]
                axis = "row" if match.group("axis").lower() == "row" else "column"
                if axis != _AXIS_OF[direction]:  # "right to row 4" names no place to go
                    return None, cursor
                index = _number(match.group("n0")) - 1
                found.append(Primitive("move", DISC, (direction, index)))
            elif match.group("d1") or match.group("d2"):
                word, count = (match.group("d1"), match.group("n1")) if match.group("d1") else (
                    match.group("d2"), match.group("n2"))
                direction = _DIRECTION_WORDS[word.lower()]
                dr, dc = DIRECTIONS[direction]
                start, step = (col, dc) if _AXIS_OF[direction] == "column" else (row, dr)
                if start is None:  # "3 cells right" of a disc that is not there
                    return None, cursor
                index = start + step * _number(count)
                found.append(Primitive("move", DISC, (direction, index)))
            elif match.group("row"):
                place = (_number(match.group("row")) - 1, _number(match.group("col")) - 1)
                found.append(Primitive("glide", DISC, place))
            else:
                found.append(Primitive("glide", DISC, _layout(scene).goal))
            action = found[-1]
            if action.verb == "glide":
                row, col = int(action.args[0]), int(action.args[1])
            elif _AXIS_OF[action.args[0]] == "column":
                col = action.args[1]
            else:
                row = action.args[1]
        return found, (row, col)

    # ----- dynamics and planning ------------------------------------------------------------------------
    def apply(self, scene: Scene, action: Primitive) -> Scene:
        layout = _layout(scene)
        objects = list(scene.objects)
        # A doubled disc: only the first one moves; order is kept so that lerp_scene pairs objects up.
        index = next((i for i, o in enumerate(objects) if o.name == action.obj == DISC), None)
        if index is None:
            return scene
        disc = objects[index]
        if action.verb == "move":
            # The disc's own cell fixes the other coordinate: an off-centre disc is re-centred, and a disc
            # caught in the middle of a move carries on to the same target.
            direction, target_index = action.args
            target = _move_target(direction, int(target_index), layout.cell_of(disc.x, disc.y))
        elif action.verb == "glide":
            target = (int(action.args[0]), int(action.args[1]))
        else:
            raise ValueError(f"the maze has no action {action.verb!r}")
        x, y = layout.centre(target)
        objects[index] = disc.moved(x=x, y=y)
        return scene.with_objects(objects)

    def solve(self, scene: Scene, goal: MazeGoal) -> list[Primitive]:
        layout = _layout(scene)
        target = _goal_cell(goal)
        discs = _discs(scene)
        glide = [Primitive("glide", DISC, target)]
        if not discs:
            return glide  # nothing to walk; the straight attempt is all that is left to ask for
        here = layout.cell_of(discs[0].x, discs[0].y)
        if here == target:
            return []
        path = _path(layout, here, target)
        if path is None:
            return glide
        moves = []
        for direction, n in _segments(path):
            dr, dc = DIRECTIONS[direction]
            here = (here[0] + dr * n, here[1] + dc * n)
            moves.append(Primitive("move", DISC, (direction, _target_index(direction, here))))
        return moves

    def distance(self, scene: Scene, goal: MazeGoal) -> float:
        layout = _layout(scene)
        discs = _discs(scene)
        if len(discs) != 1:
            return NO_SINGLE_DISC
        here = layout.cell_of(discs[0].x, discs[0].y)
        target = _goal_cell(goal)
        if here == target:
            return 0.0
        path = _path(layout, here, target)
        if path is not None:
            return float(len(path) - 1)
        return UNREACHABLE_PENALTY + abs(here[0] - target[0]) + abs(here[1] - target[1])

    def greedy(self, scene: Scene, goal: MazeGoal) -> list[Primitive]:
        return [Primitive("glide", DISC, _goal_cell(goal))]

    def violations(self, before: Scene, after: Scene) -> list[str]:
        layout = _layout(after)
        found = []
        for a, b in zip(_discs(before), _discs(after)):
            start, end = layout.cell_of(a.x, a.y), layout.cell_of(b.x, b.y)
            # Sample the centre's straight path at least every quarter pixel: a wall cell is 16 px wide,
            # so no wall can be skipped between samples.
            steps = max(2, int(math.ceil(math.hypot(b.x - a.x, b.y - a.y) * 4)) + 1)
            for t in np.linspace(0.0, 1.0, steps):
                if layout.blocked(layout.cell_of(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)):
                    found.append(f"the {DISC} crossed a wall between {_place(start)} and {_place(end)}")
                    break
            if layout.blocked(end):
                found.append(f"the {DISC} ended inside a wall at {_place(end)}")
        return found

    # ----- failure modes of a simulated VGM -------------------------------------------------------------
    def wrong_direction(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        if action.verb == "move":
            # As far as the move would still travel from where the disc is, in another direction; the
            # target is kept on the grid (a border wall at worst) so that `describe` can still say it.
            layout = _layout(scene)
            discs = _discs(scene)
            if not discs:
                return None
            here = layout.cell_of(discs[0].x, discs[0].y)
            direction, index = action.args
            target = _move_target(direction, int(index), here)
            n = max(1, abs(target[0] - here[0]) + abs(target[1] - here[1]))
            others = [d for d in DIRECTIONS if d != direction]
            other = others[int(rng.integers(len(others)))]
            dr, dc = DIRECTIONS[other]
            wrong = (min(max(here[0] + dr * n, 0), layout.rows - 1), min(max(here[1] + dc * n, 0), layout.cols - 1))
            return Primitive("move", action.obj, (other, _target_index(other, wrong)))
        if action.verb == "glide":
            layout = _layout(scene)
            target = (int(action.args[0]), int(action.args[1]))
            free = [
                (r, c)
                for r in range(layout.rows)
                for c in range(layout.cols)
                if not layout.blocked((r, c)) and (r, c) != target
            ]
            if not free:
                return None
            return Primitive("glide", action.obj, free[int(rng.integers(len(free)))])
        return None

    def wrong_object(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        return None  # the maze has a single movable object


def _split(coords: np.ndarray, count: int) -> list[np.ndarray]:
    """Pixel coordinates of one blob split into `count` compact groups (deterministic k-means)."""
    if count <= 1 or len(coords) < 2 * count:
        return [coords]
    # Seed the centres at the blob's extremes along its main axis, where separate discs must lie.
    centred = coords - coords.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(centred @ axis)
    centres = coords[order[np.linspace(0, len(order) - 1, count).round().astype(int)]]
    for _ in range(20):
        nearest = ((coords[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1).argmin(axis=1)
        updated = np.array([coords[nearest == k].mean(axis=0) if (nearest == k).any() else centres[k]
                            for k in range(count)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return [coords[nearest == k] for k in range(count) if (nearest == k).any()]

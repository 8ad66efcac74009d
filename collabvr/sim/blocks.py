"""The blocks family: move, sort or stack coloured blocks onto named pads with pick-and-place moves.

A 128x128 frame shows a white background, a black floor line and grey pads (slabs) standing on it, named
"pad A", "pad B", ... from left to right: names are positional, no text is drawn. Blocks are filled
16-pixel squares in distinct palette colours, named "<colour> block"; they stand in stacks on the pads.
Easy tasks have 3 pads and 2-3 blocks and need 1-2 moves; hard tasks have 4 pads and 3-5 blocks and need
at least 3 moves.

Every resting edge (pad tops, block edges, pad centres +- half a block) lies on an even pixel, so that a
resting scene is drawn without anti-aliasing and its edges line up with H.264's 2x2 chroma blocks. Moving
blocks sit at fractional positions; they are drawn with area coverage anti-aliasing and perceived by
unmixing each pixel into two palette colours, which keeps perceived positions within a fraction of a pixel.

Pixel (i, j) covers [j, j+1) x [i, i+1), so a block centred at (x, y) with side s covers
[x - s/2, x + s/2) x [y - s/2, y + s/2).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import ndimage

from collabvr.sim.base import (
    BACKGROUND,
    COLOR_TOLERANCE,
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
    smoothstep,
)

FRAME = (128, 128)  # (height, width)
BLOCK = 16  # block side in pixels; even, so that resting edges fall on even pixels
BLOCK_COLOURS = ("red", "blue", "yellow", "green", "purple")  # never grey/black/white: those draw the stage
PAD_LETTERS = "ABCD"
PAD_WIDTH = 24
PAD_HEIGHT = 4
FLOOR_Y = 116  # top row of the floor line
FLOOR_HEIGHT = 2
PAD_TOP = FLOOR_Y - PAD_HEIGHT  # blocks rest on this line
# Pad centres per pad count: even, so that a resting block's left and right edges are even too.
PAD_CENTRES: dict[int, tuple[int, ...]] = {3: (28, 64, 100), 4: (22, 50, 78, 106)}
PADS_FOR = {"easy": 3, "hard": 4}
BLOCKS_FOR = {"easy": (2, 3), "hard": (3, 5)}
MOVES_FOR = {"easy": (1, 2), "hard": (3, 8)}  # the upper bound keeps hard tasks within a planner's budget
CARRY_MARGIN = 4.0  # clearance between a carried block and the tallest stack it passes over
# A block is resting when it is within this many pixels of its place in a stack; beyond, it is in the air.
REST_TOLERANCE = 3.0
# How far the drawn stage may sit from where it belongs (an image-to-video model drifts by up to 3 px).
STAGE_TOLERANCE = 4
UNREADABLE = 1.0e6  # distance for a scene whose blocks are missing, doubled or unnamed

_MIN_BLOCK_AREA = 40  # colour components smaller than this are compression specks or edge blends
_MIN_BLOCK_EXTENT = 4  # ... and so are components thinner than this (a blended seam between two blocks)
_MIN_WHITE_FRACTION = 0.6  # of the area above the floor: a blocks scene is mostly background
_MIN_FLOOR_FRACTION = 0.9  # of a row's pixels that must be floor ink for the row to be the floor line
_MIN_PAD_RUN = 12  # narrowest run of grey columns that counts as a pad

# The colours a pixel can be a mixture of, for sub-pixel unmixing in `perceive`.
_STAGE_COLOURS = ("white", "grey", "black")

Config = tuple[tuple[str, ...], ...]  # per pad, block colours from bottom to top


@dataclass(frozen=True)
class BlocksLayout:
    """The static stage. Determined by the pad count, which is what `perceive` reads back from pixels."""

    n_pads: int
    pad_xs: tuple[int, ...]
    pad_width: int
    pad_top: int
    floor_y: int
    floor_height: int
    block_size: int

    def pad_name(self, index: int) -> str:
        return f"pad {PAD_LETTERS[index]}"

    def rest_y(self, level: int) -> float:
        """Centre y of a block resting at `level` (0 = on the pad) of a stack of regular blocks."""
        return self.pad_top - self.block_size * level - self.block_size / 2

    def nearest_pad(self, x: float) -> int:
        return min(range(self.n_pads), key=lambda i: abs(self.pad_xs[i] - x))


def layout_for(n_pads: int) -> BlocksLayout:
    """The one layout with `n_pads` pads."""
    if n_pads not in PAD_CENTRES:
        raise ValueError(f"the blocks family has 3 or 4 pads, not {n_pads}")
    return BlocksLayout(n_pads, PAD_CENTRES[n_pads], PAD_WIDTH, PAD_TOP, FLOOR_Y, FLOOR_HEIGHT, BLOCK)


@dataclass(frozen=True)
class BlocksGoal:
    """Required placements. Pads are letters ("A"), blocks are colours ("red").

    `stacks`: a pad must hold exactly these blocks, bottom to top. `on_pad`: a block must stand somewhere in
    a pad's stack. `on_block`: (upper, lower): a block must stand directly on another. `blocks`: every block
    of the task's scene (sorted), each of which must be seen exactly once.
    """

    blocks: tuple[str, ...]
    stacks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    on_pad: tuple[tuple[str, str], ...] = ()
    on_block: tuple[tuple[str, str], ...] = ()


# ----- names ------------------------------------------------------------------------------------------

def block_name(colour: str) -> str:
    return f"{colour} block"


def block_colour(name: str) -> str | None:
    """The colour of a block name, or None when the name is not a block of this family."""
    colour, _, rest = name.partition(" ")
    return colour if rest == "block" and colour in BLOCK_COLOURS else None


def _pad_index(letter: str, layout: BlocksLayout) -> int | None:
    index = PAD_LETTERS.find(letter.upper())
    return index if 0 <= index < layout.n_pads else None


# ----- configurations: which block stands where --------------------------------------------------------

def _pad_of(layout: BlocksLayout, obj: Obj) -> int:
    return layout.nearest_pad(obj.x)


def _resting(layout: BlocksLayout, obj: Obj, level: int) -> bool:
    return (
        abs(obj.x - layout.pad_xs[_pad_of(layout, obj)]) <= REST_TOLERANCE
        and abs(obj.y - layout.rest_y(level)) <= REST_TOLERANCE
    )


def _stacks_of(scene: Scene) -> list[list[int]]:
    """Object indices per pad, bottom to top. A block in the air counts as landed where it is above."""
    layout: BlocksLayout = scene.layout
    stacks: list[list[int]] = [[] for _ in range(layout.n_pads)]
    for index, obj in enumerate(scene.objects):
        stacks[_pad_of(layout, obj)].append(index)
    for stack in stacks:
        stack.sort(key=lambda i: -scene.objects[i].y)
    return stacks


def config_of(scene: Scene) -> Config | None:
    """The stacks of block colours, or None when a block is unnamed or shown twice."""
    colours = [block_colour(o.name) for o in scene.objects]
    if any(c is None for c in colours) or len(set(colours)) != len(colours):
        return None
    return tuple(tuple(colours[i] for i in stack) for stack in _stacks_of(scene))  # type: ignore[misc]


def in_air(scene: Scene) -> list[str]:
    """Names of the blocks that are not resting in a stack (carried, or left floating by an illegal move)."""
    layout: BlocksLayout = scene.layout
    floating = []
    for stack in _stacks_of(scene):
        for level, index in enumerate(stack):
            if not _resting(layout, scene.objects[index], level):
                floating.append(scene.objects[index].name)
    return floating


def _satisfies(config: Config, goal: BlocksGoal) -> bool:
    for letter, order in goal.stacks:
        if config[PAD_LETTERS.index(letter)] != order:
            return False
    for colour, letter in goal.on_pad:
        if colour not in config[PAD_LETTERS.index(letter)]:
            return False
    for upper, lower in goal.on_block:
        if not any(
            stack[i] == lower and stack[i + 1] == upper for stack in config for i in range(len(stack) - 1)
        ):
            return False
    return True


def _moved(config: Config, colour: str, pad: int) -> Config:
    """`colour` taken from wherever it is (legal or not) and put on top of `pad`."""
    stacks = [tuple(c for c in stack if c != colour) for stack in config]
    stacks[pad] = stacks[pad] + (colour,)
    return tuple(stacks)


@lru_cache(maxsize=4096)
def _shortest(config: Config, goal: BlocksGoal) -> tuple[tuple[str, int], ...] | None:
    """Breadth-first search over legal moves (a top block to another pad); None when unreachable.

    5 blocks on 4 pads have 6720 configurations, so exhaustive search is cheap."""
    if _satisfies(config, goal):
        return ()
    parents: dict[Config, tuple[Config, tuple[str, int]] | None] = {config: None}
    queue = deque([config])
    while queue:
        state = queue.popleft()
        for source, stack in enumerate(state):
            if not stack:
                continue
            for target in range(len(state)):
                if target == source:
                    continue
                nxt = _moved(state, stack[-1], target)
                if nxt in parents:
                    continue
                parents[nxt] = (state, (stack[-1], target))
                if _satisfies(nxt, goal):
                    moves = []
                    node: Config = nxt
                    while (link := parents[node]) is not None:
                        node, move = link
                        moves.append(move)
                    return tuple(reversed(moves))
                queue.append(nxt)
    return None


def goal_conditions(goal: BlocksGoal) -> list[tuple]:
    """The placements a goal asks for, one per block the prompt places: ("stack", pad, level, order),
    ("pad", colour, pad) or ("on", upper, lower)."""
    conditions: list[tuple] = []
    for letter, order in goal.stacks:
        conditions.extend(("stack", letter, level, order) for level in range(len(order)))
    conditions.extend(("pad", colour, letter) for colour, letter in goal.on_pad)
    conditions.extend(("on", upper, lower) for upper, lower in goal.on_block)
    return conditions


def _met(config: Config, condition: tuple) -> bool:
    kind = condition[0]
    if kind == "stack":
        _, letter, level, order = condition
        stack = config[PAD_LETTERS.index(letter)]
        if stack[: level + 1] != order[: level + 1]:
            return False
        # The top of a stack is right only with nothing above it.
        return level < len(order) - 1 or len(stack) == len(order)
    if kind == "pad":
        _, colour, letter = condition
        return colour in config[PAD_LETTERS.index(letter)]
    _, upper, lower = condition
    return _satisfies(config, BlocksGoal((), on_block=((upper, lower),)))


def _put(config: Config, colour: str, pad: int) -> Primitive:
    """The primitive for moving `colour` onto `pad` in `config`: onto its top block, or onto the bare pad."""
    below = [c for c in config[pad] if c != colour]
    where = ("on", block_name(below[-1])) if below else ("pad", PAD_LETTERS[pad])
    return Primitive("put", block_name(colour), where)


# ----- language ---------------------------------------------------------------------------------------

_COLOUR = r"(\w+)"
_PUT_CLAUSE = re.compile(
    rf"^(?:(?:put|place|move)\s+)?the\s+{_COLOUR}\s+block\s+(?:on\s+top\s+of|onto|on|to)\s+"
    rf"(?:pad\s+([a-z])|the\s+{_COLOUR}\s+block)$"
)
_STACK_PROMPT = re.compile(r"^stack\s+all\s+(?:of\s+)?the\s+blocks\s+on\s+pad\s+([a-z])\s+with\s+(.+)$")
_SORT_PROMPT = re.compile(r"^sort\s+the\s+blocks\s*:\s*(.+)$")
_SORT_ITEM = re.compile(rf"^the\s+{_COLOUR}\s+block\s+(?:on|onto)\s+pad\s+([a-z])$")
_SENTENCES = re.compile(r"[.;!?]+(?:\s+|$)")
_CLAUSE_BREAKS = re.compile(r",|\bthen\b|\band\b")


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .;!?")


def _known_colour(word: str) -> str:
    if word not in BLOCK_COLOURS:
        raise GrammarError(f"there is no {word} block in this family")
    return word


def _stack_prompt(letter: str, order: Sequence[str]) -> str:
    if len(order) < 2:
        raise ValueError("a stack prompt names at least two blocks")
    middle = "".join(f", then the {c} block" for c in order[1:-1])
    return (
        f"Stack all the blocks on pad {letter} with the {order[0]} block at the bottom{middle}, "
        f"then the {order[-1]} block on top."
    )


def _sort_prompt(pairs: Sequence[tuple[str, str]]) -> str:
    return "Sort the blocks: " + ", ".join(f"the {c} block on pad {p}" for c, p in pairs) + "."


def _read_stack(letter: str, rest: str) -> tuple[str, tuple[str, ...]]:
    parts = re.split(r",?\s*\bthen\s+", rest)
    first = re.fullmatch(rf"the\s+{_COLOUR}\s+block\s+at\s+the\s+bottom", parts[0])
    last = re.fullmatch(rf"the\s+{_COLOUR}\s+block\s+on\s+top", parts[-1])
    middle = [re.fullmatch(rf"the\s+{_COLOUR}\s+block", p) for p in parts[1:-1]]
    if len(parts) < 2 or first is None or last is None or any(m is None for m in middle):
        raise GrammarError(f"cannot read the stacking order {rest!r}")
    order = tuple(_known_colour(m.group(1)) for m in [first, *middle, last])  # type: ignore[union-attr]
    if len(set(order)) != len(order):
        raise GrammarError("a stacking order names a block twice")
    return letter.upper(), order


def _read_sort(rest: str) -> tuple[tuple[str, str], ...]:
    items = [i.strip() for i in re.split(r",|\band\b", rest) if i.strip()]
    pairs = []
    for item in items:
        match = _SORT_ITEM.fullmatch(item)
        if match is None:
            raise GrammarError(f"cannot read the placement {item!r}")
        pairs.append((_known_colour(match.group(1)), match.group(2).upper()))
    if not pairs or len({c for c, _ in pairs}) != len(pairs):
        raise GrammarError("a sort names no block or a block twice")
    return tuple(pairs)


# ----- pixels -----------------------------------------------------------------------------------------

def _coverage(lo: float, hi: float, n: int) -> tuple[int, np.ndarray]:
    """First pixel index and per-pixel covered fraction of the interval [lo, hi) clipped to [0, n)."""
    first = max(0, math.floor(lo))
    last = min(n, math.ceil(hi))
    if last <= first:
        return first, np.zeros(0)
    edges = np.arange(first, last, dtype=np.float64)
    return first, np.clip(np.minimum(edges + 1, hi) - np.maximum(edges, lo), 0.0, 1.0)


def _palette_masks(image: np.ndarray) -> dict[str, np.ndarray]:
    """`base.color_mask` for every colour a blocks frame uses, computed in one pass over the image."""
    names = (*_STAGE_COLOURS, *BLOCK_COLOURS)
    palette = np.asarray([PALETTE[n] for n in names], dtype=np.float32)
    pixels = image.astype(np.float32)
    # |p - c|^2 expanded, so that one small matrix product does the work (exact in float32 for 8-bit RGB).
    squared = (pixels * pixels).sum(axis=-1)[..., None] - 2 * pixels @ palette.T + (palette * palette).sum(axis=1)
    close = squared <= COLOR_TOLERANCE * COLOR_TOLERANCE
    return {n: close[:, :, i] for i, n in enumerate(names)}


def _membership(patch: np.ndarray, colour: str, others: Sequence[str]) -> np.ndarray:
    """Per pixel, the fraction of `colour` when the pixel is read as a mix of `colour` and whichever other
    palette colour explains it best. Sums to the covered area of an anti-aliased, compressed square."""
    target = np.asarray(PALETTE[colour], dtype=np.float64)
    pixels = patch.astype(np.float64)
    best_residual = np.full(patch.shape[:2], np.inf)
    best_alpha = np.zeros(patch.shape[:2])
    for other in others:
        base = np.asarray(PALETTE[other], dtype=np.float64)
        axis = target - base
        alpha = np.clip(((pixels - base) @ axis) / float(axis @ axis), 0.0, 1.0)
        residual = ((pixels - base - alpha[..., None] * axis) ** 2).sum(axis=-1)
        better = residual < best_residual
        best_residual = np.where(better, residual, best_residual)
        best_alpha = np.where(better, alpha, best_alpha)
    return best_alpha


class BlocksFamily(Family):
    """Pick-and-place of coloured blocks between pads; see the module docstring for the picture."""

    name = "blocks"
    description = "Move, sort or stack coloured blocks onto named pads, one pick-and-place at a time."

    # ----- tasks ------------------------------------------------------------------------------------
    def generate(self, seed: int, difficulty: str) -> SimTask:
        check_difficulty(difficulty)
        rng = np.random.default_rng(zlib.crc32(f"{seed}:{difficulty}:blocks".encode()))
        layout = layout_for(PADS_FOR[difficulty])
        low, high = BLOCKS_FOR[difficulty]
        fewest, most = MOVES_FOR[difficulty]
        for _ in range(1000):
            n_blocks = int(rng.integers(low, high + 1))
            colours = [str(c) for c in rng.permutation(BLOCK_COLOURS)[:n_blocks]]
            stacks: list[list[str]] = [[] for _ in range(layout.n_pads)]
            for colour in colours:
                stacks[int(rng.integers(layout.n_pads))].append(colour)
            config: Config = tuple(tuple(s) for s in stacks)
            prompt, goal, kind = self._draw_goal(config, difficulty, rng)
            moves = _shortest(config, goal)
            if moves is not None and fewest <= len(moves) <= most:
                initial = self._scene_from_config(layout, config)
                meta = {"kind": kind, "moves": len(moves)}
                return SimTask(self.name, difficulty, seed, prompt, initial, goal, meta)
        raise RuntimeError(f"no blocks task found for seed {seed} ({difficulty})")

    def _draw_goal(self, config: Config, difficulty: str, rng: np.random.Generator) -> tuple[str, BlocksGoal, str]:
        colours = sorted(c for stack in config for c in stack)
        letters = PAD_LETTERS[: len(config)]
        blocks = tuple(colours)
        if difficulty == "easy":
            if rng.random() < 0.5:
                colour = str(rng.choice(colours))
                letter = str(rng.choice(list(letters)))
                prompt = f"Put the {colour} block on pad {letter}."
                return prompt, BlocksGoal(blocks, on_pad=((colour, letter),)), "put_on_pad"
            upper, lower = (str(c) for c in rng.permutation(colours)[:2])
            prompt = f"Put the {upper} block on the {lower} block."
            return prompt, BlocksGoal(blocks, on_block=((upper, lower),)), "put_on_block"
        if len(colours) <= len(letters) and rng.random() < 0.5:
            pads = [str(p) for p in rng.permutation(list(letters))[: len(colours)]]
            pairs = tuple(sorted(zip(colours, pads), key=lambda pair: pair[1]))
            return _sort_prompt(pairs), BlocksGoal(blocks, on_pad=pairs), "sort"
        letter = str(rng.choice(list(letters)))
        order = tuple(str(c) for c in rng.permutation(colours))
        return _stack_prompt(letter, order), BlocksGoal(blocks, stacks=((letter, order),)), "stack"

    def _scene_from_config(self, layout: BlocksLayout, config: Config) -> Scene:
        objects = []
        for pad, stack in enumerate(config):
            for level, colour in enumerate(stack):
                objects.append(
                    Obj(block_name(colour), "square", PALETTE[colour], float(layout.pad_xs[pad]),
                        layout.rest_y(level), float(layout.block_size))
                )
        return Scene(self.name, layout, tuple(objects), FRAME)

    # ----- pixels -----------------------------------------------------------------------------------
    def render(self, scene: Scene) -> np.ndarray:
        layout: BlocksLayout = scene.layout
        height, width = scene.size
        image = np.empty((height, width, 3), dtype=np.float64)
        image[:] = BACKGROUND
        image[layout.floor_y: layout.floor_y + layout.floor_height, :] = PALETTE["black"]
        half = layout.pad_width // 2
        for x in layout.pad_xs:
            image[layout.pad_top: layout.floor_y, x - half: x + half] = PALETTE["grey"]
        for obj in scene.objects:
            # Area-coverage anti-aliasing: a block at a fractional position keeps its exact centre in pixels.
            col0, cover_x = _coverage(obj.x - obj.size / 2, obj.x + obj.size / 2, width)
            row0, cover_y = _coverage(obj.y - obj.size / 2, obj.y + obj.size / 2, height)
            if cover_x.size == 0 or cover_y.size == 0:
                continue
            cover = np.outer(cover_y, cover_x)[..., None]
            region = image[row0: row0 + cover_y.size, col0: col0 + cover_x.size]
            region[:] = region * (1 - cover) + np.asarray(obj.color, dtype=np.float64) * cover
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def perceive(self, image: np.ndarray) -> Scene:
        image = np.asarray(image)
        if image.shape != (*FRAME, 3):
            raise PerceptionError(f"a blocks frame is {FRAME[0]}x{FRAME[1]} RGB, not {image.shape}")
        masks = _palette_masks(image)
        layout, (dx, dy) = self._perceive_stage(masks)
        objects: list[Obj] = []
        for colour in BLOCK_COLOURS:
            # Positions are read relative to the stage, so that a frame shifted as a whole (an
            # image-to-video model's first-frame drift) still shows blocks resting on their pads.
            found = self._perceive_blocks(image, masks[colour], colour)
            objects.extend(o.moved(x=o.x - dx, y=o.y - dy) for o in found)
        # Pads left to right, each stack bottom to top: the order a reader would list them in.
        objects.sort(key=lambda o: (layout.nearest_pad(o.x), -o.y, o.x))
        return Scene(self.name, layout, tuple(objects), FRAME)

    def _perceive_stage(self, masks: dict[str, np.ndarray]) -> tuple[BlocksLayout, tuple[int, int]]:
        """The layout, from the floor line and the grey pads standing on it, and the whole pixels (dx, dy)
        by which the stage is drawn away from its place."""
        floor_rows = np.flatnonzero(masks["black"].mean(axis=1) >= _MIN_FLOOR_FRACTION)
        if floor_rows.size == 0 or abs(int(floor_rows[0]) - FLOOR_Y) > STAGE_TOLERANCE:
            raise PerceptionError("no floor line: not a blocks scene")
        floor = int(floor_rows[0])
        if masks["white"][: floor - PAD_HEIGHT].mean() < _MIN_WHITE_FRACTION:
            raise PerceptionError("the area above the floor is not mostly background: not a blocks scene")
        # The middle rows of the pad slabs, which no resting block covers.
        band = masks["grey"][floor - PAD_HEIGHT + 1: floor - 1].mean(axis=0) >= 0.5
        runs, count = ndimage.label(band)
        centres = [
            float(np.flatnonzero(runs == k).mean()) + 0.5
            for k in range(1, count + 1)
            if (runs == k).sum() >= _MIN_PAD_RUN
        ]
        if len(centres) not in PAD_CENTRES:
            raise PerceptionError(f"{len(centres)} pads on the floor: not a blocks scene")
        layout = layout_for(len(centres))
        offsets = [c - x for c, x in zip(centres, layout.pad_xs)]
        if any(abs(o) > STAGE_TOLERANCE for o in offsets):
            raise PerceptionError("the pads are not where a blocks scene has them")
        return layout, (round(float(np.mean(offsets))), floor - FLOOR_Y)

    def _perceive_blocks(self, image: np.ndarray, mask: np.ndarray, colour: str) -> list[Obj]:
        components, count = ndimage.label(mask)
        if count == 0:
            return []
        areas = np.bincount(components.ravel(), minlength=count + 1)
        others = _STAGE_COLOURS + tuple(c for c in BLOCK_COLOURS if c != colour)
        height, width = components.shape
        found = []
        for k, box in enumerate(ndimage.find_objects(components), start=1):
            extent = min(box[0].stop - box[0].start, box[1].stop - box[1].start)
            if areas[k] < _MIN_BLOCK_AREA or extent < _MIN_BLOCK_EXTENT:
                continue
            # The component and its one-pixel rim, where anti-aliased and compressed edge pixels lie; the
            # pixels of another component of this colour (a doubled block's twin) stay out.
            top, left = max(0, box[0].start - 2), max(0, box[1].start - 2)
            bottom, right = min(height, box[0].stop + 2), min(width, box[1].stop + 2)
            labels = components[top:bottom, left:right]
            own = labels == k
            near = ndimage.binary_dilation(own, structure=np.ones((3, 3), dtype=bool))
            near &= (labels == 0) | own
            w = np.where(near, _membership(image[top:bottom, left:right], colour, others), 0.0)
            area = float(w.sum())
            rows, cols = np.indices(w.shape)
            x = left + float((w * (cols + 0.5)).sum() / area)
            y = top + float((w * (rows + 0.5)).sum() / area)
            found.append(Obj(block_name(colour), "square", PALETTE[colour], x, y, math.sqrt(area)))
        return found

    def success(self, frames: Sequence[np.ndarray], task: SimTask) -> bool:
        return self.score(frames, task) == 1.0

    def score(self, frames: Sequence[np.ndarray], task: SimTask) -> float:
        """The share of the goal's placements the final frame shows (a stack counts one placement per
        level, met when every level below it is right too); 0 when a block is missing, doubled or left
        in the air (a block cannot hang in the air)."""
        if len(frames) == 0:
            return 0.0
        try:
            scene = self.perceive(frames[-1])
        except PerceptionError:
            return 0.0
        config = self._readable(scene, task.goal)
        if config is None or in_air(scene):
            return 0.0
        conditions = goal_conditions(task.goal)
        return sum(_met(config, c) for c in conditions) / len(conditions)

    # ----- language ---------------------------------------------------------------------------------
    def goal_from(self, prompt: str, initial: Scene) -> BlocksGoal:
        layout: BlocksLayout = initial.layout
        colours = [block_colour(o.name) for o in initial.objects]
        blocks = tuple(sorted(c for c in colours if c is not None))
        text = _normal(prompt)

        def letter_of(word: str) -> str:
            if _pad_index(word, layout) is None:
                raise GrammarError(f"there is no pad {word.upper()} in this scene")
            return word.upper()

        if match := _STACK_PROMPT.fullmatch(text):
            letter, order = _read_stack(letter_of(match.group(1)), match.group(2))
            return BlocksGoal(blocks, stacks=((letter, order),))
        if match := _SORT_PROMPT.fullmatch(text):
            pairs = tuple((c, letter_of(p)) for c, p in _read_sort(match.group(1)))
            return BlocksGoal(blocks, on_pad=pairs)
        if match := _PUT_CLAUSE.fullmatch(text):
            if not re.match(r"(put|place|move)\b", text):
                raise GrammarError(f"a task prompt starts with a verb: {prompt!r}")
            colour = _known_colour(match.group(1))
            if match.group(2):
                return BlocksGoal(blocks, on_pad=((colour, letter_of(match.group(2))),))
            lower = _known_colour(match.group(3))
            if lower == colour:
                raise GrammarError("a block cannot go on itself")
            return BlocksGoal(blocks, on_block=((colour, lower),))
        raise GrammarError(f"cannot read a blocks task from {prompt!r}")

    def describe(self, actions: Sequence[Primitive]) -> str:
        clauses = []
        for action in actions:
            colour = block_colour(action.obj)
            if action.verb != "put" or colour is None or len(action.args) != 2:
                raise GrammarError(f"not a blocks action: {action}")
            kind, target = action.args
            where = f"pad {target}" if kind == "pad" else f"the {target}"
            clauses.append(f"put the {colour} block on {where}")
        if not clauses:
            return ""
        text = ", then ".join(clauses)
        return text[0].upper() + text[1:] + "."

    def describe_scene(self, scene: Scene) -> str:
        layout: BlocksLayout = scene.layout
        floating = set(in_air(scene))
        parts = []
        for pad, stack in enumerate(_stacks_of(scene)):
            names = [scene.objects[i].name for i in stack if scene.objects[i].name not in floating]
            held = " under ".join(f"the {n}" for n in names)
            parts.append(f"{layout.pad_name(pad)} holds {held}" if names else f"{layout.pad_name(pad)} is empty")
        text = "; ".join(parts)
        text = text[0].upper() + text[1:] + "."
        for obj in scene.objects:
            if obj.name in floating:
                text += f" The {obj.name} is in the air above {layout.pad_name(_pad_of(layout, obj))}."
        return text

    def parse(self, text: str, scene: Scene) -> Parsed:
        layout: BlocksLayout = scene.layout
        actions: list[Primitive] = []
        unparsed: list[str] = []
        for sentence in _SENTENCES.split(text):
            normal = _normal(sentence)
            if not normal:
                continue
            if _STACK_PROMPT.fullmatch(normal) or _SORT_PROMPT.fullmatch(normal):
                # A text that states the task itself: a VGM attempts it in one go.
                return Parsed(greedy=True)
            for clause in _CLAUSE_BREAKS.split(normal):
                clause = clause.strip()
                if not clause:
                    continue
                action = self._read_put(clause, layout)
                if action is None:
                    unparsed.append(clause)
                else:
                    actions.append(action)
        return Parsed(actions=tuple(actions), unparsed=tuple(unparsed))

    def _read_put(self, clause: str, layout: BlocksLayout) -> Primitive | None:
        match = _PUT_CLAUSE.fullmatch(clause)
        if match is None or match.group(1) not in BLOCK_COLOURS:
            return None
        obj = block_name(match.group(1))
        if match.group(2):
            if _pad_index(match.group(2), layout) is None:
                return None
            return Primitive("put", obj, ("pad", match.group(2).upper()))
        if match.group(3) not in BLOCK_COLOURS or match.group(3) == match.group(1):
            return None
        return Primitive("put", obj, ("on", block_name(match.group(3))))

    # ----- dynamics ---------------------------------------------------------------------------------
    def _mover(self, scene: Scene, name: str) -> int | None:
        """Index of the object an action moves: the highest one of that name (a doubled block's twin
        beside it is as high; the first wins)."""
        candidates = [i for i, o in enumerate(scene.objects) if o.name == name]
        return min(candidates, key=lambda i: scene.objects[i].y) if candidates else None

    def _target_pad(self, scene: Scene, action: Primitive, mover: int) -> int | None:
        layout: BlocksLayout = scene.layout
        if len(action.args) != 2:
            return None
        kind, target = action.args
        if kind == "pad":
            return _pad_index(str(target), layout)
        if kind == "on":
            under = [
                o for i, o in enumerate(scene.objects) if o.name == target and i != mover
            ]
            return _pad_of(layout, min(under, key=lambda o: o.y)) if under else None
        return None

    def _endpoints(self, scene: Scene, action: Primitive) -> tuple[int, float, float, float] | None:
        """(mover index, landing x, landing y, carry y), or None when the action cannot be acted out."""
        if action.verb != "put":
            return None
        mover = self._mover(scene, action.obj)
        if mover is None:
            return None
        pad = self._target_pad(scene, action, mover)
        if pad is None:
            return None
        layout: BlocksLayout = scene.layout
        block = scene.objects[mover]
        others = [o for i, o in enumerate(scene.objects) if i != mover]
        tops = [o.y - o.size / 2 for o in others if _pad_of(layout, o) == pad]
        land_y = min(tops, default=float(layout.pad_top)) - block.size / 2
        highest = min([o.y - o.size / 2 for o in others], default=float(layout.pad_top))
        carry_y = min(highest - block.size / 2 - CARRY_MARGIN, block.y, land_y)
        carry_y = max(carry_y, block.size / 2)  # stay in the frame even over an impossibly tall stack
        if abs(block.x - layout.pad_xs[pad]) < 0.5 and block.y <= land_y:
            # Already straight above where it lands (a clip regenerated from a frame mid-way down, or a
            # block left hanging): it is only lowered, not lifted back up first.
            carry_y = block.y
        return mover, float(layout.pad_xs[pad]), land_y, carry_y

    def apply(self, scene: Scene, action: Primitive) -> Scene:
        ends = self._endpoints(scene, action)
        if ends is None:
            return scene
        mover, x, y, _ = ends
        objects = list(scene.objects)
        objects[mover] = objects[mover].moved(x=x, y=y)
        return scene.with_objects(objects)

    def interpolate(self, scene: Scene, action: Primitive, t: float) -> Scene:
        ends = self._endpoints(scene, action)
        if ends is None or t <= 0:
            return scene
        if t >= 1:
            return self.apply(scene, action)
        mover, x1, y1, carry = ends
        block = scene.objects[mover]
        waypoints = [(block.x, block.y), (block.x, carry), (x1, carry), (x1, y1)]
        lengths = [math.dist(a, b) for a, b in zip(waypoints, waypoints[1:])]
        total = sum(lengths)
        if total == 0:
            return scene
        # Lift, carry, lower: each leg eases in and out, taking time in proportion to its length, so the
        # path is continuous in t and the block pauses at the corners as a gripper would.
        travelled = t * total
        for (a, b), length in zip(zip(waypoints, waypoints[1:]), lengths):
            if travelled <= length and length > 0:
                s = smoothstep(travelled / length)
                x, y = a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s
                break
            travelled -= length
        else:
            x, y = waypoints[-1]
        objects = list(scene.objects)
        objects[mover] = block.moved(x=x, y=y)
        return scene.with_objects(objects)

    # ----- planning ---------------------------------------------------------------------------------
    def _readable(self, scene: Scene, goal: BlocksGoal) -> Config | None:
        config = config_of(scene)
        if config is None or tuple(sorted(c for s in config for c in s)) != goal.blocks:
            return None
        return config

    def solve(self, scene: Scene, goal: BlocksGoal) -> list[Primitive]:
        """Shortest legal plan; [] when satisfied, and also when no plan exists (a block missing or
        doubled): `distance` tells the two apart. A block left in the air is put down first."""
        config = self._readable(scene, goal)
        moves = self._moves(scene, config, goal)
        if not moves:
            return []
        plan = []
        for colour, pad in moves:
            plan.append(_put(config, colour, pad))  # type: ignore[arg-type]
            config = _moved(config, colour, pad)  # type: ignore[arg-type]
        return plan

    def distance(self, scene: Scene, goal: BlocksGoal) -> float:
        moves = self._moves(scene, self._readable(scene, goal), goal)
        return UNREADABLE if moves is None else float(len(moves))

    def _moves(self, scene: Scene, config: Config | None, goal: BlocksGoal) -> tuple[tuple[str, int], ...] | None:
        """The shortest (colour, pad) moves to the goal. `config` counts a block in the air as standing
        where it hangs, so a block in the air must be put down before anything else: the success test
        (`score`) never takes a hanging block as placed, and the planner must not either."""
        if config is None:
            return None
        hanging = [c for c in (block_colour(name) for name in in_air(scene)) if c is not None]
        if not hanging:
            return _shortest(config, goal)
        colour = hanging[0]
        layout: BlocksLayout = scene.layout
        here = next(p for p, stack in enumerate(config) if colour in stack)
        best: tuple[tuple[str, int], ...] | None = None
        # Where it hangs first, so that a tie lands it straight down.
        for pad in [here] + [p for p in range(layout.n_pads) if p != here]:
            landed = _moved(config, colour, pad)
            rest = _shortest(landed, goal)
            if rest is not None and (best is None or 1 + len(rest) < len(best)):
                best = ((colour, pad),) + rest
        return best

    def greedy(self, scene: Scene, goal: BlocksGoal) -> list[Primitive]:
        config = config_of(scene)
        if config is None:
            return []
        plan: list[Primitive] = []

        def move(colour: str, pad: int, where: tuple[str, str]) -> None:
            nonlocal config
            plan.append(Primitive("put", block_name(colour), where))
            config = _moved(config, colour, pad)  # type: ignore[arg-type]

        for letter, order in goal.stacks:
            pad = PAD_LETTERS.index(letter)
            for level, colour in enumerate(order):
                if config[pad][: level + 1] != order[: level + 1]:
                    move(colour, pad, ("pad", letter) if level == 0 else ("on", block_name(order[level - 1])))
        for colour, letter in goal.on_pad:
            pad = PAD_LETTERS.index(letter)
            if colour not in config[pad]:
                move(colour, pad, ("pad", letter))
        for upper, lower in goal.on_block:
            if not _satisfies(config, BlocksGoal(goal.blocks, on_block=((upper, lower),))):
                target = next((p for p, stack in enumerate(config) if lower in stack), None)
                if target is not None:
                    move(upper, target, ("on", block_name(lower)))
        return plan

    # ----- failure modes ----------------------------------------------------------------------------
    def wrong_direction(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        config = config_of(scene)
        colour = block_colour(action.obj)
        mover = self._mover(scene, action.obj)
        if config is None or colour is None or mover is None:
            return None
        layout: BlocksLayout = scene.layout
        meant = self._target_pad(scene, action, mover)
        here = _pad_of(layout, scene.objects[mover])
        choices = [p for p in range(layout.n_pads) if p not in (meant, here)]
        if not choices:
            return None
        return _put(config, colour, int(rng.choice(choices)))

    def wrong_object(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        config = config_of(scene)
        mover = self._mover(scene, action.obj)
        if config is None or mover is None:
            return None
        meant = self._target_pad(scene, action, mover)
        named = block_colour(action.obj)
        target = block_colour(str(action.args[1])) if action.args and action.args[0] == "on" else None
        tops = [
            stack[-1] for pad, stack in enumerate(config)
            if stack and pad != meant and stack[-1] not in (named, target)
        ]
        if not tops:
            return None
        return Primitive("put", block_name(str(rng.choice(tops))), action.args)

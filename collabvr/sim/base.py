"""The simulated world's common model: scenes of named objects, primitive actions, and the Family protocol.

Every task family (maze, blocks, shapes) is a `Family`: a seeded generator, a renderer, a perceiver that
reads a scene back from pixels, an action grammar in plain English, a solver and a pixel-based success
test. The simulated VGM and VLM (`collabvr.sim.vgm`, `collabvr.sim.vlm`) are written once against this
protocol, so a new family only has to implement it.

Coordinates are pixels of the rendered frame (floats, origin top-left, y down; pixel (i, j) is centred at
(j + 0.5, i + 0.5)); angles are degrees, counter-clockwise on screen. Everything here is deterministic given its inputs and an explicit
`numpy.random.Generator`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


RGB = tuple[int, int, int]

# One palette for every family: saturated colours that survive H.264 compression and can be told apart
# by a plain distance threshold when a frame is perceived.
PALETTE: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 180),
    "orange": (240, 130, 30),
    "cyan": (30, 190, 200),
    "black": (20, 20, 20),
    "white": (250, 250, 250),
    "grey": (150, 150, 150),
}
BACKGROUND: RGB = PALETTE["white"]
COLOR_TOLERANCE = 60.0  # max RGB distance for a pixel to count as a palette colour after compression

DIFFICULTIES = ("easy", "hard")


class PerceptionError(ValueError):
    """The image does not show a scene of this family (e.g. a photo given to the simulated world)."""


class GrammarError(ValueError):
    """A text could not be read as an action or a task of this family."""


@dataclass(frozen=True)
class Obj:
    """One visible object. `name` is how the action grammar refers to it and must be recoverable from pixels."""

    name: str
    shape: str
    color: RGB
    x: float
    y: float
    size: float
    angle: float = 0.0

    def moved(self, **changes: Any) -> "Obj":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Scene:
    """What a frame shows: a static layout (walls, pads; hashable, family-specific) and the objects on it."""

    family: str
    layout: Any
    objects: tuple[Obj, ...]
    size: tuple[int, int] = (128, 128)  # (height, width) of the rendered frame

    def named(self, name: str) -> list[Obj]:
        return [o for o in self.objects if o.name == name]

    def find(self, name: str) -> Obj | None:
        found = self.named(name)
        return found[0] if len(found) == 1 else None

    def names(self) -> list[str]:
        return [o.name for o in self.objects]

    def with_object(self, name: str, **changes: Any) -> "Scene":
        """A copy in which every object called `name` has the given attributes changed."""
        objects = tuple(o.moved(**changes) if o.name == name else o for o in self.objects)
        return dataclasses.replace(self, objects=objects)

    def with_objects(self, objects: Sequence[Obj]) -> "Scene":
        return dataclasses.replace(self, objects=tuple(objects))


@dataclass(frozen=True)
class Primitive:
    """One primitive action: the unit a VGM executes reliably (one maze segment, one pick-and-place...).

    `verb` and `args` are family-specific; `obj` names the object acted on.
    """

    verb: str
    obj: str
    args: tuple = ()


@dataclass(frozen=True)
class Parsed:
    """What a text means to the simulated models.

    `greedy` is True when the text states the whole task (a goal) rather than explicit actions: a VGM
    given such a text executes it greedily. `unparsed` keeps any sentence the grammar could not read.
    """

    actions: tuple[Primitive, ...] = ()
    greedy: bool = False
    unparsed: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimTask:
    """A generated task. `goal` is the family's own goal object; only the success test and the VLM's
    reading of `prompt` use it: the simulated models never see `initial` or `goal` directly."""

    family: str
    difficulty: str
    seed: int
    prompt: str
    initial: Scene
    goal: Any
    meta: dict = field(default_factory=dict, compare=False)


class Family(ABC):
    """A task family of the simulated world. Implementations are stateless and deterministic."""

    name: str
    description: str

    # ----- tasks and pixels -------------------------------------------------------------------
    @abstractmethod
    def generate(self, seed: int, difficulty: str) -> SimTask:
        """A task drawn from `seed`; the same seed and difficulty always give the same task."""

    @abstractmethod
    def render(self, scene: Scene) -> np.ndarray:
        """The frame for a scene: (H, W, 3) uint8, H and W even (H.264 yuv420p needs that)."""

    @abstractmethod
    def perceive(self, image: np.ndarray) -> Scene:
        """The scene a frame shows, from its pixels alone. Raises PerceptionError if it shows none.

        Must invert `render` (positions within a pixel, sizes and angles within a small tolerance) and
        must survive H.264 compression. A vanished object is simply absent; a doubled one appears twice.
        """

    @abstractmethod
    def success(self, frames: Sequence[np.ndarray], task: SimTask) -> bool:
        """Whether a video solves the task, read from pixels (the final frame; the maze also checks that
        no frame shows the disc inside a wall)."""

    def score(self, frames: Sequence[np.ndarray], task: SimTask) -> float:
        """A graded result in [0, 1], read from pixels like `success`: the share of the goal's conditions
        the final frame meets, 0 when a hard rule of the world is broken; exactly 1.0 when and only when
        `success`. This default knows no conditions: 1.0 on success, else 0.0."""
        return 1.0 if self.success(frames, task) else 0.0

    # ----- language ---------------------------------------------------------------------------
    @abstractmethod
    def goal_from(self, prompt: str, initial: Scene) -> Any:
        """The goal a task prompt asks for, given the scene of the input image (required: the simulated
        VLM reads goals only this way). Raises GrammarError."""

    @abstractmethod
    def describe(self, actions: Sequence[Primitive]) -> str:
        """Plain-English instruction for actions, which `parse` reads back to the same actions."""

    @abstractmethod
    def describe_scene(self, scene: Scene) -> str:
        """One or two sentences a planner would write as its observation."""

    @abstractmethod
    def parse(self, text: str, scene: Scene) -> Parsed:
        """Read an instruction (actions) or a task prompt (greedy) against the scene it applies to."""

    # ----- dynamics and planning --------------------------------------------------------------
    @abstractmethod
    def apply(self, scene: Scene, action: Primitive) -> Scene:
        """The scene after an action, with no physics checks: a VGM may do illegal things."""

    def interpolate(self, scene: Scene, action: Primitive, t: float) -> Scene:
        """The scene a fraction `t` in [0, 1] of the way through `action`. Smooth in t; t=0 is `scene`."""
        return lerp_scene(scene, self.apply(scene, action), t)

    @abstractmethod
    def solve(self, scene: Scene, goal: Any) -> list[Primitive]:
        """The primitive actions that still lead from `scene` to `goal`: [] when satisfied, and also when no
        plan exists (an object missing or doubled); `distance` tells the two apart."""

    @abstractmethod
    def distance(self, scene: Scene, goal: Any) -> float:
        """How far `scene` is from `goal`: 0 when satisfied, larger when further (best-of-k ranking)."""

    def satisfied(self, scene: Scene, goal: Any) -> bool:
        return self.distance(scene, goal) == 0

    @abstractmethod
    def greedy(self, scene: Scene, goal: Any) -> list[Primitive]:
        """What a VGM does with the raw task prompt: the direct, undecomposed attempt (maze: straight
        for the goal through walls)."""

    def violations(self, before: Scene, after: Scene) -> list[str]:
        """Physical violations between two consecutive scenes (maze: crossing a wall). Default: none."""
        return []

    # ----- failure modes of a simulated VGM ---------------------------------------------------
    @abstractmethod
    def wrong_direction(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        """A plausible wrong version of `action` (other direction, other place, other amount), or None."""

    @abstractmethod
    def wrong_object(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        """`action` applied to another object, or None when the scene has no other movable object."""


# ----- generic helpers shared by the families and the simulated models ------------------------------

def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def lerp_angle(a: float, b: float, t: float) -> float:
    """Interpolate angles along the signed difference b - a as given (a 90 degree turn stays 90 degrees)."""
    return a + (b - a) * t


def lerp_color(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(lerp(ca, cb, t))) for ca, cb in zip(a, b))  # type: ignore[return-value]


def smoothstep(t: float) -> float:
    """Ease in and out, so that simulated motion starts and stops smoothly as real video motion does."""
    t = min(1.0, max(0.0, t))
    return t * t * (3 - 2 * t)


def lerp_scene(a: Scene, b: Scene, t: float) -> Scene:
    """Objects of `a` moved part-way to their counterparts in `b` (matched by position in the tuple)."""
    if len(a.objects) != len(b.objects):
        raise ValueError("lerp_scene needs scenes with the same objects")
    objects = tuple(
        oa.moved(
            x=lerp(oa.x, ob.x, t),
            y=lerp(oa.y, ob.y, t),
            size=lerp(oa.size, ob.size, t),
            angle=lerp_angle(oa.angle, ob.angle, t),
            color=lerp_color(oa.color, ob.color, t),
        )
        for oa, ob in zip(a.objects, b.objects)
    )
    return dataclasses.replace(a, objects=objects)


def collapse(scene: Scene, rng: np.random.Generator) -> tuple[Scene, str]:
    """Scene collapse: one object vanishes or is doubled. Returns the new scene and what happened."""
    if not scene.objects:
        return scene, "nothing to collapse"
    index = int(rng.integers(len(scene.objects)))
    victim = scene.objects[index]
    if rng.random() < 0.5:
        rest = scene.objects[:index] + scene.objects[index + 1:]
        return scene.with_objects(rest), f"the {victim.name} vanished"
    twin = _free_spot(scene, victim)
    return scene.with_objects(scene.objects + (twin,)), f"the {victim.name} was doubled"


def _free_spot(scene: Scene, victim: Obj) -> Obj:
    """A copy of `victim` beside it where it overlaps nothing, so the doubling is visible as such: far
    enough that compression cannot merge the twin back, and never hiding another object."""
    height, width = scene.size
    half = victim.size / 2
    step = victim.size * 1.6
    offsets = [(step, 0.0), (-step, 0.0), (0.0, -step), (2 * step, 0.0), (-2 * step, 0.0), (0.0, -2 * step),
               (step, -step), (-step, -step)]
    inside = []
    for dx, dy in offsets:
        x, y = victim.x + dx, victim.y + dy
        if not (half <= x <= width - half and half <= y <= height - half):
            continue
        inside.append((x, y))
        clear = all(abs(o.x - x) > (o.size + victim.size) / 2 + 2 or abs(o.y - y) > (o.size + victim.size) / 2 + 2
                    for o in scene.objects)
        if clear:
            return victim.moved(x=x, y=y)
    x, y = inside[0] if inside else (victim.x, victim.y)
    return victim.moved(x=x, y=y)


def drift_image(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """First-frame drift of an image-to-video model: a slight shift, blur of tone and brightness change."""
    dy, dx = (int(v) for v in rng.integers(-3, 4, size=2))
    shifted = np.roll(image, shift=(dy, dx), axis=(0, 1)).astype(np.float32)
    gain = 1.0 + float(rng.uniform(-0.08, 0.08))
    return np.clip(shifted * gain + float(rng.uniform(-10, 10)), 0, 255).astype(np.uint8)


def color_mask(image: np.ndarray, color: RGB, tolerance: float = COLOR_TOLERANCE) -> np.ndarray:
    """Boolean mask of pixels within `tolerance` (RGB distance) of `color`."""
    diff = image.astype(np.int32) - np.asarray(color, dtype=np.int32)
    return (diff * diff).sum(axis=-1) <= tolerance * tolerance


def nearest_palette_name(color: Sequence[float]) -> str:
    """The palette name closest to an (averaged) observed colour."""
    c = np.asarray(color, dtype=np.float64)
    return min(PALETTE, key=lambda name: float(((c - np.asarray(PALETTE[name])) ** 2).sum()))


def angle_diff(a: float, b: float) -> float:
    """Smallest absolute difference between two angles in degrees."""
    d = (a - b) % 360.0
    return min(d, 360.0 - d)


def object_delta(a: Obj, b: Obj) -> float:
    """A single number for how different two states of one object look (pixels-equivalent)."""
    pos = math.hypot(a.x - b.x, a.y - b.y)
    size = abs(a.size - b.size)
    turn = angle_diff(a.angle, b.angle) / 10.0
    tint = math.sqrt(sum((ca - cb) ** 2 for ca, cb in zip(a.color, b.color))) / 10.0
    return pos + size + turn + tint


def check_difficulty(difficulty: str) -> str:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}")
    return difficulty

"""The `shapes` family: a triangle transformed step by step (recolour, scale, move, rotate).

A 128x128 white canvas shows one isosceles triangle, plus on hard tasks a square and/or a circle that
must stay as they are. Shapes sit at nine named anchors ("top left" ... "bottom right"). The triangle is
about 1.7 times longer than wide so that the direction of its apex (`angle`, 90 = up) can be read back
from pixels.

Actions name the state they end in: Primitive("rotate", "triangle", (180,)) turns the apex to point left
(by the smallest turn; exactly half a turn goes counter-clockwise), Primitive("scale", "triangle", (36.0,))
makes it 36 px tall, "recolour" and "move" name a colour and an anchor. So the simulated video model,
which reads an instruction against the frame it starts from, finishes the same action when a clip is
regenerated from a mid-action frame. Relative phrasings are still read (see the language section).

Conventions that make `perceive` invert `render` exactly:
* an object's (x, y) is the centroid of its filled area, in pixel-index coordinates (pixel (r, c) has
  its centre at x=c, y=r);
* `size` is the triangle's height (apex to base), the square's side, the circle's diameter, and each is
  recovered from the filled area (triangle area = 0.3 * height**2);
* the apex direction is the axis of the triangle's second moments, signed by the skew of its mass (the
  apex side is the thin tail), which stays reliable through blur and compression.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage import draw, measure

from .base import (
    BACKGROUND,
    PALETTE,
    RGB,
    Family,
    GrammarError,
    Obj,
    Parsed,
    PerceptionError,
    Primitive,
    Scene,
    SimTask,
    angle_diff,
    check_difficulty,
    nearest_palette_name,
)

CANVAS: tuple[int, int] = (128, 128)

# Anchor centres: 37 px apart and 26.5 px from the edges, so that the largest triangle (height 36, apex
# 24 px from its centroid) fits at a corner in any orientation and still clears a distractor (radius
# <= 9) at the neighbouring anchor by a few pixels, even after H.264 blurs the edges. Half-integer
# centres make squares and circles of even size rasterise exactly (their edges fall between pixels).
_LOW, _MID, _HIGH = 26.5, 63.5, 100.5
ANCHORS: dict[str, tuple[float, float]] = {
    "top left": (_LOW, _LOW),
    "top": (_MID, _LOW),
    "top right": (_HIGH, _LOW),
    "left": (_LOW, _MID),
    "center": (_MID, _MID),
    "right": (_HIGH, _MID),
    "bottom left": (_LOW, _HIGH),
    "bottom": (_MID, _HIGH),
    "bottom right": (_HIGH, _HIGH),
}
LAYOUT = (CANVAS, tuple((name, x, y) for name, (x, y) in ANCHORS.items()))

# Colours a shape may take: the palette without the neutral ones (background, walls, grid lines).
COLORS: tuple[str, ...] = tuple(n for n in PALETTE if n not in ("white", "black", "grey"))

# The relative steps a task prompt states ("scale it to 1.5 times its size", "rotate it 90 degrees
# clockwise"); actions themselves name absolute targets (a height in px, an apex direction).
SCALE_FACTORS: tuple[float, ...] = (0.5, 1.5, 2.0)
ROTATIONS: tuple[int, ...] = (90, -90, 180)
MIN_SIZE, MAX_SIZE = 16.0, 36.0
TRIANGLE_SIZES: tuple[float, ...] = (16.0, 18.0, 20.0, 24.0, 32.0, 36.0)  # each allows some scale step
# Every height a task's goal may ask for: the initial sizes and each allowed scaling of them.
GOAL_SIZES: tuple[float, ...] = tuple(sorted(
    set(TRIANGLE_SIZES) | {s * f for s in TRIANGLE_SIZES for f in SCALE_FACTORS if MIN_SIZE <= s * f <= MAX_SIZE}))
DISTRACTOR_SIZES: tuple[float, ...] = (14.0, 16.0, 18.0)
DISTRACTOR_KINDS: tuple[str, ...] = ("square", "circle")
KIND_ORDER: tuple[str, ...] = ("triangle",) + DISTRACTOR_KINDS
VERBS: tuple[str, ...] = ("recolour", "rotate", "scale", "move")  # also the order `solve` uses

TRIANGLE_WIDTH = 0.6  # base width / height
TRIANGLE_AREA = 0.5 * TRIANGLE_WIDTH  # area / height**2

# Goal tolerances, wider than perception's errors (1 px, 2 px, 6 degrees, ~15 RGB after H.264) and far
# narrower than any single transformation, so a clip stopped part-way never counts as done.
POS_TOL = 3.0
ANGLE_TOL = 8.0
COLOR_MATCH = 35.0
COLOR_SNAP = 15.0  # perceived colours this close to a palette entry are reported as that entry


def size_tolerance(size: float) -> float:
    return max(2.5, 0.08 * size)


@dataclass(frozen=True)
class ShapesGoal:
    """The triangle's required final state, and the distractors' initial states they must keep."""

    color: str
    size: float
    anchor: str
    angle: float  # normalised to [0, 360)
    distractors: tuple[Obj, ...] = ()


# ----- geometry -----------------------------------------------------------------------------------------

def _unit(angle: float) -> tuple[float, float]:
    """Screen direction of `angle` in image coordinates (y down)."""
    rad = math.radians(angle)
    return math.cos(rad), -math.sin(rad)


def triangle_vertices(obj: Obj) -> np.ndarray:
    """(3, 2) array of (x, y): apex, then the two base corners; the centroid is (obj.x, obj.y)."""
    ux, uy = _unit(obj.angle)
    vx, vy = -uy, ux
    h, half = obj.size, obj.size * TRIANGLE_WIDTH / 2
    apex = (obj.x + ux * 2 * h / 3, obj.y + uy * 2 * h / 3)
    base = (obj.x - ux * h / 3, obj.y - uy * h / 3)
    return np.array([apex, (base[0] + vx * half, base[1] + vy * half), (base[0] - vx * half, base[1] - vy * half)])


def extent(obj: Obj) -> float:
    """Largest distance from an object's centre to its edge (what must clear its neighbours)."""
    if obj.shape == "triangle":
        return 2 * obj.size / 3
    return obj.size / 2


def nearest_anchor(x: float, y: float) -> tuple[str, float]:
    name = min(ANCHORS, key=lambda n: math.hypot(ANCHORS[n][0] - x, ANCHORS[n][1] - y))
    return name, math.hypot(ANCHORS[name][0] - x, ANCHORS[name][1] - y)


def _segment_distance(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else min(1.0, max(0.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2))
    return math.hypot(p[0] - (ax + t * dx), p[1] - (ay + t * dy))


def _signed_turn(degrees: float) -> float:
    """An angle difference folded into (-180, 180]."""
    d = degrees % 360.0
    return d - 360.0 if d > 180.0 else d


def _color_distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))


# ----- language -----------------------------------------------------------------------------------------
#
# The actions the planner writes are absolute: "turn it to point left", "make it 36 px tall", "move it to
# the top left", "make it blue". Each names the state it ends in, so a clip regenerated from a mid-action
# frame with the same text finishes the same action instead of overshooting. Relative phrasings ("rotate
# it 90 degrees clockwise", "scale it to 1.5 times its size", "double its size") are still understood:
# `parse` turns them into absolute actions by walking through the actions in order from the object's
# state in the scene it is given. Task prompts are written in the relative phrasing (a task is a list of
# changes); `goal_from` resolves them against the input image in the same way.
#
# Internally a relative clause is first read as an intent with a private verb ("turn" by degrees,
# "rescale" by a factor) and then resolved; only "recolour", "rotate", "scale" and "move" leave the module.

def _number(value: float) -> str:
    """Shortest text that reads back as exactly `value`."""
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))


def _angle_arg(angle: float) -> int | float:
    """A rotation target normalised to [0, 360): an int when whole (multiples of 90 are the usual ones)."""
    a = float(angle) % 360.0
    whole = round(a)
    if abs(a - whole) < 1e-6:
        return int(whole) % 360
    return round(a, 2)


def _size_arg(size: float) -> float:
    return round(float(size), 2)


# Apex directions by name (45 degree steps), in the family's convention: 0 = right, 90 = up.
DIRECTIONS: dict[str, int] = {
    "right": 0, "up-right": 45, "up": 90, "up-left": 135,
    "left": 180, "down-left": 225, "down": 270, "down-right": 315,
}

_COLOR_RE = "|".join(COLORS)
_OBJ_RE = rf"(?:the\s+(?:(?:{_COLOR_RE})\s+)?(?:triangle|square|circle)|it)"  # the object is read by _OBJ_WORD
_NUM_RE = r"(?P<num>[-+]?\d+(?:\.\d+)?)"
_ANCHOR_RE = r"(?P<anchor>(?:top|bottom|upper|lower)\s+(?:left|right)|top|bottom|left|right|center|centre|middle)"
_WAY_RE = r"(?:straight\s+)?(?P<way>(?:up|down)\s+(?:left|right)|(?:up|down)(?:wards?)?|left|right)"
_TOWARD_RE = (rf"(?:(?:(?:to|towards?)\s+the\s+|towards?\s+)?{_WAY_RE}"
              rf"|(?:at\s+|to\s+)?{_NUM_RE}\s*(?:degrees?|deg|°))")
_SIZE_WORDS = r"(?:\s+(?:tall|high|wide|across|big|large|in\s+(?:height|size|diameter)))?"
_CLAUSES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (verb, re.compile(pattern))
    for verb, pattern in (
        ("recolour", rf"^(?:make|paint|colou?r|recolou?r|turn|change|dye)\s+{_OBJ_RE}\s+(?:to\s+|into\s+)?(?P<color>{_COLOR_RE})$"),
        ("recolour", rf"^change\s+(?:the\s+)?colou?r\s+of\s+{_OBJ_RE}\s+to\s+(?P<color>{_COLOR_RE})$"),
        # absolute: the direction the apex ends up pointing
        ("rotate", rf"^(?:rotate|turn|spin|make|set)\s+{_OBJ_RE}\s+(?:so\s+(?:that\s+)?it\s+points?|until\s+it\s+points?"
                   rf"|to\s+point|to\s+face|point|face)\s+{_TOWARD_RE}$"),
        ("rotate", rf"^(?:point|aim|orient)\s+{_OBJ_RE}\s+{_TOWARD_RE}$"),
        # absolute: the height (side, diameter) it ends up with
        ("scale", rf"^(?:make|scale|resize|grow|shrink|enlarge|set)\s+{_OBJ_RE}\s+(?:(?:up|down)\s+)?(?:to\s+)?{_NUM_RE}\s*"
                  rf"(?:px|pixels?){_SIZE_WORDS}$"),
        # relative: a turn by some degrees, a change by some factor
        ("turn", rf"^(?:rotate|turn|spin)\s+{_OBJ_RE}\s+(?:by\s+)?{_NUM_RE}\s*(?:degrees?|deg|°)?"
                 r"(?:\s+(?P<dir>clockwise|counter\s?clockwise|anti\s?clockwise))?$"),
        ("turn", rf"^(?:rotate|turn|spin)\s+{_OBJ_RE}\s+(?P<dir>clockwise|counter\s?clockwise|anti\s?clockwise)"
                 rf"\s+(?:by\s+)?{_NUM_RE}\s*(?:degrees?|deg|°)?$"),
        ("rescale", rf"^(?:scale|resize|grow|shrink|enlarge|make)\s+{_OBJ_RE}\s+(?:(?:up|down)\s+)?(?:to\s+|by\s+)?{_NUM_RE}\s*"
                    r"(?:times|x|×)?(?:\s+(?:its|the)\s+(?:original\s+|current\s+)?size|\s+as\s+(?:big|large)|\s+bigger|\s+larger)?$"),
        ("double", rf"^(?P<how>double|halve)\s+(?:the\s+size\s+of\s+{_OBJ_RE}|{_OBJ_RE}(?:'s)?\s+size|its\s+size|{_OBJ_RE})$"),
        ("move", rf"^(?:move|slide|put|place|shift|bring)\s+{_OBJ_RE}\s+(?:to|into|onto|towards?)\s+(?:the\s+)?{_ANCHOR_RE}"
                 r"(?:\s+(?:anchor|corner|position|side|edge|spot))?$"),
    )
)
_RELATIVE_VERBS = ("turn", "rescale")
_OBJ_WORD = re.compile(r"\b(triangle|square|circle)\b")
_NO_OP_RE = re.compile(r"^(?:keep|leave)\b.*\b(?:unchanged|as\s+(?:it\s+is|they\s+are)|alone|untouched|in\s+place)$")
_TASK_RE = re.compile(r"^\s*transform\s+(?:the\s+(?P<obj>triangle|square|circle)\s+)?step[\s-]+by[\s-]+step\s*[:,.-]?\s*")
_SPLIT_RE = re.compile(r"\s*(?:,\s*(?:and\s+)?then\b|,\s*and\b|\band\s+then\b|\bthen\b|,|\band\b)\s*")


def _normalise(text: str) -> str:
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text.lower().replace("’", "'"))
    return re.sub(r"\s+", " ", text).strip()


def _anchor_name(word: str) -> str:
    word = word.replace("upper", "top").replace("lower", "bottom")
    return "center" if word in ("centre", "middle") else word


def _way_angle(word: str) -> int:
    word = re.sub(r"wards?$", "", word.strip())
    return DIRECTIONS[re.sub(r"\s+", "-", word)]


def _read_clauses(text: str, default_obj: str, scene: Scene | None) -> tuple[list[Primitive], list[str]]:
    """Absolute actions in a plain imperative list, and the clauses that could not be read.

    Relative clauses are resolved against each object's state in `scene` (snapped onto the grid when
    within tolerance of it), advanced by the actions read before them; a relative clause about an object
    the scene does not show cannot be pinned down and is left unparsed.
    """
    actions: list[Primitive] = []
    unparsed: list[str] = []
    states: dict[str, Obj | None] = {}
    current = default_obj  # what "it" refers to
    for sentence in re.split(r"(?:[;!\n]|\.(?!\d))+", _normalise(text)):
        sentence = sentence.strip(" ,")
        if not sentence or _NO_OP_RE.match(sentence):
            continue
        for clause in _SPLIT_RE.split(sentence):
            clause = clause.strip(" ,")
            if not clause:
                continue
            action = None
            for verb, pattern in _CLAUSES:
                match = pattern.match(clause)
                if match is None:
                    continue
                named = _OBJ_WORD.search(clause)
                current = named.group(1) if named else current
                action = _clause_action(verb, current, match)
                if action is not None:
                    break
            if action is not None:
                if action.obj not in states:
                    seen = scene.named(action.obj) if scene is not None else []
                    states[action.obj] = _on_grid(seen[0]) if seen else None
                state = states[action.obj]
                if action.verb in _RELATIVE_VERBS:
                    action = None if state is None else _resolve(action, state)
                if action is not None and state is not None:
                    states[action.obj] = _apply_obj(state, action)
            if action is None:
                unparsed.append(clause)
            else:
                actions.append(action)
    return actions, unparsed


def _clause_action(verb: str, obj: str, match: re.Match[str]) -> Primitive | None:
    """The action (or, for a relative clause, the intent) a matched clause states."""
    groups = match.groupdict()
    if verb == "recolour":
        return Primitive("recolour", obj, (groups["color"],))
    if verb == "rotate":
        if groups.get("way"):
            return Primitive("rotate", obj, (_way_angle(groups["way"]),))
        return Primitive("rotate", obj, (_angle_arg(float(groups["num"])),))
    if verb == "scale":
        size = float(groups["num"])
        return Primitive("scale", obj, (_size_arg(size),)) if size > 0 else None
    if verb == "turn":
        degrees = float(groups["num"])
        if (groups.get("dir") or "").replace(" ", "") == "clockwise":
            degrees = -degrees
        if degrees == 0:
            return None
        return Primitive("turn", obj, (int(degrees) if degrees.is_integer() else degrees,))
    if verb == "rescale":
        factor = float(groups["num"])
        return Primitive("rescale", obj, (factor,)) if factor > 0 else None
    if verb == "double":
        return Primitive("rescale", obj, (2.0 if groups["how"] == "double" else 0.5,))
    return Primitive("move", obj, (_anchor_name(groups["anchor"]),))


def _resolve(intent: Primitive, state: Obj) -> Primitive:
    """The absolute action a relative intent means for an object in `state`."""
    if intent.verb not in _RELATIVE_VERBS:
        return intent
    amount = float(intent.args[0])
    if intent.verb == "turn":
        return Primitive("rotate", intent.obj, (_angle_arg(state.angle + amount),))
    if intent.verb == "rescale":
        return Primitive("scale", intent.obj, (_size_arg(state.size * amount),))
    return intent


def _direction_phrase(angle: float) -> str:
    """How an absolute apex direction is written: "point left", "point up-right", "point at 37 degrees"."""
    target = _angle_arg(angle)
    for name, degrees in DIRECTIONS.items():
        if target == degrees:
            return f"point {name}"
    return f"point at {_number(float(target))} degrees"


_SIZE_UNIT = {"triangle": "tall", "square": "wide", "circle": "across"}


def _clause(action: Primitive, ref: str) -> str:
    """One imperative clause; `ref` is "the triangle" or "it"."""
    arg = action.args[0] if action.args else None
    if action.verb == "recolour":
        return f"make {ref} {arg}"
    if action.verb == "rotate":
        return f"turn {ref} to {_direction_phrase(float(arg))}"
    if action.verb == "scale":
        return f"make {ref} {_number(_size_arg(float(arg)))} px {_SIZE_UNIT.get(action.obj, 'tall')}"
    if action.verb == "move":
        return f"move {ref} to the {arg}"
    # The relative intents, as task prompts state them.
    if action.verb == "turn":
        degrees = float(arg)
        if degrees == 180:
            return f"rotate {ref} 180 degrees"
        way = "counter-clockwise" if degrees > 0 else "clockwise"
        return f"rotate {ref} {_number(abs(degrees))} degrees {way}"
    if action.verb == "rescale":
        return f"scale {ref} to {_number(float(arg))} times its size"
    raise GrammarError(f"the shapes family has no verb {action.verb!r}")


def _clauses(actions: Sequence[Primitive], subject: str | None) -> list[str]:
    """Clauses naming each object on first mention (after `subject`) and "it" after that."""
    out = []
    for action in actions:
        out.append(_clause(action, "it" if action.obj == subject else f"the {action.obj}"))
        subject = action.obj
    return out


def _direction_words(angle: float) -> str:
    names = ["right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right"]
    index = int(round((angle % 360.0) / 45.0)) % 8
    if angle_diff(angle, index * 45.0) <= 5.0:
        return f"pointing {names[index]}"
    return f"pointing at {round(angle % 360.0)} degrees"


# ----- the family ---------------------------------------------------------------------------------------

class ShapesFamily(Family):
    name = "shapes"
    description = "Transform a triangle step by step (recolour, rotate, scale, move); other shapes stay put."

    # ----- tasks --------------------------------------------------------------------------------------
    def generate(self, seed: int, difficulty: str) -> SimTask:
        check_difficulty(difficulty)
        rng = np.random.default_rng(zlib.crc32(f"{seed}:{difficulty}:shapes".encode()))
        while True:  # rejection sampling; almost every draw is accepted
            task = self._draw(rng, seed, difficulty)
            if task is not None:
                return task

    def _draw(self, rng: np.random.Generator, seed: int, difficulty: str) -> SimTask | None:
        anchor = str(rng.choice(list(ANCHORS)))
        x, y = ANCHORS[anchor]
        triangle = Obj("triangle", "triangle", PALETTE[str(rng.choice(COLORS))], x, y,
                       float(rng.choice(TRIANGLE_SIZES)), float(rng.choice([0, 90, 180, 270])))
        if difficulty == "easy":
            kinds = [str(k) for k in rng.permutation(VERBS)[:2]]
        else:
            kinds = list(VERBS)
            if rng.random() < 0.5:  # a fifth step repeats a kind; a second scale could not net to a factor
                kinds.append(str(rng.choice(["recolour", "rotate", "move"])))
            kinds = [str(k) for k in rng.permutation(kinds)]
            if any(a == b for a, b in zip(kinds, kinds[1:])):
                return None
        drawn = self._draw_actions(rng, triangle, kinds)
        if drawn is None:
            return None
        steps, actions = drawn
        scene = Scene(self.name, LAYOUT, (triangle,), CANVAS)
        distractors: list[Obj] = []
        if difficulty == "hard":
            distractors = self._place_distractors(rng, scene, actions, int(rng.integers(1, 3)))
            if not distractors:
                return None
        initial = scene.with_objects((triangle, *distractors))
        prompt = self._prompt(steps, distractors)
        goal = self._goal_after(initial, actions)
        if len(self.solve(initial, goal)) != len(set(kinds)):
            return None  # some step cancelled another; every requested kind must show in the end state
        return SimTask(self.name, difficulty, seed, prompt, initial, goal,
                       meta={"actions": tuple(actions), "anchor": anchor})

    def _draw_actions(self, rng: np.random.Generator, triangle: Obj,
                      kinds: list[str]) -> tuple[list[Primitive], list[Primitive]] | None:
        """Each step, visibly changing the triangle and keeping it on the canvas: as the prompt states it
        (turns and scalings relative) and as the absolute action it amounts to from the initial triangle."""
        state = triangle
        steps, actions = [], []
        for kind in kinds:
            if kind == "recolour":
                options = [c for c in COLORS if PALETTE[c] != state.color]
                step = Primitive("recolour", "triangle", (str(rng.choice(options)),))
            elif kind == "rotate":
                step = Primitive("turn", "triangle", (int(rng.choice(ROTATIONS)),))
            elif kind == "scale":
                options = [f for f in SCALE_FACTORS if MIN_SIZE <= state.size * f <= MAX_SIZE]
                if not options:
                    return None
                step = Primitive("rescale", "triangle", (float(rng.choice(options)),))
            else:
                here, _ = nearest_anchor(state.x, state.y)
                step = Primitive("move", "triangle", (str(rng.choice([a for a in ANCHORS if a != here])),))
            action = _resolve(step, state)
            steps.append(step)
            actions.append(action)
            state = _apply_obj(state, action)
        return steps, actions

    def _place_distractors(self, rng: np.random.Generator, scene: Scene, actions: list[Primitive],
                           count: int) -> list[Obj]:
        """Distractors at anchors the triangle never visits and never slides past."""
        triangle = scene.objects[0]
        paths: list[tuple[tuple[float, float], tuple[float, float], float]] = []
        state = triangle
        for action in actions:
            after = _apply_obj(state, action)
            paths.append(((state.x, state.y), (after.x, after.y), max(extent(state), extent(after))))
            state = after
        radius = max(DISTRACTOR_SIZES) / 2
        free = [name for name, point in ANCHORS.items()
                if all(_segment_distance(point, a, b) >= reach + radius + 2.0 for a, b, reach in paths)]
        used = {PALETTE[str(a.args[0])] for a in actions if a.verb == "recolour"} | {triangle.color}
        colors = [c for c in COLORS if PALETTE[c] not in used]
        kinds = [str(k) for k in rng.permutation(DISTRACTOR_KINDS)[:count]]
        if len(free) < len(kinds) or len(colors) < len(kinds):
            return []
        spots = [str(s) for s in rng.choice(free, size=len(kinds), replace=False)]
        tints = [str(c) for c in rng.choice(colors, size=len(kinds), replace=False)]
        objs = [Obj(kind, kind, PALETTE[tint], *ANCHORS[spot], float(rng.choice(DISTRACTOR_SIZES)))
                for kind, spot, tint in zip(kinds, spots, tints)]
        return sorted(objs, key=lambda o: KIND_ORDER.index(o.shape))

    def _prompt(self, steps: Sequence[Primitive], distractors: Sequence[Obj]) -> str:
        """The task as a list of changes, turns and scalings relative ("rotate it 90 degrees clockwise")."""
        prompt = "Transform the triangle step by step: " + ", then ".join(_clauses(steps, "triangle")) + "."
        if distractors:
            prompt += " Keep the " + " and the ".join(o.name for o in distractors) + " unchanged."
        return prompt

    def _goal_after(self, initial: Scene, actions: Sequence[Primitive]) -> ShapesGoal:
        triangle = initial.find("triangle")
        if triangle is None:
            raise GrammarError("the scene shows no single triangle to transform")
        anchor, _ = nearest_anchor(triangle.x, triangle.y)
        for action in actions:
            if action.obj != "triangle":
                raise GrammarError(f"the task may only transform the triangle, not the {action.obj}")
            triangle = _apply_obj(triangle, action)
            if action.verb == "move":
                anchor = str(action.args[0])
        distractors = tuple(o for o in initial.objects if o.name != "triangle")
        return ShapesGoal(nearest_palette_name(triangle.color), triangle.size, anchor, triangle.angle % 360.0,
                          distractors)

    def goal_from(self, prompt: str, initial: Scene) -> ShapesGoal:
        match = _TASK_RE.match(_normalise(prompt))
        body = _normalise(prompt)[match.end():] if match else prompt
        subject = (match.group("obj") if match else None) or "triangle"
        snapped = initial.with_objects([_on_grid(o) for o in initial.objects])
        actions, unparsed = _read_clauses(body, subject, snapped)
        if unparsed or not actions:
            raise GrammarError(f"cannot read a shapes task from {prompt!r}" +
                               (f" (unreadable: {unparsed[0]!r})" if unparsed else ""))
        return self._goal_after(snapped, actions)

    # ----- pixels -------------------------------------------------------------------------------------
    def render(self, scene: Scene) -> np.ndarray:
        height, width = scene.size
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:] = BACKGROUND
        for obj in scene.objects:
            if obj.shape == "triangle":
                vertices = triangle_vertices(obj)
                rr, cc = draw.polygon(vertices[:, 1], vertices[:, 0], shape=(height, width))
            elif obj.shape == "square":
                half = obj.size / 2
                rr, cc = draw.polygon([obj.y - half, obj.y - half, obj.y + half, obj.y + half],
                                      [obj.x - half, obj.x + half, obj.x + half, obj.x - half], shape=(height, width))
            elif obj.shape == "circle":
                rr, cc = draw.disk((obj.y, obj.x), obj.size / 2, shape=(height, width))
            else:
                raise ValueError(f"the shapes family cannot draw a {obj.shape!r}")
            image[rr, cc] = obj.color
        return image

    def perceive(self, image: np.ndarray) -> Scene:
        return perceive_shapes(image, self.name)

    def success(self, frames: Sequence[np.ndarray], task: SimTask) -> bool:
        return self.score(frames, task) == 1.0

    def score(self, frames: Sequence[np.ndarray], task: SimTask) -> float:
        """The share of the triangle's attributes (colour, apex direction, height, place) that the task
        changes and the final frame shows as asked; an attribute the task leaves alone but the video
        changed counts as one more condition not met. 0 when the scene is broken: not exactly one
        triangle, or a shape that must stay unchanged changed, vanished or was doubled, or a new one."""
        if len(frames) == 0:
            return 0.0
        try:
            scene = self.perceive(frames[-1])
        except PerceptionError:
            return 0.0
        goal: ShapesGoal = task.goal
        triangles = scene.named("triangle")
        if len(triangles) != 1:
            return 0.0
        # Everything but the triangle's own attributes is a hard rule: the other shapes exactly as they were.
        for want in goal.distractors:
            seen = scene.named(want.name)
            if len(seen) != 1 or _distractor_changes(seen[0], want):
                return 0.0
        expected = {"triangle"} | {o.name for o in goal.distractors}
        if any(o.name not in expected for o in scene.objects):
            return 0.0
        start = task.initial.find("triangle")
        asked = set(_unmet(start, goal)) if start is not None else set(VERBS)
        unmet = set(_unmet(triangles[0], goal))
        conditions = asked | unmet
        if not conditions:
            return 1.0
        return len(conditions - unmet) / len(conditions)

    # ----- language -----------------------------------------------------------------------------------
    def describe(self, actions: Sequence[Primitive]) -> str:
        if not actions:
            return "Leave the shapes as they are."
        text = ", then ".join(_clauses(actions, None))
        return text[0].upper() + text[1:] + "."

    def describe_scene(self, scene: Scene) -> str:
        if not scene.objects:
            return "An empty canvas."
        parts = []
        for obj in scene.objects:
            color = nearest_palette_name(obj.color)
            article = "an" if color[0] in "aeiou" else "a"
            anchor, off = nearest_anchor(obj.x, obj.y)
            where = f"at the {anchor}" if off <= POS_TOL else f"near the {anchor}"
            if obj.shape == "triangle":
                parts.append(f"{article} {color} {obj.shape} {where} {_direction_words(obj.angle)}, about {round(obj.size)} px tall")
            else:
                unit = "wide" if obj.shape == "square" else "across"
                parts.append(f"{article} {color} {obj.shape} {where}, about {round(obj.size)} px {unit}")
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    def parse(self, text: str, scene: Scene) -> Parsed:
        if _TASK_RE.match(_normalise(text)):
            return Parsed(greedy=True)
        actions, unparsed = _read_clauses(text, "triangle", scene)
        return Parsed(actions=tuple(actions), unparsed=tuple(unparsed))

    # ----- dynamics and planning ----------------------------------------------------------------------
    def apply(self, scene: Scene, action: Primitive) -> Scene:
        if not scene.named(action.obj):
            return scene
        return scene.with_objects(tuple(_apply_obj(o, action) if o.name == action.obj else o for o in scene.objects))

    def solve(self, scene: Scene, goal: ShapesGoal) -> list[Primitive]:
        """Absolute steps for the (first) triangle in VERBS order; [] when satisfied or when there is no
        triangle. Each names the goal's value (colour, apex direction, height, anchor), so the same steps
        also finish the job from a state a wrong or interrupted step left off-grid.
        """
        triangles = scene.named("triangle")
        if not triangles:
            return []
        target = {"recolour": goal.color, "rotate": _angle_arg(goal.angle), "scale": _size_arg(goal.size),
                  "move": goal.anchor}
        return [Primitive(verb, "triangle", (target[verb],)) for verb in _unmet(triangles[0], goal)]

    def distance(self, scene: Scene, goal: ShapesGoal) -> float:
        triangles = scene.named("triangle")
        penalty = 0.0
        if not triangles:
            penalty += 5.0  # a vanished triangle is worse than any number of wrong attributes
        else:
            penalty += min(len(self.solve(scene.with_objects((t,)), goal)) for t in triangles)
            penalty += 2.0 * (len(triangles) - 1)
        for want in goal.distractors:
            seen = scene.named(want.name)
            if not seen:
                penalty += 2.0
                continue
            penalty += min(_distractor_changes(o, want) for o in seen) + 2.0 * (len(seen) - 1)
        expected = {"triangle"} | {o.name for o in goal.distractors}
        penalty += 2.0 * sum(1 for o in scene.objects if o.name not in expected)
        return penalty

    def greedy(self, scene: Scene, goal: ShapesGoal) -> list[Primitive]:
        return self.solve(scene, goal)

    # ----- failure modes ------------------------------------------------------------------------------
    def wrong_direction(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        target = scene.find(action.obj) or (scene.named(action.obj) or [None])[0]
        if target is None or not action.args:
            return None
        arg = action.args[0]
        if action.verb == "rotate":
            return self._wrong_turn(target, action, rng)
        if action.verb == "scale":
            return self._wrong_size(target, action)
        if action.verb == "recolour":
            options = [c for c in COLORS if c != arg and _color_distance(PALETTE[c], target.color) > COLOR_MATCH]
            return Primitive("recolour", action.obj, (str(rng.choice(options)),)) if options else None
        if action.verb == "move":
            others = [o for o in scene.objects if o.name != action.obj]
            here = (target.x, target.y)
            options = [a for a in ANCHORS if a != arg and math.hypot(ANCHORS[a][0] - here[0], ANCHORS[a][1] - here[1]) > POS_TOL
                       and all(math.hypot(ANCHORS[a][0] - o.x, ANCHORS[a][1] - o.y) > POS_TOL for o in others)]
            clear = [a for a in options
                     if all(_segment_distance((o.x, o.y), here, ANCHORS[a]) >= extent(target) + extent(o) + 2 for o in others)]
            pool = clear or options
            return Primitive("move", action.obj, (str(rng.choice(pool)),)) if pool else None
        return None

    @staticmethod
    def _wrong_turn(target: Obj, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        """Turned the other way: to the mirror of the intended direction about the current one (a quarter
        turn clockwise instead of counter-clockwise); where that is no different (a half turn, no turn),
        to a random quarter direction that is neither the intended nor the current one."""
        want = float(action.args[0]) % 360.0
        here = target.angle % 360.0

        def wrong(angle: float) -> bool:
            return angle_diff(angle, want) > 2 * ANGLE_TOL and angle_diff(angle, here) > 2 * ANGLE_TOL

        mirror = (here - _signed_turn(want - here)) % 360.0
        if wrong(mirror):
            return Primitive("rotate", action.obj, (_angle_arg(mirror),))
        options = [a for a in (0, 90, 180, 270) if wrong(a)] or [a for a in (0, 90, 180, 270)
                                                                  if angle_diff(a, want) > 2 * ANGLE_TOL]
        return Primitive("rotate", action.obj, (int(rng.choice(options)),)) if options else None

    @staticmethod
    def _wrong_size(target: Obj, action: Primitive) -> Primitive | None:
        """Scaled the other way: by the inverse of the intended factor, kept within the sizes a triangle
        may have; where that would not visibly differ from the intended or the current size, the nearest
        allowed size that does."""
        want, here = float(action.args[0]), target.size
        if want <= 0 or here <= 0:
            return None
        inverse = min(MAX_SIZE, max(MIN_SIZE, here * here / want))
        for size in [inverse] + sorted(GOAL_SIZES, key=lambda s: (abs(s - inverse), s)):
            if abs(size - want) > size_tolerance(want) and abs(size - here) > size_tolerance(here):
                return Primitive("scale", action.obj, (_size_arg(size),))
        return None

    def wrong_object(self, scene: Scene, action: Primitive, rng: np.random.Generator) -> Primitive | None:
        """The same action on another object it would visibly change (a square or circle cannot turn)."""
        others = sorted({o.name for o in scene.objects if o.name != action.obj})
        if action.verb == "rotate":
            others = [n for n in others if any(o.shape == "triangle" for o in scene.named(n))]
        if not others:
            return None
        return Primitive(action.verb, str(rng.choice(others)), action.args)


def _unmet(triangle: Obj, goal: ShapesGoal) -> list[str]:
    """The verbs (in VERBS order) whose attribute of `triangle` is not yet the goal's, within tolerance."""
    gx, gy = ANCHORS[goal.anchor]
    off = {
        "recolour": _color_distance(triangle.color, PALETTE[goal.color]) > COLOR_MATCH,
        "rotate": angle_diff(goal.angle, triangle.angle) > ANGLE_TOL,
        "scale": abs(goal.size - triangle.size) > size_tolerance(goal.size),
        "move": math.hypot(triangle.x - gx, triangle.y - gy) > POS_TOL,
    }
    return [verb for verb in VERBS if off[verb]]


def _apply_obj(obj: Obj, action: Primitive) -> Obj:
    arg = action.args[0] if action.args else None
    if action.verb == "recolour":
        return obj.moved(color=PALETTE[str(arg)])
    if action.verb == "scale":
        return obj.moved(size=float(arg))
    if action.verb == "move":
        x, y = ANCHORS[str(arg)]
        return obj.moved(x=x, y=y)
    if action.verb == "rotate":
        # To the target direction by the smallest turn, counter-clockwise for exactly half a turn. The
        # angle stays unnormalised on purpose, so that interpolation turns that way.
        return obj.moved(angle=obj.angle + _signed_turn(float(arg) - obj.angle)) if obj.shape == "triangle" else obj
    return obj


def _on_grid(obj: Obj) -> Obj:
    """A perceived object moved onto the generator's grid (anchor, allowed size, quarter turn, palette
    colour) where it is within tolerance of it, so that a goal read from a perceived input image is
    the very goal of the task rather than one off by perception noise."""
    anchor, off = nearest_anchor(obj.x, obj.y)
    if off <= POS_TOL:
        obj = obj.moved(x=ANCHORS[anchor][0], y=ANCHORS[anchor][1])
    sizes = TRIANGLE_SIZES if obj.shape == "triangle" else DISTRACTOR_SIZES
    size = min(sizes, key=lambda s: abs(s - obj.size))
    if abs(size - obj.size) <= size_tolerance(size):
        obj = obj.moved(size=size)
    quarter = (round(obj.angle / 90.0) * 90.0) % 360.0 if obj.shape == "triangle" else 0.0
    if angle_diff(quarter, obj.angle) <= ANGLE_TOL:
        obj = obj.moved(angle=quarter)
    name = nearest_palette_name(obj.color)
    if _color_distance(obj.color, PALETTE[name]) <= COLOR_MATCH:
        obj = obj.moved(color=PALETTE[name])
    return obj


def _distractor_changes(seen: Obj, want: Obj) -> int:
    return int(_color_distance(seen.color, want.color) > COLOR_MATCH) + \
        int(abs(seen.size - want.size) > size_tolerance(want.size)) + \
        int(math.hypot(seen.x - want.x, seen.y - want.y) > POS_TOL)


# ----- perception ---------------------------------------------------------------------------------------

_FOREGROUND = 40.0  # RGB distance from the background that marks a pixel as (part of) a shape
_MIN_PIXELS = 8  # smaller specks are compression noise
_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601 weights, as H.264's yuv420p uses


@dataclass
class _Blob:
    kind: str | None  # None: not a shape of this family
    area: float
    obj: Obj | None = None


def perceive_shapes(image: np.ndarray, family: str = "shapes") -> Scene:
    """Read a shapes scene from pixels (see module docstring for the conventions it inverts)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[:2] != CANVAS:
        raise PerceptionError(f"a shapes frame is {CANVAS[0]}x{CANVAS[1]} RGB, not {img.shape}")
    pixels = img.astype(np.float64)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    if background.min() < 170:
        raise PerceptionError("the background is not white: not a shapes scene")
    dist = np.sqrt(((pixels - background) ** 2).sum(axis=-1))
    labels = measure.label(dist > _FOREGROUND, connectivity=2)
    blobs = [_read_blob(pixels, dist, labels, region, background)
             for region in measure.regionprops(labels) if region.area >= _MIN_PIXELS]
    shapes = [b for b in blobs if b.obj is not None]
    junk = sum(b.area for b in blobs if b.obj is None)
    if not shapes:
        raise PerceptionError("no shape found: blank or not a shapes scene")
    if junk > sum(b.area for b in shapes) or len(blobs) > 12:
        raise PerceptionError("the image is mostly not made of shapes (noise or another kind of scene)")
    objects = sorted((b.obj for b in shapes), key=lambda o: (KIND_ORDER.index(o.shape), o.y, o.x))
    return Scene(family, LAYOUT, tuple(objects), CANVAS)


def _read_blob(pixels: np.ndarray, dist: np.ndarray, labels: np.ndarray, region, background: np.ndarray) -> _Blob:
    height, width = labels.shape
    r0, c0, r1, c1 = region.bbox
    r0, c0, r1, c1 = max(r0 - 2, 0), max(c0 - 2, 0), min(r1 + 2, height), min(c1 + 2, width)
    sub = labels[r0:r1, c0:c1]
    own = sub == region.label
    # The blurred rim just below the threshold still carries part of the shape's area.
    grown = ndimage.binary_dilation(own, iterations=2) & ((sub == 0) | own)
    sub_dist = dist[r0:r1, c0:c1]
    core = own & (sub_dist >= 0.8 * np.percentile(sub_dist[own], 90))
    color = np.median(pixels[r0:r1, c0:c1][core], axis=0)
    # Fraction of shape colour in each pixel: blur and compression spread it without changing its sum,
    # so the weighted area and centroid are those of the sharp shape. It is read from luma, which H.264
    # keeps at full resolution (chroma is halved, which squares off small yellow circles).
    luma = pixels[r0:r1, c0:c1] @ _LUMA
    contrast = float((background - color) @ _LUMA)
    if contrast >= 20.0:
        alpha = (float(background @ _LUMA) - luma) / contrast
    else:
        tint = color - background
        alpha = ((pixels[r0:r1, c0:c1] - background) @ tint) / float(tint @ tint)
    alpha = np.clip(alpha, 0.0, 1.0) * grown
    area = float(alpha.sum())
    rows, cols = np.mgrid[r0:r1, c0:c1]
    cy, cx = float((alpha * rows).sum() / area), float((alpha * cols).sum() / area)
    dy, dx = rows - cy, cols - cx
    solid = alpha >= 0.5
    if solid.sum() < 4:
        return _Blob(None, area)
    reach = float(np.sqrt(dx[solid] ** 2 + dy[solid] ** 2).max()) + 0.5
    ratio = area / reach ** 2
    cov = np.array([[(alpha * dx * dx).sum(), (alpha * dx * dy).sum()],
                    [(alpha * dx * dy).sum(), (alpha * dy * dy).sum()]]) / area
    evals, evecs = np.linalg.eigh(cov)
    elongation = float(evals[1] / max(evals[0], 1e-9))
    if area >= 40 and measure.regionprops(solid.astype(np.uint8))[0].solidity < 0.8:
        return _Blob(None, area)
    observed = tuple(int(round(float(v))) for v in color)
    name = nearest_palette_name(observed)
    if _color_distance(observed, PALETTE[name]) <= COLOR_SNAP:
        observed = PALETTE[name]
    rgb: RGB = observed  # type: ignore[assignment]
    # Elongation (ratio of the principal second moments) tells the kinds apart most robustly: about 3.7
    # for the triangle, 1 for squares and circles, whatever the blur. Area over squared reach (0.675,
    # 2, 3.14) then separates square from circle and rejects blobs of other shapes.
    if 2.0 <= elongation <= 8.0:
        if ratio > 1.6:
            return _Blob(None, area)
        axis = evecs[:, 1]
        along = dx * axis[0] + dy * axis[1]
        skew = float((alpha * along ** 3).sum() / area) / float(evals[1]) ** 1.5
        if abs(skew) < 0.25:
            return _Blob(None, area)
        if skew < 0:  # the thin tail of the mass points to the apex
            axis = -axis
        angle = math.degrees(math.atan2(-axis[1], axis[0])) % 360.0
        size = math.sqrt(area / TRIANGLE_AREA)
        return _Blob("triangle", area, Obj("triangle", "triangle", rgb, cx, cy, size, angle))
    if elongation > 1.6 or not 1.4 <= ratio <= 3.8:
        return _Blob(None, area)
    if ratio < 2.5:
        return _Blob("square", area, Obj("square", "square", rgb, cx, cy, math.sqrt(area)))
    return _Blob("circle", area, Obj("circle", "circle", rgb, cx, cy, 2 * math.sqrt(area / math.pi)))

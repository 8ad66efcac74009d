"""The simulated vision-language model: plans with the family's solver, verifies clips against the path
an instruction should trace, routes failures and picks the best of k clips.

It reads scenes from pixels only (`family.perceive`) and actions from text only (`family.parse`); it never
sees a clip's ground-truth info or a task's hidden state. Its verdicts can carry the error profile of a
real verifier (accept- and reject-recall), drawn from the request's seed.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel
from skimage.registration import phase_cross_correlation

from collabvr.backends import (
    BackendError,
    BackendInfo,
    ClipView,
    Critique,
    CritiqueRequest,
    Plan,
    PlanRequest,
    RouteDecision,
    RouteRequest,
    Selection,
    SelectRequest,
    Usage,
    Verdict,
    VerifyRequest,
    VLMReply,
)
from collabvr.sim.base import Family, Obj, Primitive, Scene, object_delta
from collabvr.sim.corrections import CORRECTION_MARK, instruction_part

# Samples of the expected path per action: at least PATH_SAMPLES, and about one per unit of change
# (object_delta, about a pixel) for long motions, so that a correct frame always lies close to a sample.
PATH_SAMPLES = 24
MAX_PATH_SAMPLES = 400
# How far (object_delta units, about pixels) an object may be from where it should be: perception noise
# and small rendering differences are not errors.
TOLERANCE = 5.0
# First-frame drift shifts the whole first frame by a few pixels (base.drift_image: at most 3 per axis).
# A verifier would not call that a wrong action, so the first frame is aligned with the next sample first.
MAX_DRIFT_SHIFT = 4
# How far back along the expected path (share of the path) a clip may seem to go before it counts as
# moving the wrong way; covers perception noise.
BACKTRACK_MARGIN = 0.1
PROGRESS_NONE = 0.05
PROGRESS_COMPLETE = 0.95
# A last frame this close to the expected end (and nearer to it than to the start) counts as complete:
# perception reads sizes and positions a little off, which would otherwise leave a small action "partial".
END_SLACK = 2.0
# Pass@k: a clip that breaks the world's rules or loses track of the scene ranks below every clean clip.
SELECT_PENALTY = 1000.0

# The fixed-N ablation asks for exactly N_max steps; once the task is done the planner asks for a still clip.
HOLD_INSTRUCTION = "Keep the scene as it is: nothing moves and nothing changes."

_VAGUE_COMPLAINTS = (
    "The motion is hard to follow; the object seems to drift away from the instructed path.",
    "The clip is ambiguous: it is not clear that the instructed object moved as asked.",
    "Part of the motion looks inconsistent with the instruction.",
)


@dataclass(frozen=True)
class VerifierProfile:
    """How often a verifier gets it right: P(accept | clip correct) and P(reject | clip wrong).

    `persistence` is how much a verifier's errors repeat within a step. A real verifier judging retries of
    the same instruction on the same task sees nearly the same thing each time and tends to judge it the
    same way; published recalls are measured one clip at a time and say nothing about that. With
    persistence p, each judgement is, with probability p, the verifier's standing opinion of the step (a
    draw keyed on the task, the input image and the instruction without its corrections, so shared by
    every attempt) and otherwise a fresh draw; either way it is right with the profile's recall, so the
    per-clip recalls are unchanged. 0 gives independent errors.
    """

    name: str
    accept_recall: float
    reject_recall: float
    persistence: float = 0.0


VERIFIER_PROFILES: dict[str, VerifierProfile] = {
    # The paper's measurement of Gemini 2.5 Pro as a verifier, judging every attempt of a step alike
    # (persistence 1.0, where fitting it with the VGM profile `paper` to the paper's run statistics put it;
    # collabvr.sim.calibration): with independent errors the measured all-rejected share is out of reach.
    "gemini-2.5-pro-paper": VerifierProfile("gemini-2.5-pro-paper", 0.848, 0.656, persistence=1.0),
    # The measured recalls with independent errors (the simulator before calibration).
    "gemini-2.5-pro": VerifierProfile("gemini-2.5-pro", 0.848, 0.656),
    # The Qwen figures are from the same table of the paper.
    "qwen3.5-27b": VerifierProfile("qwen3.5-27b", 0.824, 0.448),
    "qwen3.5-9b": VerifierProfile("qwen3.5-9b", 0.776, 0.408),
    "perfect": VerifierProfile("perfect", 1.0, 1.0),
}
DEFAULT_VERIFIER = "gemini-2.5-pro-paper"


@dataclass(frozen=True)
class _Finding:
    """What the clip really shows, before the verifier's error profile is applied."""

    ok: bool
    progress: float  # path position reached (accept) or reached before the error (reject), 0..1
    error_type: str | None = None
    reason: str = ""
    suggestion: str = ""
    good_fraction: float | None = None


def _reply(value: BaseModel) -> VLMReply:
    return VLMReply(
        value=value,
        usage=Usage(calls=1, input_tokens=None, output_tokens=None, latency_s=0.0),
        raw=value.model_dump_json(),
    )


def _pairs(a: Scene, b: Scene) -> list[tuple[Obj, Obj]]:
    """Objects of `a` matched to objects of `b` with the same name (nearest first when names repeat)."""
    pairs = []
    for name in dict.fromkeys(a.names()):
        left = list(b.named(name))
        for obj in a.named(name):
            if not left:
                break
            match = min(left, key=lambda other: object_delta(obj, other))
            left.remove(match)
            pairs.append((obj, match))
    return pairs


def _path_distance(scene: Scene, point: Scene, moving: set[str]) -> tuple[float, str]:
    """How far the moving objects of `scene` are from a point of the expected path, and the worst one."""
    worst, culprit = 0.0, ""
    for expected, seen in _pairs(point, scene):
        if expected.name in moving:
            delta = object_delta(expected, seen)
            if delta > worst:
                worst, culprit = delta, expected.name
    return worst, culprit


def _features(obj: Obj) -> list[float]:
    return [obj.x, obj.y, obj.size, obj.angle, *obj.color]


def _deltas(obj: Obj, track: np.ndarray) -> np.ndarray:
    """`base.object_delta(obj, o)` for every row `o` of a track of `_features` rows, at once."""
    pos = np.hypot(track[:, 0] - obj.x, track[:, 1] - obj.y)
    size = np.abs(track[:, 2] - obj.size)
    turn = (track[:, 3] - obj.angle) % 360.0
    turn = np.minimum(turn, 360.0 - turn) / 10.0
    tint = np.linalg.norm(track[:, 4:7] - np.asarray(obj.color, dtype=float), axis=1) / 10.0
    return pos + size + turn + tint


class _Path:
    """The motion an instruction should produce, sampled densely: positions 0..1 and scenes.

    Distances to every sample are computed at once from per-object tracks; an object whose name is not
    unique falls back to pairing objects sample by sample.
    """

    def __init__(
        self, positions: list[float], scenes: list[Scene], moving: set[str], corners: list[tuple[float, Scene]]
    ) -> None:
        self.positions = np.asarray(positions)
        self.scenes = scenes
        self.moving = moving
        self.corners = corners  # (position, scene) where one action ends and the next begins
        self.tracks = {
            name: np.array([_features(point.named(name)[0]) for point in scenes], dtype=float)
            for name in sorted(moving)
            if all(len(point.named(name)) == 1 for point in scenes)
        }

    def distances(self, scene: Scene) -> tuple[np.ndarray, list[str]]:
        """Per sample: how far the moving objects of `scene` are from it, and which object is furthest."""
        names, rows = [], []
        for name, track in self.tracks.items():
            seen = scene.named(name)
            if len(seen) == 1:
                names.append(name)
                rows.append(_deltas(seen[0], track))
        slow = self.moving - set(names)
        if slow:
            pairs = [_path_distance(scene, point, slow) for point in self.scenes]
            names.append("")
            rows.append(np.array([d for d, _ in pairs]))
        if not rows:
            return np.zeros(len(self.scenes)), [""] * len(self.scenes)
        table = np.vstack(rows)
        worst = table.argmax(axis=0)
        culprits = [names[i] or "moving object" for i in worst]
        return table.max(axis=0), culprits

    def corners_between(self, start: float, end: float) -> list[Scene]:
        return [scene for position, scene in self.corners if start < position < end]


def _undrift(first: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`first` shifted back onto `reference` when it is displaced as a whole by a few pixels (drift).

    The shift is the peak of the phase correlation, which the static parts of a scene (background,
    walls, objects that do not move) dominate; larger shifts are motion, not drift, and are left alone.
    """
    first, reference = np.asarray(first), np.asarray(reference)
    if first.shape != reference.shape or first.ndim != 3:
        return first
    shift, _, _ = phase_cross_correlation(reference.mean(axis=-1), first.mean(axis=-1))
    dy, dx = (int(round(v)) for v in shift)
    if (dy, dx) == (0, 0) or max(abs(dy), abs(dx)) > MAX_DRIFT_SHIFT:
        return first
    return np.roll(first, shift=(dy, dx), axis=(0, 1))


def _sub_seed(seed: int, index: int) -> int:
    """A seed of its own for the index-th judgement within one call."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _correction(*sentences: str) -> str:
    return " ".join([CORRECTION_MARK] + [s for s in sentences if s])


class SimVLM:
    """A simulated VLM for one family (implements `collabvr.backends.VLM`)."""

    def __init__(self, family: Family, verifier: VerifierProfile | str = DEFAULT_VERIFIER) -> None:
        if isinstance(verifier, str):
            if verifier not in VERIFIER_PROFILES:
                raise ValueError(f"unknown verifier profile {verifier!r}; known: {', '.join(VERIFIER_PROFILES)}")
            verifier = VERIFIER_PROFILES[verifier]
        self.family = family
        self.verifier = verifier
        self.info = BackendInfo(name=f"sim-vlm/{verifier.name}", role="vlm", simulated=True)

    # ----- plan ---------------------------------------------------------------------------------
    def plan(self, request: PlanRequest) -> VLMReply[Plan]:
        """The next sub-action: the remaining solution spread evenly over the remaining step budget.

        A split re-plan takes one action at a time; the last allowed step takes everything left.
        """
        goal = self._goal(request.task_prompt, request.input_image)
        scene = self._try_perceive(request.current_frame)
        if scene is None:
            return _reply(self._best_effort(request, None, goal, "the current frame shows no readable scene"))
        remaining = self._solve(scene, goal)
        observation = self.family.describe_scene(scene)
        if not remaining and self.family.distance(scene, goal) > 0:
            # Family.solve gives [] both for a finished task and for a scene it cannot plan from.
            return _reply(self._best_effort(request, scene, goal, "an object may have vanished or been doubled"))
        if not remaining and request.exact_steps:
            # Fixed N: the run takes every step it was given, even with nothing left to do.
            return _reply(
                Plan(
                    observation=observation,
                    remaining_goal="Nothing: the task is complete, but this run takes exactly "
                                   f"{request.max_steps} steps.",
                    task_complete=False,
                    instruction=HOLD_INSTRUCTION,
                    target_state=observation,
                    estimated_steps_remaining=request.max_steps - request.step,
                )
            )
        if not remaining:
            return _reply(
                Plan(
                    observation=observation,
                    remaining_goal="Nothing: the task is complete.",
                    task_complete=True,
                    instruction="",
                    target_state=observation,
                    estimated_steps_remaining=0,
                )
            )
        steps_left = max(1, request.max_steps - request.step + 1)
        chunk = math.ceil(len(remaining) / steps_left)
        if request.split is not None and not request.is_last:
            chunk = 1
        if request.is_last:
            chunk = len(remaining)
        target = scene
        for action in remaining[:chunk]:
            target = self.family.apply(target, action)
        return _reply(
            Plan(
                observation=observation,
                remaining_goal=self.family.describe(remaining),
                task_complete=False,
                instruction=self.family.describe(remaining[:chunk]),
                target_state=self.family.describe_scene(target),
                estimated_steps_remaining=math.ceil(len(remaining) / chunk),
            )
        )

    def _best_effort(self, request: PlanRequest, scene: Scene | None, goal: Any, why: str) -> Plan:
        """A plan for a frame the task cannot be finished from (a collapsed scene): say so, and still give
        the video model something to do, the direct attempt at what is left or else the task itself. A
        simulated world's collapsed scene is a failed task, not a backend error: the run goes on and the
        final video scores what it shows."""
        attempt = list(self.family.greedy(scene, goal)) if scene is not None else []
        instruction = self.family.describe(attempt) if attempt else request.task_prompt
        seen = self.family.describe_scene(scene) if scene is not None else "The frame shows no readable scene."
        return Plan(
            observation=seen,
            remaining_goal=f"The task cannot be completed from this frame ({why}); attempting what is left.",
            task_complete=False,
            instruction=instruction,
            target_state=seen,
            estimated_steps_remaining=1,
        )

    # ----- verify -------------------------------------------------------------------------------
    def verify(self, request: VerifyRequest) -> VLMReply[Verdict]:
        """Was THIS action executed? Compares every sampled frame with the path the action should trace.

        The first bad sample decides the error: an unreadable frame or a vanished/doubled object is a
        scene collapse; an object the instruction does not name moving is a wrong object; the moving
        objects leaving the expected path or going back along it is a wrong direction; a violation of
        the family's rules (e.g. crossing a wall) is a wrong action. With no bad sample, the clip is
        accepted unless it shows no progress at all. The verifier profile then flips the verdict with
        probability 1 - recall.
        """
        clip = request.clip
        if not clip.frames:
            raise BackendError("the clip to verify has no frames")
        frames = list(clip.frames)
        if len(frames) >= 2:
            frames[0] = _undrift(frames[0], frames[1])
        scenes = [self._try_perceive(frame) for frame in frames]
        start = scenes[0]
        if start is None:
            # A clip that shows no readable scene (not even in its first frame) is a collapse, judged like
            # any other wrong clip: a simulated world's broken scene is a failed task, not a backend error.
            finding = _Finding(
                ok=False,
                progress=0.0,
                error_type="scene_collapse",
                reason="The first frame of the clip does not show the scene at all.",
                suggestion=_correction("Keep the scene intact from the first frame on."),
                good_fraction=0.0,
            )
        else:
            expected = self._expected(request.instruction, request.task_prompt, request.input_image, start)
            if expected is None:
                finding = _Finding(
                    ok=False,
                    progress=0.0,
                    error_type="scene_collapse",
                    reason=f"The scene is broken ({self.family.describe_scene(start)}); the task cannot be "
                           "completed from it.",
                    suggestion=_correction("Keep every object in place and the scene intact."),
                    good_fraction=0.0,
                )
            else:
                finding = self._judge(scenes, clip, start, expected)
        standing = self._standing_key(request)
        return _reply(self._with_profile(finding, request.seed, standing))

    def _expected(self, instruction: str, task_prompt: str, input_image: np.ndarray,
                  start: Scene) -> list[Primitive] | None:
        """The actions the instruction asks for from `start`; None when it states the task and the task
        cannot be planned from `start` (an object vanished or doubled)."""
        text = instruction_part(instruction)
        if text.strip() == HOLD_INSTRUCTION:
            return []
        parsed = self._parse(text, start)
        if parsed.greedy:
            goal = self._goal(task_prompt, input_image)
            remaining = self._solve(start, goal)
            if not remaining and self.family.distance(start, goal) > 0:
                return None
            return remaining
        if not parsed.actions:
            raise BackendError(f"the simulated VLM cannot read an action of the {self.family.name} world in {text!r}")
        return list(parsed.actions)

    @staticmethod
    def _standing_key(request: VerifyRequest) -> bytes:
        """What a verifier's standing opinion of a step is about: the task, its input image and the
        instruction without the corrections appended to it (the same for every attempt of a step)."""
        digest = hashlib.sha256()
        digest.update(request.task_prompt.encode())
        digest.update(np.ascontiguousarray(request.input_image).tobytes())
        digest.update(" ".join(instruction_part(request.instruction).lower().split()).encode())
        return digest.digest()

    def _path(self, start: Scene, actions: Sequence[Primitive]) -> _Path:
        """The expected motion: each action takes an equal share of the positions 0..1."""
        moving = {action.obj for action in actions}
        positions, scenes = [0.0], [start]
        corners = []
        scene = start
        for index, action in enumerate(actions):
            if index:
                corners.append((index / len(actions), scene))
            end = self.family.apply(scene, action)
            change = max((object_delta(a, b) for a, b in _pairs(scene, end) if a.name in moving), default=0.0)
            samples = min(max(PATH_SAMPLES, math.ceil(change)), MAX_PATH_SAMPLES)
            for j in range(1, samples + 1):
                t = j / samples
                positions.append((index + t) / len(actions))
                scenes.append(self.family.interpolate(scene, action, t))
            scene = end
        return _Path(positions, scenes, moving, corners)

    def _judge(
        self, scenes: list[Scene | None], clip: ClipView, start: Scene, expected: list[Primitive]
    ) -> _Finding:
        moving = {action.obj for action in expected}
        wanted = self.family.describe(expected)
        path = self._path(start, expected)
        names = Counter(start.names())
        position = 0.0  # path position of the last good sample
        reached = 0.0  # furthest path position seen so far
        previous = start

        for k, scene in enumerate(scenes):

            def reject(error_type: str, reason: str, suggestion: str) -> _Finding:
                # Frames up to the last good sample were right: the first failing frame is the one after it.
                good = (clip.indices[k - 1] + 1) / clip.n_frames if k > 0 else 0.0
                return _Finding(False, position, error_type, reason, suggestion, min(max(good, 0.0), 1.0))

            frame = clip.indices[k]
            if scene is None:
                return reject(
                    "scene_collapse",
                    f"Frame {frame} no longer shows a readable scene.",
                    _correction("Keep every object in place and the scene intact.", wanted),
                )
            if Counter(scene.names()) != names:
                changed, affected = self._census(names, Counter(scene.names()))
                keep = " and the ".join(affected)
                return reject(
                    "scene_collapse",
                    f"At frame {frame} {changed}.",
                    _correction(f"Keep every object in place: the {keep} must not vanish or be doubled.", wanted),
                )
            for before, now in _pairs(start, scene):
                if before.name not in moving and object_delta(before, now) > TOLERANCE:
                    movers = " and the ".join(sorted(moving)) or "objects named in the instruction"
                    return reject(
                        "wrong_object",
                        f"At frame {frame} the {before.name} moved, but the instruction moves the {movers}.",
                        _correction(f"Move only the {movers}; keep the {before.name} still.", wanted),
                    )
            if moving:
                distances, culprits = path.distances(scene)
                near = distances <= TOLERANCE
                if not near.any():
                    culprit = culprits[int(distances.argmin())]
                    return reject(
                        "wrong_direction",
                        f"At frame {frame} the {culprit} left the path the instruction describes.",
                        _correction(wanted, f"The {culprit} must follow exactly this motion, not another one."),
                    )
                forward = near & (path.positions >= reached - BACKTRACK_MARGIN)
                if not forward.any():
                    return reject(
                        "wrong_direction",
                        f"At frame {frame} the motion went back the way it came.",
                        _correction(wanted, "Keep moving forward; do not turn back."),
                    )
                # The closest forward sample; argmin takes the earliest of equally close ones.
                current = float(path.positions[int(np.where(forward, distances, np.inf).argmin())])
            else:
                current = 1.0
            # Between two samples on the expected path the motion is taken to have followed it, through
            # the corners where one action hands over to the next: a straight line from sample to sample
            # would cut those corners (through a maze wall) when several actions fall within a second.
            chain = [previous, *path.corners_between(position, current), scene] if moving else [previous, scene]
            problems = [p for a, b in zip(chain, chain[1:]) for p in self.family.violations(a, b)]
            if problems:
                return reject(
                    "wrong_action",
                    f"At frame {frame} {'; '.join(problems)}.",
                    _correction(wanted, f"Respect the scene's rules: {problems[0]} must not happen."),
                )
            position = current
            reached = max(reached, current)
            previous = scene

        if moving:
            distances, _ = path.distances(previous)
            if distances[-1] <= END_SLACK and distances[-1] < distances[0]:
                position = 1.0
        if position < PROGRESS_NONE:
            return _Finding(
                False,
                position,
                "not_executed",
                "Nothing in the clip carries out the instruction.",
                _correction("Show the motion.", wanted),
                0.0,
            )
        return _Finding(True, position, reason=f"The instructed motion was carried out ({position:.0%} of it).")

    @staticmethod
    def _census(before: Counter, after: Counter) -> tuple[str, list[str]]:
        """What changed in the set of objects (a sentence part) and which names it affected."""
        gone = sorted(set((before - after).elements()))
        extra = sorted(set((after - before).elements()))
        parts = [f"the {name} vanished" for name in gone] + [f"the {name} was doubled" for name in extra]
        return " and ".join(parts), gone + extra

    def _with_profile(self, finding: _Finding, seed: int, standing: bytes = b"") -> Verdict:
        """Apply the verifier's error profile: a correct judgement with probability equal to its recall,
        drawn afresh or, with the profile's persistence, from the standing opinion of the step."""
        rng = np.random.default_rng(seed)
        recall = self.verifier.accept_recall if finding.ok else self.verifier.reject_recall
        draw = float(rng.random())
        if self.verifier.persistence > 0 and rng.random() < self.verifier.persistence:
            draw = int.from_bytes(hashlib.sha256(standing).digest()[:8], "big") / 2.0**64
        correct = bool(draw < recall)
        confidence = float(rng.uniform(0.75, 0.95) if correct else rng.uniform(0.5, 0.75))
        progress = "complete" if finding.progress >= PROGRESS_COMPLETE else "partial"
        if finding.ok and correct:
            return Verdict(
                verdict="accept",
                action_executed=True,
                progress=progress,
                confidence=confidence,
                reason=finding.reason,
            )
        if finding.ok:
            return Verdict(
                verdict="reject",
                action_executed=False,
                progress="partial",
                confidence=confidence,
                reason=_VAGUE_COMPLAINTS[int(rng.integers(len(_VAGUE_COMPLAINTS)))],
                suggestion=_correction("Make the motion clearer and steadier."),
                good_fraction=float(rng.uniform(0.2, 0.9)),
                error_type="other",
            )
        if correct:
            return Verdict(
                verdict="reject",
                action_executed=False,
                progress="none" if finding.progress < PROGRESS_NONE else "partial",
                confidence=confidence,
                reason=finding.reason,
                suggestion=finding.suggestion,
                good_fraction=finding.good_fraction,
                error_type=finding.error_type,  # type: ignore[arg-type]
            )
        return Verdict(
            verdict="accept",
            action_executed=True,
            progress="complete",
            confidence=confidence,
            reason="The action appears to have been executed.",
        )

    # ----- route --------------------------------------------------------------------------------
    def route(self, request: RouteRequest) -> VLMReply[RouteDecision]:
        """Pick the recovery for a step whose attempts were all rejected. The paper gives no numeric
        bands; these rules are ours, tried in order (a failed clip with no readable scene falls back):

        1. The instruction holds 2 or more actions → "split" into min(max(n, 2), 4) steps: the step
           conflated several actions, more than a clip does reliably.
        2. good_fraction >= 0.3 → "regen": an execution slip on one coherent action, and the good prefix
           is worth keeping.
        3. At most 2 actions remain for the whole task → "fallback": the residual fits in one clip.
        4. Otherwise "split" into min(remaining actions, 4) steps.
        """
        if not request.clip.frames:
            raise BackendError("the failed clip to route has no frames")
        goal = self._goal(request.task_prompt, request.input_image)
        start = self._try_perceive(request.clip.frames[0])
        if start is None:
            return _reply(RouteDecision(
                action="fallback", suggestion=request.suggestion,
                reason="The failed clip shows no readable scene; one clip of the whole remaining task."))
        parsed = self._parse(instruction_part(request.instruction), start)
        remaining = self._solve(start, goal)
        n = len(remaining) if parsed.greedy else len(parsed.actions)

        if n >= 2:
            decision = RouteDecision(
                action="split",
                estimated_steps=min(max(n, 2), 4),
                suggestion=request.suggestion,
                reason=f"The instruction asks for {n} actions at once; splitting it into smaller steps.",
            )
        elif request.good_fraction >= 0.3:
            decision = RouteDecision(
                action="regen",
                suggestion=request.suggestion,
                reason=(
                    f"One coherent action with {request.good_fraction:.0%} of the clip right before the slip; "
                    "regenerating from the first failing frame."
                ),
            )
        elif len(remaining) <= 2:
            decision = RouteDecision(
                action="fallback",
                suggestion=request.suggestion,
                reason=f"Only {len(remaining)} action(s) remain for the whole task; one clip can do them.",
            )
        else:
            decision = RouteDecision(
                action="split",
                estimated_steps=min(len(remaining), 4),
                suggestion=request.suggestion,
                reason=(
                    f"The attempt failed early and {len(remaining)} actions remain; "
                    "re-planning the residual as smaller steps."
                ),
            )
        return _reply(decision)

    # ----- critique (the VideoTPO baseline) ------------------------------------------------------
    def critique(self, request: CritiqueRequest) -> VLMReply[Critique]:
        """Judge each clip of a round as an execution of the whole task (as the verifier judges an action,
        with the same error profile), name the better clip as the selector would, and rewrite the prompt:
        the prompt with the corrections of the clips found wrong appended (each once), in the words the
        verifier uses. Like the verifier's, a wrongly rejected clip gets a vague complaint."""
        if not request.clips:
            raise BackendError("a critique needs at least one clip")
        notes, corrections = [], []
        for index, clip in enumerate(request.clips):
            verdict = self.verify(VerifyRequest(
                task_prompt=request.task_prompt, input_image=request.input_image, instruction=request.prompt,
                target_state="", clip=clip, seed=_sub_seed(request.seed, index))).value
            if verdict.verdict == "accept":
                notes.append(f"Clip {index}: strength: {verdict.reason}")
            else:
                notes.append(f"Clip {index}: weakness: {verdict.reason}")
                corrections.append(verdict.suggestion)
        better = self.select(SelectRequest(task_prompt=request.task_prompt, input_image=request.input_image,
                                           clips=request.clips, seed=request.seed)).value.best_index
        prompt = request.prompt.strip()
        for correction in corrections:
            text = " ".join(correction.split())
            if text and text.casefold() not in " ".join(prompt.split()).casefold():
                prompt = f"{prompt} {text}"
        notes.append(f"Clip {better} is the better one.")
        return _reply(Critique(better_index=better, critique=" ".join(notes), prompt=prompt))

    # ----- select -------------------------------------------------------------------------------
    def select(self, request: SelectRequest) -> VLMReply[Selection]:
        """Pass@k: the clip whose last frame is closest to the goal; broken clips rank last."""
        if not request.clips:
            raise BackendError("select needs at least one clip")
        initial = self._perceive(request.input_image, "the input image")
        goal = self._goal(request.task_prompt, request.input_image)
        scores = [self._score(clip, initial, goal) for clip in request.clips]
        best = min(range(len(scores)), key=lambda i: (scores[i], i))
        listed = ", ".join(f"clip {i}: {score:g}" for i, score in enumerate(scores))
        return _reply(
            Selection(best_index=best, reason=f"Clip {best} ends closest to the goal (distance scores {listed}).")
        )

    def _score(self, clip: ClipView, initial: Scene, goal: Any) -> float:
        if not clip.frames:
            return 2 * SELECT_PENALTY
        scenes = [self._try_perceive(frame) for frame in clip.frames]
        last = scenes[-1]
        if last is None:
            return 2 * SELECT_PENALTY
        score = float(self.family.distance(last, goal))
        broken = any(scene is None or Counter(scene.names()) != Counter(initial.names()) for scene in scenes)
        readable = [scene for scene in scenes if scene is not None]
        broken = broken or any(self.family.violations(a, b) for a, b in zip(readable, readable[1:]))
        return score + (SELECT_PENALTY if broken else 0.0)

    # ----- reading pixels and text --------------------------------------------------------------
    def _try_perceive(self, image: np.ndarray) -> Scene | None:
        try:
            return self.family.perceive(image)
        except ValueError:
            return None

    def _perceive(self, image: np.ndarray, what: str) -> Scene:
        try:
            return self.family.perceive(image)
        except ValueError as exc:
            raise BackendError(
                f"the simulated VLM cannot read {what} as a scene of the simulated {self.family.name} world: {exc}"
            ) from exc

    def _goal(self, task_prompt: str, input_image: np.ndarray) -> Any:
        initial = self._perceive(input_image, "the input image")
        try:
            return self.family.goal_from(task_prompt, initial)
        except ValueError as exc:
            raise BackendError(
                f"the simulated VLM cannot read a {self.family.name} task in {task_prompt!r}: {exc}"
            ) from exc

    def _parse(self, text: str, scene: Scene) -> Any:
        try:
            return self.family.parse(text, scene)
        except ValueError as exc:
            raise BackendError(f"the simulated VLM cannot read the instruction {text!r}: {exc}") from exc

    def _solve(self, scene: Scene, goal: Any) -> list[Primitive]:
        try:
            return list(self.family.solve(scene, goal))
        except ValueError as exc:
            raise BackendError(f"the simulated planner finds no way to the goal from this frame: {exc}") from exc

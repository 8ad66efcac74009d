"""The simulated image-to-video model: reads the conditioning frame and the prompt, renders a smooth clip.

It fails the way real VGMs fail (a short horizon, wrong direction, wrong object, stopping early, scene
collapse, first-frame drift), at rates set by a `VGMProfile`. It sees only the image and the text: the
scene comes from `family.perceive`, the actions from `family.parse`. Given the request's seed, the clip
is always the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from collabvr.backends import BackendCancelled, BackendError, BackendInfo, GeneratedClip, GenerateRequest
from collabvr.sim.base import (
    Family,
    GrammarError,
    PerceptionError,
    Primitive,
    Scene,
    collapse,
    drift_image,
    smoothstep,
)

MAX_SECONDS = 60.0

# EVOLVE appends the verifier's suggestion to the instruction. The simulated VLM starts every suggestion
# with this mark so that the simulated models read only the instruction before it: a suggestion that
# restates the action ("Correction: move the red disc 3 cells right.") must not be executed twice.
CORRECTION_MARK = "Correction:"

FAILURE_MODES = ("wrong_direction", "wrong_object", "stop_early", "scene_collapse")

# How many frames after a drifted first frame blend back to the clean render.
DRIFT_BLEND_FRAMES = 3


def instruction_part(text: str) -> str:
    """The instruction in a prompt, without the corrections that prompt evolution appended to it."""
    index = text.lower().find(CORRECTION_MARK.lower())
    return text if index < 0 else text[:index].rstrip()


@dataclass(frozen=True)
class VGMProfile:
    """How a simulated VGM behaves. These knobs and their defaults are the simulator's specification.

    - horizon = 2: primitive actions a clip executes reliably. Each action past the horizon "drifts":
      with probability `beyond_horizon_drop` the clip stops there (it and all later actions dropped),
      otherwise it is replaced by `family.wrong_direction` (dropped if the family has none).
    - failure_rate = 0.25: probability that a clip fails once, at a moment u ~ Uniform(0, 1) of its
      motion time, in one mode chosen uniformly among those applicable: wrong_direction (the active
      action goes on as a wrong version of itself), wrong_object (another object does the active action),
      stop_early (nothing moves after u), scene_collapse (an object vanishes or doubles from u on).
      After a wrong direction, wrong object or early stop, later actions are not executed.
    - drift_rate = 0.05: probability that the first frame drifts (`base.drift_image`: a small shift and a
      tone change) and blends back to the clean render over the next 3 frames.
    - beyond_horizon_drop = 0.5: see `horizon`.
    - fps = 8.0: frames per second of the clip.
    - motion_share = 0.85: actions play over the first 85% of the clip; the scene then holds still, as
      real clips settle before they end.
    """

    name: str
    horizon: int = 2
    failure_rate: float = 0.25
    drift_rate: float = 0.05
    beyond_horizon_drop: float = 0.5
    fps: float = 8.0
    motion_share: float = 0.85


PROFILES: dict[str, VGMProfile] = {
    "default": VGMProfile("default"),
    "hard": VGMProfile("hard", failure_rate=0.4),
    "perfect": VGMProfile("perfect", horizon=99, failure_rate=0.0, drift_rate=0.0),
}


@dataclass(frozen=True)
class _Segment:
    """One action on the clip's motion timeline (u in [0, 1] over the motion time).

    The action runs from `scene` over [start, start + duration], eased with smoothstep; `stop` is the
    fraction of the action at which it freezes (below 1 when a failure cut it short).
    """

    scene: Scene
    action: Primitive
    start: float
    duration: float
    stop: float = 1.0


class _Timeline:
    """The scene at each moment of the motion: segments played in order, then an optional collapse."""

    def __init__(self, family: Family, start: Scene, segments: list[_Segment]) -> None:
        self.family = family
        self.start = start
        self.segments = segments
        self.collapse_at: float | None = None
        self.collapsed: Callable[[Scene], Scene] = lambda scene: scene

    def scene_at(self, u: float) -> Scene:
        scene = self.start
        for segment in self.segments:
            if u < segment.start:
                break
            local = min((u - segment.start) / segment.duration, segment.stop)
            scene = self.family.interpolate(segment.scene, segment.action, smoothstep(local))
        if self.collapse_at is not None and u >= self.collapse_at:
            scene = self.collapsed(scene)
        return scene


class SimVGM:
    """A simulated VGM for one family (implements `collabvr.backends.VGM`)."""

    def __init__(self, family: Family, profile: VGMProfile | str = "default") -> None:
        if isinstance(profile, str):
            if profile not in PROFILES:
                raise ValueError(f"unknown VGM profile {profile!r}; known: {', '.join(PROFILES)}")
            profile = PROFILES[profile]
        self.family = family
        self.profile = profile
        self.fps = profile.fps
        # It stands in for a local video model, so it takes the GPU gate like one.
        self.info = BackendInfo(name=f"sim-vgm/{profile.name}", role="vgm", simulated=True, uses_gpu=True)

    def generate(self, request: GenerateRequest) -> GeneratedClip:
        if not 0 < request.seconds <= MAX_SECONDS:
            raise BackendError(
                f"clip length must be more than 0 and at most {MAX_SECONDS:g} seconds, got {request.seconds!r}"
            )
        n_frames = round(request.seconds * self.fps) + 1
        rng = np.random.default_rng(request.seed)
        try:
            start = self.family.perceive(request.image)
        except PerceptionError as exc:
            raise BackendError(
                f"the simulated VGM only understands frames of the simulated {self.family.name} world: {exc}"
            ) from exc

        actions, greedy = self._read(request.prompt, start)
        planned, horizon_note = self._within_horizon(start, actions, rng)
        timeline = self._timeline(start, planned)
        failure = self._fail(timeline, rng)
        frames = self._render(timeline, n_frames, request)
        drift = bool(rng.random() < self.profile.drift_rate)
        if drift:
            frames = self._drift(frames, rng)

        info = {
            "simulated": True,
            "actions_read": [self.family.describe([a]) for a in actions],
            "executed": [self._executed(segment) for segment in timeline.segments],
            "failure": failure,
            "drift": drift,
            "greedy": greedy,
            "horizon": horizon_note,
        }
        if not actions:
            info["note"] = "no action could be read from the prompt: the clip shows a still scene"
        return GeneratedClip(frames=np.stack(frames).astype(np.uint8), fps=self.fps, info=info)

    # ----- reading the prompt ------------------------------------------------------------------
    def _read(self, prompt: str, start: Scene) -> tuple[list[Primitive], bool]:
        """The actions a prompt asks for, and whether it states a whole task (executed greedily)."""
        text = instruction_part(prompt)
        try:
            parsed = self.family.parse(text, start)
            if not parsed.greedy:
                return list(parsed.actions), False
            return list(self.family.greedy(start, self.family.goal_from(text, start))), True
        except GrammarError:
            # A real VGM given a prompt it cannot follow does something vague; here: nothing.
            return [], False

    def _within_horizon(
        self, start: Scene, actions: list[Primitive], rng: np.random.Generator
    ) -> tuple[list[Primitive], dict]:
        """The actions the clip attempts: reliable up to the horizon, then drifting or dropped."""
        planned: list[Primitive] = []
        drifted: list[str] = []
        dropped = 0
        scene = start
        for index, action in enumerate(actions):
            if index >= self.profile.horizon:
                wrong = None
                if rng.random() >= self.profile.beyond_horizon_drop:
                    wrong = self.family.wrong_direction(scene, action, rng)
                if wrong is None:
                    dropped = len(actions) - index
                    break
                drifted.append(f"{self.family.describe([action])} -> {self.family.describe([wrong])}")
                action = wrong
            planned.append(action)
            scene = self.family.apply(scene, action)
        return planned, {"dropped": dropped, "drifted": drifted}

    # ----- motion and failures -----------------------------------------------------------------
    def _timeline(self, start: Scene, actions: list[Primitive]) -> _Timeline:
        segments = []
        scene = start
        share = 1.0 / len(actions) if actions else 1.0
        for index, action in enumerate(actions):
            segments.append(_Segment(scene, action, start=index * share, duration=share))
            scene = self.family.apply(scene, action)
        return _Timeline(self.family, start, segments)

    def _fail(self, timeline: _Timeline, rng: np.random.Generator) -> dict | None:
        """Maybe inject one failure into the timeline; returns what happened (ground truth for audits)."""
        if rng.random() >= self.profile.failure_rate:
            return None
        u = float(rng.uniform(0.0, 1.0))
        scene_u = timeline.scene_at(u)
        if not timeline.segments:
            return self._collapse(timeline, scene_u, u, rng)

        index = min(int(u * len(timeline.segments)), len(timeline.segments) - 1)
        segment = timeline.segments[index]
        local = min(max((u - segment.start) / segment.duration, 0.0), 1.0)
        replacements = {
            "wrong_direction": self.family.wrong_direction(scene_u, segment.action, rng),
            "wrong_object": self.family.wrong_object(scene_u, segment.action, rng),
        }
        modes = [m for m in FAILURE_MODES if m not in replacements or replacements[m] is not None]
        mode = modes[int(rng.integers(len(modes)))]
        if mode == "scene_collapse":
            return self._collapse(timeline, scene_u, u, rng)

        # The active action freezes at u and nothing planned after it happens.
        kept = timeline.segments[:index] + [dataclasses.replace(segment, stop=local)]
        asked = self.family.describe([segment.action])
        if mode == "stop_early":
            timeline.segments = kept
            return {"mode": mode, "at": u, "detail": f"stopped {local:.0%} of the way through: {asked}"}

        wrong = replacements[mode]
        assert wrong is not None
        # The wrong motion takes the rest of the action's time slot, but never less than half a slot,
        # so that it is visible even when the failure strikes near the slot's end.
        duration = max((1.0 - local) * segment.duration, 0.5 * segment.duration)
        timeline.segments = kept + [_Segment(scene_u, wrong, start=u, duration=duration)]
        return {"mode": mode, "at": u, "detail": f"asked: {asked} did: {self.family.describe([wrong])}"}

    def _collapse(self, timeline: _Timeline, scene_u: Scene, u: float, rng: np.random.Generator) -> dict:
        """From u on an object is gone or doubled; the other objects keep to their motion."""
        collapsed, detail = collapse(scene_u, rng)
        count = len(scene_u.objects)
        gone = next(
            (i for i in range(count) if scene_u.objects[:i] + scene_u.objects[i + 1:] == collapsed.objects), None
        )
        if gone is not None:

            def transform(scene: Scene) -> Scene:
                # Should the family's motion ever change the objects, the collapsed scene simply holds.
                if len(scene.objects) != count:
                    return collapsed
                return scene.with_objects(scene.objects[:gone] + scene.objects[gone + 1:])

        elif len(collapsed.objects) > count:
            twin = collapsed.objects[-1]

            def transform(scene: Scene) -> Scene:
                return scene.with_objects(scene.objects + (twin,))

        elif collapsed.objects != scene_u.objects:

            def transform(scene: Scene) -> Scene:
                return collapsed

        else:

            def transform(scene: Scene) -> Scene:
                return scene

        timeline.collapse_at = u
        timeline.collapsed = transform
        return {"mode": "scene_collapse", "at": u, "detail": detail}

    # ----- pixels ------------------------------------------------------------------------------
    def _render(self, timeline: _Timeline, n_frames: int, request: GenerateRequest) -> list[np.ndarray]:
        frames: list[np.ndarray] = []
        previous: tuple[Scene, np.ndarray] | None = None
        for index in range(n_frames):
            if request.cancel is not None and request.cancel.is_set():
                raise BackendCancelled(f"generation cancelled after {index} of {n_frames} frames")
            fraction = index / (n_frames - 1) if n_frames > 1 else 0.0
            scene = timeline.scene_at(min(1.0, fraction / self.profile.motion_share))
            # The scene holds after the motion ends; re-use its render instead of drawing it again.
            if previous is None or previous[0] != scene:
                previous = (scene, np.asarray(self.family.render(scene), dtype=np.uint8))
            frames.append(previous[1])
            if request.progress is not None:
                request.progress(index + 1, n_frames)
        return frames

    def _drift(self, frames: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        drifted = drift_image(frames[0], rng)
        out = [drifted]
        for index in range(1, len(frames)):
            weight = 1.0 - index / (DRIFT_BLEND_FRAMES + 1)
            if weight <= 0:
                out.extend(frames[index:])
                break
            blend = weight * drifted.astype(np.float32) + (1.0 - weight) * frames[index].astype(np.float32)
            out.append(np.clip(np.round(blend), 0, 255).astype(np.uint8))
        return out

    def _executed(self, segment: _Segment) -> str:
        text = self.family.describe([segment.action])
        return text if segment.stop >= 1.0 else f"{text} (stopped at {segment.stop:.0%})"

"""The simulated image-to-video model: reads the conditioning frame and the prompt, renders a smooth clip.

It fails the way real VGMs fail, at rates set by a `VGMProfile`. Two failure models exist:

- `paper` (the default profile): failures have the structure real VGMs show. A sub-action is hard or
  easy for the model under a given phrasing, so retries of one step fail alike; a correction that names
  the error and its fix makes that error less likely, a vague one distracts; an overloaded prompt is
  executed for its first moves only; the raw task prompt sometimes takes a shortcut through the world's
  rules. Its knobs are fitted to the paper's run statistics (`collabvr.sim.calibration`).
- `legacy`: the model before calibration (independent failures per clip, corrections ignored, a hard
  horizon of 2 actions), kept so that earlier results can be reproduced exactly.

It sees only the image and the text: the scene comes from `family.perceive`, the actions from
`family.parse`. Given the request's seed, the clip is always the same. Every clip carries the ground truth
of what the model did (`info["truth"]`), which the model knows because it made the clip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Callable, Literal

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
    object_delta,
    smoothstep,
)
from collabvr.sim.corrections import CORRECTION_MARK, ReadPrompt, instruction_part, read_prompt

__all__ = [
    "CORRECTION_MARK", "DEFAULT_PROFILE", "FAILURE_MODES", "PROFILES", "SimVGM", "VGMProfile", "instruction_part",
    "resolve_profile",
]

MAX_SECONDS = 60.0

FAILURE_MODES = ("wrong_direction", "wrong_object", "stop_early", "scene_collapse")
# Failure modes after which the action was not carried out: what a correct verifier rejects.
VISIBLE_ERRORS = ("wrong_direction", "wrong_object", "scene_collapse")
# Below this share of the asked motion a clip shows nothing done (the verifier's threshold too).
NOTHING_DONE = 0.05
# A wrong motion smaller than this (`base.object_delta` units, about pixels) is not visible as one; the
# simulated verifier's tolerance is 5.
VISIBLE_CHANGE = 3.0

# Latent difficulties drawn per step; an instruction of more sub-actions reuses them cyclically.
LATENT_ACTIONS = 12

# How many frames after a drifted first frame blend back to the clean render.
DRIFT_BLEND_FRAMES = 3


@dataclass(frozen=True)
class VGMProfile:
    """How a simulated VGM behaves. These knobs and their values are the simulator's specification.

    Shared by both models:
    - drift_rate = 0.05: probability that the first frame drifts (`base.drift_image`: a small shift and a
      tone change) and blends back to the clean render over the next 3 frames.
    - fps = 8.0: frames per second of the clip.
    - motion_share = 0.85: actions play over the first 85% of the clip; the scene then holds still, as
      real clips settle before they end.
    - model: "legacy" or "paper", which failure model the knobs below drive.
    - verifier: the simulated verifier profile the knobs were calibrated with; a session that names no
      verifier profile gets this one, so that a profile name alone reproduces its world.

    The legacy model (independent draws per clip):
    - horizon = 2: primitive actions a clip executes reliably. Each action past the horizon "drifts":
      with probability `beyond_horizon_drop` the clip stops there (it and all later actions dropped),
      otherwise it is replaced by `family.wrong_direction` (dropped if the family has none).
    - failure_rate = 0.25: probability that a clip fails once, at a moment u ~ Uniform(0, 1) of its
      motion time, in one mode chosen uniformly among those applicable: wrong_direction (the active
      action goes on as a wrong version of itself), wrong_object (another object does the active action),
      stop_early (nothing moves after u), scene_collapse (an object vanishes or doubles from u on).
      After a wrong direction, wrong object or early stop, later actions are not executed.
    - beyond_horizon_drop = 0.5: see `horizon`.

    The paper model (failures with the structure of real VGMs; the same four modes, at a moment
    u ~ Uniform(0, 1) of the motion):
    - difficulty_mean, difficulty_concentration: every sub-action of an instruction, in its scene, has
      a latent difficulty d ~ Beta(mean * concentration, (1 - mean) * concentration), the chance that it
      goes wrong when the model attempts it. The draws come from a hash of the scene's static part and
      the instruction's words, never from the attempt, so the retries of a step share them: a low
      concentration makes sub-actions either easy or hard, and failures of a hard step persist across
      retries; an instruction of more sub-actions is more likely to hold a hard one. A new phrasing (a
      split, a person's edit) draws anew; an appended correction does not change the instruction.
    - mode_persistence: the share of a step's failures that take its dominant mode (drawn with d among
      the errors a verifier can see: wrong direction, wrong object where the scene has another object,
      scene collapse); the rest spread evenly over the other modes, stopping early among them. A hard
      step tends to fail the same way each time.
    - named_fix: a correction that names an error multiplies that error's chance by this factor on every
      later attempt (once, however often it is repeated). A correction naming the dominant error helps
      most; one naming an error the step does not make barely helps.
    - vague_penalty: a correction that names no error raises the chance of every error by this share
      (the model is distracted by a complaint it cannot act on).
    - reliable_actions, continue_rate: partial competence on long prompts. A clip always attempts the
      first `reliable_actions` actions; each further one is attempted with probability `continue_rate`
      given the one before was, so a k-action prompt is executed in full with probability
      continue_rate ** (k - reliable_actions) and otherwise for its first moves only. The chance that a
      clip fails grows with the actions it attempts: 1 - prod(1 - d_i') over the attempted ones.
    - overload_hazard: a crowded prompt is followed less well: every sub-action the prompt asks for beyond
      the first adds this chance that an attempted one goes wrong (d' = d + (1 - d) * overload * (k - 1)
      for k asked), so the long instruction of a last step fails more often than a short one.
    - shortcut_rate: a prompt that states the whole task (the raw task prompt) is, for this share of
      (scene, prompt) pairs, executed as the direct undecomposed attempt (`family.greedy`: in the maze,
      straight for the goal through walls); otherwise the model finds the proper moves
      (`family.solve`) and executes them with the same partial competence. A correction naming the
      rule (walls) multiplies the share by `named_fix`.
    """

    name: str
    model: Literal["legacy", "paper"] = "legacy"
    verifier: str = "gemini-2.5-pro"
    drift_rate: float = 0.05
    fps: float = 8.0
    motion_share: float = 0.85
    # legacy model
    horizon: int = 2
    failure_rate: float = 0.25
    beyond_horizon_drop: float = 0.5
    # paper model
    difficulty_mean: float = 0.3
    difficulty_concentration: float = 1.0
    mode_persistence: float = 0.7
    named_fix: float = 0.3
    vague_penalty: float = 0.25
    reliable_actions: int = 1
    continue_rate: float = 0.7
    overload_hazard: float = 0.0
    shortcut_rate: float = 0.5


PROFILES: dict[str, VGMProfile] = {
    # Fitted to the paper's run statistics of Gemini 2.5 Pro verifying VBVR-Wan2.2 (appendix C), together
    # with the verifier profile `gemini-2.5-pro-paper`: `python -m collabvr calibrate --fit` on the hard
    # suite, seeds 0-29, then confirmed on seeds 0-199 (`collabvr.sim.calibration`, the README).
    "paper": VGMProfile("paper", model="paper", verifier="gemini-2.5-pro-paper", difficulty_mean=0.56,
                        difficulty_concentration=0.05, mode_persistence=0.9, named_fix=0.9, continue_rate=0.8,
                        overload_hazard=0.125),
    "legacy": VGMProfile("legacy"),
    "hard": VGMProfile("hard", failure_rate=0.4),
    "perfect": VGMProfile("perfect", horizon=99, failure_rate=0.0, drift_rate=0.0),
}
# Sessions recorded before the paper profile existed name the legacy model "default".
ALIASES: dict[str, str] = {"default": "legacy"}
DEFAULT_PROFILE = "paper"


def resolve_profile(profile: VGMProfile | str) -> VGMProfile:
    """A profile by name (or an alias recorded by older sessions), or the profile itself."""
    if isinstance(profile, VGMProfile):
        return profile
    name = ALIASES.get(profile, profile)
    if name not in PROFILES:
        raise ValueError(f"unknown VGM profile {profile!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass(frozen=True)
class _Segment:
    """One action on the clip's motion timeline (u in [0, 1] over the motion time).

    The action runs from `scene` over [start, start + duration], eased with smoothstep; `stop` is the
    fraction of the action at which it freezes (below 1 when a failure cut it short). `intended` is False
    for a motion the prompt did not ask for (a wrong direction, a wrong object).
    """

    scene: Scene
    action: Primitive
    start: float
    duration: float
    stop: float = 1.0
    intended: bool = True


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


@dataclass(frozen=True)
class _Latent:
    """What the model is like on one (scene, instruction): fixed across the retries of a step."""

    difficulties: tuple[float, ...]  # chance that each sub-action goes wrong (cycled past the end)
    dominant: str  # the failure mode this step tends to
    shortcut_draw: float  # uniform; below the shortcut share, a task-stating prompt is taken head-on
    key: int  # the step's identity as a number (seeds the step's draws)


class SimVGM:
    """A simulated VGM for one family (implements `collabvr.backends.VGM`)."""

    def __init__(self, family: Family, profile: VGMProfile | str = DEFAULT_PROFILE) -> None:
        profile = resolve_profile(profile)
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
        try:
            start = self.family.perceive(request.image)
        except PerceptionError as exc:
            return self._still(request, n_frames, str(exc))
        if self.profile.model == "paper":
            return self._generate_paper(request, start, n_frames)
        return self._generate_legacy(request, start, n_frames, np.random.default_rng(request.seed))

    def _still(self, request: GenerateRequest, n_frames: int, why: str) -> GeneratedClip:
        """A frame the model cannot make sense of (a collapsed scene it cannot read, or an image of another
        world) still gives a video, as a real VGM's does: the frame held still."""
        image = np.asarray(request.image, dtype=np.uint8)
        for index in range(n_frames):
            if request.cancel is not None and request.cancel.is_set():
                raise BackendCancelled(f"generation cancelled after {index} of {n_frames} frames")
            if request.progress is not None:
                request.progress(index + 1, n_frames)
        truth = {"simulated": True, "verdict": "reject", "error": "not_executed", "progress": 0.0,
                 "moves_asked": [], "moves_executed": [], "violations": []}
        info = {
            "simulated": True, "model": self.profile.model, "actions_read": [], "executed": [], "failure": None,
            "drift": False, "greedy": False, "truth": truth,
            "note": f"the frame shows no readable scene of the simulated {self.family.name} world ({why}): "
                    "the clip holds it still",
        }
        return GeneratedClip(frames=np.repeat(image[None], n_frames, axis=0), fps=self.fps, info=info)

    # ----- the legacy model ----------------------------------------------------------------------
    def _generate_legacy(self, request: GenerateRequest, start: Scene, n_frames: int,
                         rng: np.random.Generator) -> GeneratedClip:
        actions, greedy = self._read(request.prompt, start)
        planned, horizon_note = self._within_horizon(start, actions, rng)
        timeline = self._timeline(start, planned)
        failure = self._fail(timeline, rng)
        frames, scenes = self._render(timeline, n_frames, request)
        drift = bool(rng.random() < self.profile.drift_rate)
        if drift:
            frames = self._drift(frames, rng)

        self._mark_frame(failure, n_frames)
        info = {
            "simulated": True,
            "model": "legacy",
            "actions_read": [self.family.describe([a]) for a in actions],
            "executed": [self._executed(segment) for segment in timeline.segments],
            "failure": failure,
            "drift": drift,
            "greedy": greedy,
            "horizon": horizon_note,
            "truth": self._truth(actions, timeline, failure, scenes, drifted=bool(horizon_note["drifted"])),
        }
        if not actions:
            info["note"] = "no action could be read from the prompt: the clip shows a still scene"
        return GeneratedClip(frames=np.stack(frames).astype(np.uint8), fps=self.fps, info=info)

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

    def _fail(self, timeline: _Timeline, rng: np.random.Generator) -> dict | None:
        """Maybe inject one failure into the timeline (legacy: one rate, modes uniform); returns what
        happened (ground truth for audits)."""
        if rng.random() >= self.profile.failure_rate:
            return None
        u = float(rng.uniform(0.0, 1.0))
        if not timeline.segments:
            return self._collapse(timeline, timeline.scene_at(u), u, rng)
        replacements = self._replacements(timeline, u, rng)
        modes = [m for m in FAILURE_MODES if m not in replacements or replacements[m] is not None]
        mode = modes[int(rng.integers(len(modes)))]
        return self._inject(timeline, mode, u, replacements, rng)

    # ----- the paper model -----------------------------------------------------------------------
    def _generate_paper(self, request: GenerateRequest, start: Scene, n_frames: int) -> GeneratedClip:
        read = read_prompt(request.prompt)
        asked, greedy = self._read_paper(read, start)
        latent = self._latent(start, read, asked)
        # A clip's own randomness comes from its seed and from what it is asked: the same seed given
        # another prompt or frame does not repeat the same draws.
        rng = np.random.default_rng([request.seed, latent.key])
        shortcut = False
        if greedy is not None:
            # A prompt stating the task: the direct attempt, or the proper moves found by the model.
            share = self.profile.shortcut_rate * (self.profile.named_fix if "shortcut" in read.named else 1.0)
            shortcut = latent.shortcut_draw < share
            asked = greedy[0] if shortcut else greedy[1]
        attempted = self._attempted(len(asked), rng)
        timeline = self._timeline(start, asked[:attempted])
        failure = self._fail_paper(timeline, latent, read, attempted, len(asked), rng)
        frames, scenes = self._render(timeline, n_frames, request)
        drift = bool(rng.random() < self.profile.drift_rate)
        if drift:
            frames = self._drift(frames, rng)

        self._mark_frame(failure, n_frames)
        info = {
            "simulated": True,
            "model": "paper",
            "actions_read": [self.family.describe([a]) for a in asked],
            "executed": [self._executed(segment) for segment in timeline.segments],
            "failure": failure,
            "drift": drift,
            "greedy": greedy is not None,
            "shortcut": shortcut,
            "overload": {"asked": len(asked), "attempted": attempted},
            "corrections": {"named": sorted(read.named), "vague": read.vague},
            "latent": {"difficulties": [round(d, 4) for d in latent.difficulties[:max(1, len(asked))]],
                       "dominant": latent.dominant},
            "truth": self._truth(asked, timeline, failure, scenes),
        }
        if not asked:
            info["note"] = "no action could be read from the prompt: the clip shows a still scene"
        return GeneratedClip(frames=np.stack(frames).astype(np.uint8), fps=self.fps, info=info)

    def _read_paper(
        self, read: ReadPrompt, start: Scene
    ) -> tuple[list[Primitive], tuple[list[Primitive], list[Primitive]] | None]:
        """The actions the instruction asks for (a move written twice in a row is done once), or, for a
        prompt that states the task, (the direct attempt, the proper moves)."""
        try:
            parsed = self.family.parse(read.instruction, start)
            if not parsed.greedy:
                actions: list[Primitive] = []
                for action in parsed.actions:
                    if not actions or actions[-1] != action:
                        actions.append(action)
                return actions, None
            goal = self.family.goal_from(read.instruction, start)
        except GrammarError:
            return [], None
        direct = list(self.family.greedy(start, goal))
        proper = list(self.family.solve(start, goal)) or direct
        return [], (direct, proper)

    def _step_key(self, start: Scene, read: ReadPrompt, asked: list[Primitive]) -> bytes:
        """What identifies a step to the model: the scene's static part (objects the instruction does not
        move, drawn as the planner would describe them, and the layout) and the instruction's words.
        A retry from the step's start or from a frame mid-action gives the same key."""
        moving = {action.obj for action in asked}
        still = start.with_objects([o for o in start.objects if o.name not in moving])
        words = " ".join(read.instruction.lower().split())
        text = "\n".join((self.family.name, repr(start.layout), self.family.describe_scene(still), words))
        return hashlib.sha256(text.encode()).digest()

    def _latent(self, start: Scene, read: ReadPrompt, asked: list[Primitive]) -> _Latent:
        key = int.from_bytes(self._step_key(start, read, asked)[:8], "big")
        rng = np.random.default_rng(key)
        mean = min(max(self.profile.difficulty_mean, 0.0), 1.0)
        if 0.0 < mean < 1.0:
            kappa = self.profile.difficulty_concentration
            difficulties = tuple(float(d) for d in rng.beta(mean * kappa, (1.0 - mean) * kappa, LATENT_ACTIONS))
        else:
            difficulties = (mean,) * LATENT_ACTIONS
        # A step's recurring failure is one a verifier can see; stopping early (partial progress) is only
        # ever a background failure. Another object can be moved by mistake only where there is one.
        candidates = [m for m in VISIBLE_ERRORS if m != "wrong_object" or len(start.objects) > 1]
        dominant = candidates[int(rng.integers(len(candidates)))]
        return _Latent(difficulties, dominant, float(rng.random()), key)

    def _attempted(self, asked: int, rng: np.random.Generator) -> int:
        """Partial competence: how many of the asked actions, in order, the clip attempts."""
        attempted = min(asked, max(0, self.profile.reliable_actions))
        while attempted < asked and rng.random() < self.profile.continue_rate:
            attempted += 1
        return attempted

    def _mode_weights(self, latent: _Latent, read: ReadPrompt) -> dict[str, float]:
        """Each mode's share of the per-action failure chance, after the corrections' effect."""
        persistence = min(max(self.profile.mode_persistence, 0.0), 1.0)
        others = (1.0 - persistence) / (len(FAILURE_MODES) - 1)
        weights = {m: persistence if m == latent.dominant else others for m in FAILURE_MODES}
        for mode in read.named & set(FAILURE_MODES):
            weights[mode] *= self.profile.named_fix
        if read.vague:
            weights = {m: w * (1.0 + self.profile.vague_penalty) for m, w in weights.items()}
        return weights

    def _fail_paper(self, timeline: _Timeline, latent: _Latent, read: ReadPrompt, attempted: int, asked: int,
                    rng: np.random.Generator) -> dict | None:
        """Maybe inject one failure: each attempted sub-action may go wrong with its latent difficulty (as
        the corrections shape it); the mode follows the step's tendency and the corrections."""
        weights = self._mode_weights(latent, read)
        if not timeline.segments:
            weights = {"scene_collapse": weights["scene_collapse"]}
        share = sum(weights.values())
        crowd = min(1.0, max(0.0, self.profile.overload_hazard) * max(0, asked - 1))
        hazards = []
        for index in range(max(1, attempted)):
            difficulty = latent.difficulties[index % len(latent.difficulties)]
            hazards.append(min(1.0, (difficulty + (1.0 - difficulty) * crowd) * share))
        # The first sub-action that goes wrong, in order; the failure strikes inside its time slot.
        first = [h * float(np.prod([1.0 - g for g in hazards[:i]])) for i, h in enumerate(hazards)]
        pick = float(rng.random())
        failing = None
        for index, chance in enumerate(first):
            if pick < chance:
                failing = index
                break
            pick -= chance
        if failing is None:
            return None
        u = (failing + float(rng.uniform(0.0, 1.0))) / len(hazards)
        if not timeline.segments:
            return self._collapse(timeline, timeline.scene_at(u), u, rng)
        replacements = self._replacements(timeline, u, rng)
        modes = [m for m in FAILURE_MODES if m not in replacements or replacements[m] is not None]
        total = sum(weights[m] for m in modes)
        if total <= 0:
            return None
        pick, mode = float(rng.random()) * total, modes[-1]
        for candidate in modes:
            pick -= weights[candidate]
            if pick < 0:
                mode = candidate
                break
        return self._inject(timeline, mode, u, replacements, rng)

    # ----- motion and failures (both models) -----------------------------------------------------
    def _timeline(self, start: Scene, actions: list[Primitive]) -> _Timeline:
        segments = []
        scene = start
        share = 1.0 / len(actions) if actions else 1.0
        for index, action in enumerate(actions):
            segments.append(_Segment(scene, action, start=index * share, duration=share))
            scene = self.family.apply(scene, action)
        return _Timeline(self.family, start, segments)

    def _replacements(self, timeline: _Timeline, u: float, rng: np.random.Generator) -> dict[str, Primitive | None]:
        """What a wrong direction and a wrong object of the action active at u would be."""
        scene_u = timeline.scene_at(u)
        segment = timeline.segments[min(int(u * len(timeline.segments)), len(timeline.segments) - 1)]
        return {
            "wrong_direction": self.family.wrong_direction(scene_u, segment.action, rng),
            "wrong_object": self.family.wrong_object(scene_u, segment.action, rng),
        }

    def _inject(self, timeline: _Timeline, mode: str, u: float, replacements: dict[str, Primitive | None],
                rng: np.random.Generator) -> dict:
        scene_u = timeline.scene_at(u)
        if mode == "scene_collapse":
            return self._collapse(timeline, scene_u, u, rng)
        index = min(int(u * len(timeline.segments)), len(timeline.segments) - 1)
        segment = timeline.segments[index]
        local = min(max((u - segment.start) / segment.duration, 0.0), 1.0)

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
        timeline.segments = kept + [_Segment(scene_u, wrong, start=u, duration=duration, intended=False)]
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

    # ----- ground truth --------------------------------------------------------------------------
    def _mark_frame(self, failure: dict | None, n_frames: int) -> None:
        """Add the first frame that shows the failure: frame i shows motion time i / (n - 1) / motion_share."""
        if failure is None:
            return
        frame = math.ceil(failure["at"] * self.profile.motion_share * (n_frames - 1) - 1e-9)
        failure["frame"] = int(min(max(frame, 0), n_frames - 1))

    def _truth(self, asked: list[Primitive], timeline: _Timeline, failure: dict | None, scenes: list[Scene],
               drifted: bool = False) -> dict:
        """What the clip really shows, and the verdict a verifier that sees it right would give: reject a
        wrong direction, a wrong object, a collapse, a broken rule of the world or nothing done; accept
        the action carried out, partly or fully (partial progress is not an error)."""
        done = 0.0
        executed = []
        for segment in timeline.segments:
            if not segment.intended:
                break
            done += segment.stop
            if segment.stop >= 1.0:
                executed.append(self.family.describe([segment.action]))
        progress = done / len(asked) if asked else 0.0
        violations: list[str] = []
        for before, after in zip(scenes, scenes[1:]):
            for problem in self.family.violations(before, after):
                if problem not in violations:
                    violations.append(problem)
        error = None
        if failure is not None and failure["mode"] in VISIBLE_ERRORS and self._shows(timeline, failure):
            error = failure["mode"]
        elif drifted:
            error = "wrong_direction"
        elif violations:
            error = "wrong_action"
        elif progress < NOTHING_DONE:
            error = "not_executed"
        return {
            "simulated": True,
            "verdict": "accept" if error is None else "reject",
            "error": error,
            "progress": round(min(progress, 1.0), 4),
            "moves_asked": [self.family.describe([a]) for a in asked],
            "moves_executed": executed,
            "violations": violations,
        }

    def _shows(self, timeline: _Timeline, failure: dict) -> bool:
        """Whether the clip shows the failure at all: a wrong motion that starts too late to get anywhere
        before the clip ends leaves the scene as a stop would (it is then no error a verifier could see)."""
        if failure["mode"] == "scene_collapse":
            return True
        wrong = next((s for s in timeline.segments if not s.intended), None)
        if wrong is None:
            return False
        before, after = timeline.scene_at(wrong.start), timeline.scene_at(1.0)
        moved = max((object_delta(a, b) for a, b in zip(before.objects, after.objects)), default=0.0)
        return moved >= VISIBLE_CHANGE

    # ----- pixels ------------------------------------------------------------------------------
    def _render(self, timeline: _Timeline, n_frames: int,
                request: GenerateRequest) -> tuple[list[np.ndarray], list[Scene]]:
        frames: list[np.ndarray] = []
        scenes: list[Scene] = []
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
            scenes.append(scene)
            if request.progress is not None:
                request.progress(index + 1, n_frames)
        return frames, scenes

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

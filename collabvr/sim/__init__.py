"""The embedded simulated world: task families plus a simulated VGM and VLM that read pixels only.

Everything produced here is SIMULATED and is labelled so wherever it is shown or exported.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from collabvr.sim.base import DIFFICULTIES, Family, SimTask
from collabvr.sim.blocks import BlocksFamily
from collabvr.sim.maze import MazeFamily
from collabvr.sim.shapes import ShapesFamily
from collabvr.sim.vgm import DEFAULT_PROFILE as DEFAULT_VGM_PROFILE, PROFILES as VGM_PROFILES, SimVGM, VGMProfile
from collabvr.sim.vlm import DEFAULT_VERIFIER, VERIFIER_PROFILES, SimVLM, VerifierProfile


SIMULATED_LABEL = "SIMULATED"

FAMILIES: dict[str, Family] = {f.name: f for f in (MazeFamily(), BlocksFamily(), ShapesFamily())}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}") from None


def make_task(family: str, difficulty: str, seed: int) -> SimTask:
    return get_family(family).generate(seed, difficulty)


def verifier_for(vgm_profile: str) -> str:
    """The simulated verifier profile a VGM profile was calibrated with (its world's other half)."""
    from collabvr.sim.vgm import resolve_profile

    return resolve_profile(vgm_profile).verifier


def judge_for(task: SimTask) -> Callable[[np.ndarray], tuple[bool, float]]:
    """The task's test of the final video, from its pixels only: (success, graded score in [0, 1])."""
    family = get_family(task.family)

    def judge(frames: np.ndarray) -> tuple[bool, float]:
        score = float(family.score(list(frames), task))
        return score == 1.0, score

    return judge


__all__ = [
    "DEFAULT_VERIFIER", "DEFAULT_VGM_PROFILE", "DIFFICULTIES", "FAMILIES", "SIMULATED_LABEL", "VERIFIER_PROFILES", "VGM_PROFILES", "Family", "SimTask",
    "SimVGM", "SimVLM", "VGMProfile", "VerifierProfile", "get_family", "judge_for", "make_task", "verifier_for",
]

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
from collabvr.sim.vgm import PROFILES as VGM_PROFILES, SimVGM, VGMProfile
from collabvr.sim.vlm import VERIFIER_PROFILES, SimVLM, VerifierProfile


SIMULATED_LABEL = "SIMULATED"

FAMILIES: dict[str, Family] = {f.name: f for f in (MazeFamily(), BlocksFamily(), ShapesFamily())}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}") from None


def make_task(family: str, difficulty: str, seed: int) -> SimTask:
    return get_family(family).generate(seed, difficulty)


def judge_for(task: SimTask) -> Callable[[np.ndarray], bool]:
    """The task's success test, reading the pixels of the final video only."""
    family = get_family(task.family)
    return lambda frames: bool(family.success(list(frames), task))


__all__ = [
    "DIFFICULTIES", "FAMILIES", "SIMULATED_LABEL", "VERIFIER_PROFILES", "VGM_PROFILES", "Family", "SimTask",
    "SimVGM", "SimVLM", "VGMProfile", "VerifierProfile", "get_family", "judge_for", "make_task",
]

"""Starting a session on a simulated task: the one place that turns (family, difficulty, seed, profiles,
latency, loop config) into a recorded SessionStarted and an Engine, for the app's Studio and the command
line alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends.gate import GPUGate
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import EventStore


@dataclass
class NewSimSession:
    """What a simulated session starts from. `seed` picks the task and seeds the session."""

    family: str
    difficulty: str = "easy"
    seed: int = 0
    vlm_profile: str = "gemini-2.5-pro-paper"
    vgm_profile: str = "paper"
    latency_s: float = 0.0
    config: LoopConfig = field(default_factory=LoopConfig)
    title: str = ""
    # A real VLM (a registry spec, e.g. Gemini) in place of the simulated one: it plans and verifies the
    # simulated task from its pixels, as it would a real one; the simulated world's success test still judges.
    vlm_spec: dict[str, Any] | None = None
    session_id: str | None = None  # default: a fresh random id (a benchmark names its samples' sessions)


def start_sim_session(store: EventStore, artifacts: ArtifactFolder, spec: NewSimSession, *,
                      gate: GPUGate | None = None) -> Engine:
    """Record a new simulated session in `store` (its backend specs included, so that another process can
    resume it) and return its engine, ready to run; `gate` is the GPU gate its models wait for (the
    Studio's). Unknown names or bad budgets raise ValueError with the reason."""
    from collabvr.sim import SIMULATED_LABEL, get_family, make_task

    seed = int(spec.seed)
    task = make_task(spec.family, spec.difficulty, seed)
    vlm_spec = spec.vlm_spec or registry.sim_vlm_spec(spec.family, spec.vlm_profile, latency_s=spec.latency_s)
    vgm_spec = registry.sim_vgm_spec(spec.family, spec.vgm_profile, latency_s=spec.latency_s)
    vlm, vgm = registry.build_vlm(vlm_spec), registry.build_vgm(vgm_spec)
    task_spec = TaskSpec(prompt=task.prompt, source="sim", family=spec.family, difficulty=spec.difficulty,
                         task_seed=seed)
    return Engine.start(
        store, artifacts, vlm, vgm, gate=gate, task=task_spec,
        input_image=get_family(spec.family).render(task.initial), config=spec.config, seed=seed,
        session_id=spec.session_id,
        title=spec.title.strip() or f"[{SIMULATED_LABEL}] {spec.family}/{spec.difficulty}/seed {seed}",
        judge=registry.judge_for(task_spec), vlm_label=registry.label(vlm, vlm_spec),
        vgm_label=registry.label(vgm, vgm_spec))

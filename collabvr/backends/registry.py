"""Which backends exist, whether each can run here, and how to build one from the spec a session recorded.

A spec is a small JSON-able dict such as {"kind": "sim", "family": "maze", "profile": "default"}. It is
stored in `SessionStarted`, so a session can be resumed in another process with the same backends.
Backends that cannot run here are listed with the reason, never silently replaced by another.

Building is cached for the life of the process: every session with the same spec shares one backend, so a
real model loads once however many sessions use it (backends must therefore be safe to call from several
threads; the GPU gate, not the backend, keeps two calls off one GPU).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np

from collabvr.backends import VGM, VLM
from collabvr.events import BackendLabel, TaskSpec


class BackendUnavailable(ValueError):
    """A backend was asked for that cannot run here; the message says why."""


@dataclass(frozen=True)
class BackendChoice:
    """One entry of the backend list shown to people: what it is and whether it can run now."""

    key: str
    role: str  # "vlm" or "vgm"
    label: str
    simulated: bool
    available: bool
    why_not: str = ""


def sim_vlm_spec(family: str, profile: str = "gemini-2.5-pro", latency_s: float = 0.0) -> dict[str, Any]:
    return {"kind": "sim", "family": family, "profile": profile, "latency_s": latency_s}


def sim_vgm_spec(family: str, profile: str = "default", latency_s: float = 0.0) -> dict[str, Any]:
    return {"kind": "sim", "family": family, "profile": profile, "latency_s": latency_s}


def _latency(spec: dict[str, Any]) -> float:
    latency = float(spec.get("latency_s") or 0.0)
    if not 0 <= latency <= 600:
        raise BackendUnavailable(f"simulated latency must be between 0 and 600 s, not {latency:g}")
    return latency


B = TypeVar("B")
_built: dict[str, Any] = {}
_building: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def _cached(role: str, spec: dict[str, Any], build: Callable[[dict[str, Any]], B]) -> B:
    """One backend per (role, spec) per process. Two sessions asking at once wait for the same build
    rather than loading a model twice; other specs are not held up meanwhile."""
    key = role + ":" + json.dumps(spec, sort_keys=True, default=str)
    with _registry_lock:
        if key in _built:
            return _built[key]
        lock = _building.setdefault(key, threading.Lock())
    with lock:
        with _registry_lock:
            if key in _built:
                return _built[key]
        backend = build(spec)
        with _registry_lock:
            _built[key] = backend
        return backend


def cached_backends() -> int:
    """How many backends this process has built (for tests and the memory benchmark)."""
    with _registry_lock:
        return len(_built)


def build_vlm(spec: dict[str, Any]) -> VLM:
    """The VLM a spec names, built once per process."""
    return _cached("vlm", spec, _build_vlm)


def build_vgm(spec: dict[str, Any]) -> VGM:
    """The VGM a spec names, built once per process."""
    return _cached("vgm", spec, _build_vgm)


def _build_vlm(spec: dict[str, Any]) -> VLM:
    kind = spec.get("kind")
    if kind == "sim":
        from collabvr.sim import get_family
        from collabvr.sim.vlm import SimVLM, VERIFIER_PROFILES

        profile = spec.get("profile", "gemini-2.5-pro")
        if profile not in VERIFIER_PROFILES:
            raise BackendUnavailable(f"unknown simulated verifier profile {profile!r}; "
                                     f"known: {', '.join(VERIFIER_PROFILES)}")
        vlm: VLM = SimVLM(get_family(spec["family"]), profile)
        latency = _latency(spec)
        if latency:
            from collabvr.sim.latency import SlowVLM
            vlm = SlowVLM(vlm, latency)
        return vlm
    raise BackendUnavailable(f"no VLM backend of kind {kind!r} in this build (available: the simulated VLM)")


def _build_vgm(spec: dict[str, Any]) -> VGM:
    kind = spec.get("kind")
    if kind == "sim":
        from collabvr.sim import get_family
        from collabvr.sim.vgm import PROFILES, SimVGM

        profile = spec.get("profile", "default")
        if profile not in PROFILES:
            raise BackendUnavailable(f"unknown simulated VGM profile {profile!r}; known: {', '.join(PROFILES)}")
        vgm: VGM = SimVGM(get_family(spec["family"]), profile)
        latency = _latency(spec)
        if latency:
            from collabvr.sim.latency import SlowVGM
            vgm = SlowVGM(vgm, latency)
        return vgm
    raise BackendUnavailable(f"no VGM backend of kind {kind!r} in this build (available: the simulated VGM)")


def label(backend: VLM | VGM, spec: dict[str, Any]) -> BackendLabel:
    return BackendLabel(name=backend.info.name, simulated=backend.info.simulated, spec=spec)


def backends_for(vlm: BackendLabel, vgm: BackendLabel) -> tuple[VLM, VGM]:
    """Rebuild the backends a session recorded. Raises BackendUnavailable with the reason."""
    if not vlm.spec or not vgm.spec:
        raise BackendUnavailable("this session did not record how to rebuild its backends")
    return build_vlm(vlm.spec), build_vgm(vgm.spec)


def judge_for(task: TaskSpec) -> Callable[[np.ndarray], bool] | None:
    """The success test of a simulated task (rebuilt from its family, difficulty and seed); None for an
    uploaded task, which has no automatic success test."""
    if task.source != "sim" or task.family is None or task.difficulty is None or task.task_seed is None:
        return None
    from collabvr.sim import judge_for as sim_judge, make_task

    return sim_judge(make_task(task.family, task.difficulty, task.task_seed))


def choices() -> list[BackendChoice]:
    """Every backend this build knows, with an honest availability line."""
    from collabvr.sim.vgm import PROFILES
    from collabvr.sim.vlm import VERIFIER_PROFILES

    listed = [BackendChoice(f"sim:{p}", "vlm", f"Simulated VLM (verifier errs like {p})", True, True)
              for p in VERIFIER_PROFILES]
    listed += [BackendChoice(f"sim:{p}", "vgm", f"Simulated VGM ({p} profile)", True, True) for p in PROFILES]
    listed += [
        BackendChoice("gemini", "vlm", "Gemini 2.5 Pro (google-genai)", False, False,
                      "not built yet: the prompted Gemini backend is a later issue"),
        BackendChoice("transformers", "vlm", "Local Qwen-VL (transformers)", False, False,
                      "not built yet: the local transformers backend is a later issue"),
        BackendChoice("diffusers", "vgm", "Wan / LTX / CogVideoX / Cosmos (diffusers)", False, False,
                      "not built yet, and this machine has no GPU"),
        BackendChoice("veo", "vgm", "Veo (google-genai)", False, False, "not built yet: a later issue"),
    ]
    return listed

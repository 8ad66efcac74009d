"""Which backends exist, whether each can run here, and how to build one from the spec a session recorded.

A spec is a small JSON-able dict such as {"kind": "sim", "family": "maze", "profile": "paper"} or
{"kind": "diffusers", "model": "wan2.2-ti2v-5b"}. It is stored in `SessionStarted`, so a session can be
resumed in another process with the same backends; it never holds a secret (API keys are read from the
environment when a backend is built). Backends that cannot run here are listed with the reason, never
silently replaced by another.

Kinds: "sim" (the simulated world), "gemini" and "transformers" (VLMs), "diffusers" and "veo" (VGMs). The
catalog lists the models of each; more can be registered without code through a JSON file named by
$COLLABVR_BACKENDS (e.g. a fine-tuned checkpoint in a local folder):
    [{"role": "vgm", "key": "my-wan", "label": "My Wan", "spec": {"kind": "diffusers",
      "model": "wan2.2-ti2v-5b", "path": "/models/my-wan"}}, ...]

Building is cached for the life of the process: every session with the same spec shares one backend, so a
real model loads once however many sessions use it (backends must therefore be safe to call from several
threads; the GPU gate, not the backend, keeps two calls off one GPU).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
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
    spec: dict[str, Any] = field(default_factory=dict)  # what build_vlm / build_vgm take


def sim_vlm_spec(family: str, profile: str = "gemini-2.5-pro-paper", latency_s: float = 0.0) -> dict[str, Any]:
    return {"kind": "sim", "family": family, "profile": profile, "latency_s": latency_s}


def sim_vgm_spec(family: str, profile: str = "paper", latency_s: float = 0.0) -> dict[str, Any]:
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
    if kind in REAL_VLM_KINDS:
        return _build_real(REAL_VLM_KINDS[kind], spec)
    raise BackendUnavailable(f"no VLM backend of kind {kind!r} in this build "
                             f"(kinds: sim, {', '.join(REAL_VLM_KINDS)})")


def _build_vgm(spec: dict[str, Any]) -> VGM:
    kind = spec.get("kind")
    if kind == "sim":
        from collabvr.sim import get_family
        from collabvr.sim.vgm import PROFILES, SimVGM

        # A spec without a profile was recorded before profiles were named: the legacy model's "default".
        profile = spec.get("profile", "default")
        family = get_family(spec["family"])
        try:
            vgm: VGM = SimVGM(family, profile)
        except ValueError:
            raise BackendUnavailable(f"unknown simulated VGM profile {profile!r}; known: {', '.join(PROFILES)}") from None
        latency = _latency(spec)
        if latency:
            from collabvr.sim.latency import SlowVGM
            vgm = SlowVGM(vgm, latency)
        return vgm
    if kind in REAL_VGM_KINDS:
        return _build_real(REAL_VGM_KINDS[kind], spec)
    raise BackendUnavailable(f"no VGM backend of kind {kind!r} in this build "
                             f"(kinds: sim, {', '.join(REAL_VGM_KINDS)})")


# The modules behind each real kind; each has unavailable(spec) -> str and build(spec). They import their
# heavy libraries (torch, diffusers, transformers, google-genai) only inside those functions.
REAL_VLM_KINDS = {"gemini": "collabvr.backends.gemini", "transformers": "collabvr.backends.local_vlm"}
REAL_VGM_KINDS = {"diffusers": "collabvr.backends.video_models", "veo": "collabvr.backends.veo"}
BACKENDS_FILE_ENV = "COLLABVR_BACKENDS"


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(name)


def unavailable(role: str, spec: dict[str, Any]) -> str:
    """Why the backend of a spec cannot run here ("" when it can); cheap (no model is loaded)."""
    kinds = REAL_VLM_KINDS if role == "vlm" else REAL_VGM_KINDS
    kind = spec.get("kind")
    if kind == "sim":
        return ""
    if kind not in kinds:
        return f"no {role.upper()} backend of kind {kind!r} in this build"
    return _module(kinds[kind]).unavailable(spec)


def _build_real(module_name: str, spec: dict[str, Any]) -> Any:
    module = _module(module_name)
    problem = module.unavailable(spec)
    if problem:
        raise BackendUnavailable(f"{spec.get('model') or spec.get('kind')} cannot run here: {problem}")
    return module.build(spec)


def label(backend: VLM | VGM, spec: dict[str, Any]) -> BackendLabel:
    return BackendLabel(name=backend.info.name, simulated=backend.info.simulated, spec=spec)


def backends_for(vlm: BackendLabel, vgm: BackendLabel) -> tuple[VLM, VGM]:
    """Rebuild the backends a session recorded. Raises BackendUnavailable with the reason."""
    if not vlm.spec or not vgm.spec:
        raise BackendUnavailable("this session did not record how to rebuild its backends")
    return build_vlm(vlm.spec), build_vgm(vgm.spec)


def judge_for(task: TaskSpec) -> Callable[[np.ndarray], tuple[bool, float]] | None:
    """The test of a simulated task (rebuilt from its family, difficulty and seed): (success, graded
    score); None for an uploaded task, which has no automatic test."""
    if task.source != "sim" or task.family is None or task.difficulty is None or task.task_seed is None:
        return None
    from collabvr.sim import judge_for as sim_judge, make_task

    return sim_judge(make_task(task.family, task.difficulty, task.task_seed))


def catalog() -> list[tuple[str, str, str, dict[str, Any]]]:
    """The real backends this build knows: (role, key, label, spec), then those registered in
    $COLLABVR_BACKENDS."""
    from collabvr.backends import gemini, local_vlm, veo, video_models

    listed: list[tuple[str, str, str, dict[str, Any]]] = [
        ("vlm", "gemini", "Gemini 2.5 Pro (google-genai)", {"kind": "gemini", "model": gemini.DEFAULT_MODEL}),
        ("vlm", "gemini-2.5-flash", "Gemini 2.5 Flash (google-genai)", {"kind": "gemini", "model": "gemini-2.5-flash"}),
    ]
    listed += [("vlm", m.key, m.label, {"kind": "transformers", "model": m.key}) for m in local_vlm.MODELS.values()]
    listed += [("vgm", m.key, m.label, {"kind": "diffusers", "model": m.key}) for m in video_models.MODELS.values()]
    listed += [("vgm", "veo-3.1-fast", "Veo 3.1 Fast (google-genai)", {"kind": "veo", "model": veo.DEFAULT_MODEL}),
               ("vgm", "veo-3.1", "Veo 3.1 (google-genai)", {"kind": "veo", "model": "veo-3.1-generate-preview"})]
    return listed


def registered() -> tuple[list[tuple[str, str, str, dict[str, Any]]], str]:
    """The backends registered in the JSON file $COLLABVR_BACKENDS names, and a problem reading it ("" if
    none)."""
    name = os.environ.get(BACKENDS_FILE_ENV, "").strip()
    if not name:
        return [], ""
    try:
        entries = json.loads(Path(name).read_text())
        listed = []
        for entry in entries:
            role, key, spec = entry["role"], str(entry["key"]), dict(entry["spec"])
            if role not in ("vlm", "vgm"):
                raise ValueError(f"role must be vlm or vgm, not {role!r}")
            listed.append((role, key, str(entry.get("label") or key), spec))
        return listed, ""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [], f"the backends file {name} (${BACKENDS_FILE_ENV}) could not be read: {type(exc).__name__}: {exc}"


def choices() -> list[BackendChoice]:
    """Every backend this build knows, with an honest availability line: why each one that cannot run here
    cannot (no API key, no CUDA device, weights not in the cache with the command that fetches them, a
    missing package)."""
    from collabvr.sim.vgm import PROFILES
    from collabvr.sim.vlm import VERIFIER_PROFILES

    listed = [BackendChoice(f"sim:{p}", "vlm", f"Simulated VLM (verifier errs like {p})", True, True,
                            spec={"kind": "sim", "profile": p}) for p in VERIFIER_PROFILES]
    listed += [BackendChoice(f"sim:{p}", "vgm", f"Simulated VGM ({p} profile)", True, True,
                             spec={"kind": "sim", "profile": p}) for p in PROFILES]
    extra, problem = registered()
    for role, key, label, spec in catalog() + extra:
        why_not = unavailable(role, spec)
        listed.append(BackendChoice(key, role, label, False, not why_not, why_not, spec))
    if problem:
        listed.append(BackendChoice("registered", "vgm", "Registered backends", False, False, problem))
    return listed


def spec_for(role: str, key: str) -> BackendChoice:
    """The listed backend of `role` with `key`; BackendUnavailable if there is none."""
    for choice in choices():
        if choice.role == role and choice.key == key:
            return choice
    raise BackendUnavailable(f"unknown {role.upper()} backend {key!r}")

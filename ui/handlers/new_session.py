"""The new-session panel: the simulated task catalog and its preview, the backend lists with why a backend
cannot run here, and starting a session (a simulated task, or an uploaded image and prompt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from collabvr.backends import registry
from collabvr.config import BREAKPOINTS, LoopConfig
from collabvr.engine import MAX_PROMPT_CHARS, DecisionError
from collabvr.studio import MAX_IMAGE_SIDE, NewSimSession
from ui import render
from ui.handlers.common import Services, guarded, ok, problem


MAX_UPLOAD_BYTES = 25 * 1024 * 1024


def families() -> list[str]:
    from collabvr.sim import FAMILIES
    return list(FAMILIES)


def difficulties() -> list[str]:
    from collabvr.sim import DIFFICULTIES
    return list(DIFFICULTIES)


def preview_task(family: str, difficulty: str, seed: float | int | None) -> tuple[np.ndarray | None, str]:
    """The input image and task prompt a simulated task would start from."""
    from collabvr.sim import get_family, make_task

    try:
        task = make_task(family, difficulty, int(seed or 0))
        return get_family(family).render(task.initial), task.prompt
    except (ValueError, TypeError) as exc:
        return None, problem(str(exc))


def backend_choices(role: str) -> list[tuple[str, str]]:
    """(label, key) pairs for a dropdown; backends that cannot run here say so in their label."""
    pairs = []
    for c in registry.choices():
        if c.role == role:
            pairs.append((c.label if c.available else f"{c.label} (unavailable)", c.key))
    return pairs


def availability_markdown() -> str:
    lines = []
    for c in registry.choices():
        mark = "✔ available" if c.available else f"✘ {c.why_not}"
        sim = " · simulated" if c.simulated else ""
        lines.append(f"- **{c.role.upper()}** {render.esc(c.label)}{sim}: {render.esc(mark)}")
    return "\n".join(lines)


def _choice(role: str, key: str | None) -> registry.BackendChoice:
    for c in registry.choices():
        if c.role == role and c.key == key:
            return c
    raise registry.BackendUnavailable(f"pick a {role.upper()} backend (unknown: {key!r})")


def _sim_profile(role: str, key: str | None) -> str:
    choice = _choice(role, key)
    if not choice.available:
        raise registry.BackendUnavailable(f"{choice.label} cannot run here: {choice.why_not}")
    if not choice.simulated:
        raise registry.BackendUnavailable(f"{choice.label} cannot run simulated tasks; pick a simulated "
                                          f"{role.upper()} or upload an image")
    return choice.key.removeprefix("sim:")


def _real_vlm_for_sim(key: str | None) -> dict | None:
    """A real VLM may plan and verify a simulated task (it reads the pixels like any image): its spec, or None
    for a simulated VLM."""
    choice = _choice("vlm", key)
    if choice.simulated:
        return None
    if not choice.available:
        raise registry.BackendUnavailable(f"{choice.label} cannot run here: {choice.why_not}")
    return choice.spec


def loop_config(n_max: Any, m: Any, first_seconds: Any, later_seconds: Any,
                breakpoints: list[str] | None) -> LoopConfig:
    return LoopConfig(n_max=int(n_max), m=int(m), first_step_seconds=float(first_seconds),
                      later_seconds=float(later_seconds),
                      breakpoints=tuple(b for b in BREAKPOINTS if b in (breakpoints or [])))


def load_upload(path: str | None) -> np.ndarray:
    """An uploaded file as an RGB array; a clear DecisionError for anything that is not a usable picture."""
    if not path:
        raise DecisionError("choose an image file to upload")
    file = Path(path)
    if not file.is_file():
        raise DecisionError("the uploaded file is gone; upload it again")
    if file.stat().st_size > MAX_UPLOAD_BYTES:
        raise DecisionError(f"the file has {file.stat().st_size / 1e6:.0f} MB; at most "
                            f"{MAX_UPLOAD_BYTES // 1_000_000} MB are accepted")
    try:
        with Image.open(file) as image:
            width, height = image.size  # read from the header: a huge picture is refused before decoding
            if max(width, height) > MAX_IMAGE_SIDE:
                raise DecisionError(f"the image is {width}x{height}; each side must be at most {MAX_IMAGE_SIDE} px")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise DecisionError(f"{file.name} is not an image this app can read (PNG or JPEG)") from None


def new_session(svc: Services, source: str, family: str, difficulty: str, seed: Any, upload_path: str | None,
                upload_prompt: str, vlm_key: str, vgm_key: str, n_max: Any, m: Any, first_seconds: Any,
                later_seconds: Any, breakpoints: list[str] | None, latency: Any, title: str = "") -> tuple[str, str]:
    """Start a session; returns (session id or "", message)."""
    created: list[str] = []

    def work() -> str:
        config = loop_config(n_max, m, first_seconds, later_seconds, breakpoints)
        if source == "upload":
            image = load_upload(upload_path)
            prompt = (upload_prompt or "").strip()
            if not prompt:
                raise DecisionError("the task prompt is empty")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise DecisionError(f"the task prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS}")
            created.append(svc.studio.new_upload_session(image, prompt, vlm_key, vgm_key, config, title))
        else:
            real_vlm = _real_vlm_for_sim(vlm_key)
            spec = NewSimSession(family=family, difficulty=difficulty, seed=int(seed or 0), vlm_spec=real_vlm,
                                 vlm_profile=_sim_profile("vlm", vlm_key) if real_vlm is None else "gemini-2.5-pro",
                                 vgm_profile=_sim_profile("vgm", vgm_key),
                                 latency_s=float(latency if latency is not None else svc.default_latency),
                                 config=config, title=title)
            created.append(svc.studio.new_sim_session(spec))
        return ok(f"session {created[0]} started; press Step or Run")

    message = guarded(work)
    return (created[0] if created else ""), message

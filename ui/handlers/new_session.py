"""The new-session panel: the simulated task catalog and its preview, the backend lists with why a backend
cannot run here, and starting a session (a simulated task, or an uploaded image and prompt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from collabvr import registry
from collabvr.config import BREAKPOINTS, LoopConfig
from collabvr.decisions import DecisionError, check_prompt
from collabvr.studio import MAX_IMAGE_SIDE, NewSimSession, check_image
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
    """(label, key) pairs for a dropdown, those that can run here first; one that cannot says so in its
    label, before anyone picks it."""
    pairs = []
    for c in sorted((c for c in registry.choices() if c.role == role), key=lambda c: not c.available):
        pairs.append((c.label if c.available else f"✘ {c.label} (unavailable here)", c.key))
    return pairs


def backend_problems(source: str, vlm_key: str | None, vgm_key: str | None) -> list[str]:
    """Every reason the chosen backends cannot run the chosen kind of task, both roles (empty: they can)."""
    problems = []
    for role, key in (("vlm", vlm_key), ("vgm", vgm_key)):
        try:
            choice = _choice(role, key)
        except registry.BackendUnavailable as exc:
            problems.append(str(exc))
            continue
        if not choice.available:
            problems.append(f"{role.upper()} {choice.label} cannot run here: {choice.why_not}")
        elif source == "upload" and choice.simulated:
            problems.append(f"{role.upper()} {choice.label} only understands the simulated world's own tasks; "
                            "an uploaded image needs a real backend")
        elif source != "upload" and not choice.simulated and role == "vgm":
            # A real VLM may plan and verify a simulated task (it reads pixels like any image); only the
            # simulated world can render one.
            problems.append(f"VGM {choice.label} cannot render simulated tasks; pick a simulated VGM "
                            "or upload an image")
    return problems


def backend_check(source: str, vlm_key: str | None, vgm_key: str | None) -> str:
    """The line under the backend pickers: that the pair can run, or every reason it cannot (Markdown,
    escaped)."""
    problems = backend_problems(source, vlm_key, vgm_key)
    if not problems:
        return "✔ both backends can run this task here"
    return "\n".join(f"⚠ {render.esc(p)}" + "  " for p in problems)


def upload_preview(path: str | None) -> tuple[np.ndarray | None, str]:
    """The uploaded picture as the preview shows it, or why it cannot be used ("" when nothing is chosen)."""
    if not path:
        return None, ""
    try:
        return check_image(load_upload(path)), ""
    except DecisionError as exc:
        return None, problem(str(exc))


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
    return _choice(role, key).key.removeprefix("sim:")


def _check_backends(source: str, vlm_key: str | None, vgm_key: str | None) -> None:
    problems = backend_problems(source, vlm_key, vgm_key)
    if problems:
        raise registry.BackendUnavailable("; ".join(problems))


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
            image = check_image(load_upload(upload_path))
            prompt = check_prompt(upload_prompt or "", "task prompt")
            _check_backends(source, vlm_key, vgm_key)
            created.append(svc.studio.new_upload_session(image, prompt, vlm_key, vgm_key, config, title))
        else:
            _check_backends(source, vlm_key, vgm_key)
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

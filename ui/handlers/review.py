"""Frame-accurate review of a clip: the attempts of its step side by side, one frame at a time (decoded by the
server, so the frame shown is exactly the numbered one), jumps to the first failing frame and to where a kept
prefix ends, and notes anchored at a frame (Annotated events with `frame`), which show on the clip's timeline."""

from __future__ import annotations

from pathlib import Path

from collabvr.events import attempt_target, parse_attempt_target
from collabvr.state import AttemptState, SessionState
from collabvr.store import StoreError
from ui import render
from ui.handlers.annotation import attempt_targets
from ui.handlers.common import Services, guarded, need_name, need_session, ok, plain, problem


def review_targets(svc: Services, sid: str | None) -> list[str]:
    """Every attempt of the session, verified or not ("step:t/attempt:j"), in order."""
    return attempt_targets(svc, sid, verified_only=False)


def _attempt(svc: Services, sid: str, target: str) -> tuple[SessionState, AttemptState]:
    state = svc.studio.state(sid)
    step, attempt = parse_attempt_target(target)
    return state, state.step(step).attempt(attempt)


def compare(svc: Services, sid: str | None, target: str | None) -> tuple[str, int, str]:
    """(the HTML of the step's attempts side by side, the picked clip's last frame index, a message)."""
    empty = render.render_template("review.html", cards=None, message="Pick an attempt to review.")
    missing = need_session(sid)
    if missing or not target:
        return empty, 0, missing or ""
    try:
        state, picked = _attempt(svc, sid, target)
    except (StoreError, KeyError, ValueError) as exc:
        return empty, 0, problem(plain(exc))
    step_number, _ = parse_attempt_target(target)
    step = state.step(step_number)
    cards = []
    for attempt in step.attempts:
        notes = [a for a in state.annotations if a.target == attempt_target(step_number, attempt.number)]
        cards.append({"attempt": attempt, "picked": attempt.number == picked.number,
                      "player": render.clip_shown(attempt, svc.links, notes)})
    html = render.render_template("review.html", cards=cards, step=step_number, message="")
    return html, picked.candidate_frames - 1, ""


def frame(svc: Services, sid: str | None, target: str | None, index: object) -> tuple[str | None, str]:
    """(the frame's PNG at full size, the line that says where it sits in the clip)."""
    if not sid or not target:
        return None, ""
    try:
        _, attempt = _attempt(svc, sid, target)
        number = min(max(int(float(index or 0)), 0), attempt.candidate_frames - 1)
        path: Path = svc.links.full_frame(attempt.generated.candidate, number)
    except (StoreError, KeyError, ValueError, OSError) as exc:
        return None, render.esc(plain(exc))
    gen = attempt.generated
    failing = attempt.verified.first_failing_frame if attempt.verified is not None else None
    info = render.render_template("review_frame.html", frame=number, n_frames=attempt.candidate_frames,
                                  seconds=number / gen.fps, prefix_frames=gen.prefix_frames,
                                  from_attempt=gen.start.from_attempt, failing=failing)
    return str(path), info


def jump(svc: Services, sid: str | None, target: str | None, where: str) -> tuple[int | None, str]:
    """The frame to jump to: "failing" (the first failing frame) or "boundary" (the first new frame after a kept
    prefix); None and why when the clip has no such frame."""
    if not sid or not target:
        return None, problem("pick an attempt to review first")
    try:
        _, attempt = _attempt(svc, sid, target)
    except (StoreError, KeyError, ValueError) as exc:
        return None, problem(plain(exc))
    if where == "failing":
        failing = attempt.verified.first_failing_frame if attempt.verified is not None else None
        if failing is None:
            return None, problem(f"{target} has no failing frame (the verifier did not reject it)")
        return failing, ok(f"first failing frame of {target}: {failing}")
    if not attempt.generated.prefix_frames:
        return None, problem(f"{target} keeps no prefix: all its frames are new")
    return attempt.generated.prefix_frames, ok(f"new frames of {target} start at frame {attempt.generated.prefix_frames}")


def note_at(svc: Services, sid: str | None, target: str | None, index: object, text: str | None,
            who: str | None) -> str:
    """A note anchored at frame `index` of the attempt's clip (it shows on that clip's timeline)."""
    missing = need_session(sid) or need_name(who)
    if missing:
        return missing
    if not target:
        return problem("pick an attempt to review first")
    if not (text or "").strip():
        return problem("the note is empty")

    def work() -> str:
        number = int(float(index or 0))
        svc.studio.annotate(sid, target, "note", text or "", who or "", frame=number)
        return ok(f"note recorded at frame {number} of {target} by {(who or '').strip()}")
    return guarded(work)

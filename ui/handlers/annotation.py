"""Reliability labels: D1 plan depth for the session, D2 a human verdict and D3 a suggestion rating for an
attempt, notes; and moving between the attempts that can be labelled."""

from __future__ import annotations

from typing import Any

from collabvr.engine import DecisionError
from collabvr.events import attempt_target
from collabvr.store import StoreError
from ui.handlers.common import Services, guarded, need_name, need_session, ok


def annotate(svc: Services, sid: str | None, target: str | None, label: str, value: Any, actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        where = "session" if label == "D1" else (target or "")
        if label != "D1" and label != "note" and not target:
            raise DecisionError("pick an attempt to label")
        if label == "note" and not target:
            where = "session"
        svc.studio.annotate(sid, where, label, value if isinstance(value, str) else _whole(value), actor)
        return ok(f"{label} = {value} recorded for {where} by {actor.strip()}")
    return guarded(work)


def _whole(value: Any) -> int | str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return int(number) if number == int(number) else str(value)


def neighbour(targets: list[str], current: str | None, delta: int) -> str | None:
    """The attempt before (-1) or after (+1) `current` in `targets`, staying at the ends."""
    if not targets:
        return None
    if current not in targets:
        return targets[0] if delta > 0 else targets[-1]
    index = min(max(targets.index(current) + delta, 0), len(targets) - 1)
    return targets[index]


def attempt_targets(svc: Services, sid: str | None, verified_only: bool = True) -> list[str]:
    """The session's attempts ("step:t/attempt:j") in order: the verified ones (what can be labelled), or all."""
    if not sid:
        return []
    try:
        state = svc.studio.state(sid)
    except StoreError:
        return []
    return [attempt_target(s.number, a.number) for s in state.steps for a in s.attempts
            if a.verified is not None or not verified_only]

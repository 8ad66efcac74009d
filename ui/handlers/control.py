"""The control panel: step, run, pause, stop and the breakpoints of the open session."""

from __future__ import annotations

import time

from collabvr.config import BREAKPOINTS
from ui.handlers.common import BREAKPOINT_LABELS, Services, guarded, need_name, need_session, ok


def step(svc: Services, sid: str | None) -> str:
    missing = need_session(sid)
    if missing:
        return missing

    def work() -> str:
        svc.studio.start_step(sid)
        return ok("running one command")
    return guarded(work)


def run(svc: Services, sid: str | None) -> str:
    missing = need_session(sid)
    if missing:
        return missing

    def work() -> str:
        svc.studio.start_run(sid)
        return ok("running until the end, a breakpoint or a failure")
    return guarded(work)


def pause(svc: Services, sid: str | None) -> str:
    missing = need_session(sid)
    if missing:
        return missing

    def work() -> str:
        svc.store.get_session(sid)  # an unknown or deleted session is refused, not "not running"
        if not svc.studio.is_running(sid):
            return ok("the session is not running")
        svc.studio.pause(sid)
        return ok("pausing after the command in flight")
    return guarded(work)


def stop(svc: Services, sid: str | None) -> str:
    missing = need_session(sid)
    if missing:
        return missing

    def work() -> str:
        svc.store.get_session(sid)  # an unknown or deleted session is refused, not "not running"
        if not svc.studio.is_running(sid):
            return ok("the session is not running")
        svc.studio.stop(sid)
        return ok("stopping: a generation in flight is cancelled (Run resumes it)")
    return guarded(work)


def set_breakpoints(svc: Services, sid: str | None, breakpoints: list[str] | None, actor: str | None) -> str:
    missing = need_session(sid) or need_name(actor)
    if missing:
        return missing

    def work() -> str:
        svc.studio.set_breakpoints(sid, list(breakpoints or []), actor)
        names = ", ".join(BREAKPOINT_LABELS[b] for b in BREAKPOINTS if b in (breakpoints or [])) or "none"
        return ok(f"breakpoints: {names}")
    return guarded(work)


def wait_idle(svc: Services, sid: str, timeout: float = 60.0) -> None:
    """Block until the session's worker is idle (tests and scripts)."""
    deadline = time.time() + timeout
    svc.studio.wait(sid, timeout)
    while svc.studio.is_running(sid) and time.time() < deadline:
        time.sleep(0.02)

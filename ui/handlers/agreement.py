"""The agreement panel: people's labels against the VLM (collabvr.agreement) over one session or all of
them, as a table and three charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collabvr.state import SessionState
from collabvr.store import StoreError
from ui import render
from ui.handlers.common import Services, need_session, ok, plain, problem


SCOPES = ("this session", "all sessions")


@dataclass
class AgreementView:
    table: list[list[Any]]
    report: Any
    figures: tuple[Any, Any, Any]
    message: str


def agreement(svc: Services, sid: str | None, scope: str) -> AgreementView:
    """Human-vs-VLM agreement over this session or every session, with the three charts."""
    empty = AgreementView([], None, (None, None, None), "")
    try:
        from collabvr.agreement import agreement as compute
    except ImportError:
        empty.message = problem("agreement figures are not available in this build (collabvr.agreement missing)")
        return empty
    try:
        if scope == "all sessions":
            states = [svc.studio.state(i) for i in svc.store.session_ids()]
        else:
            missing = need_session(sid)
            if missing:
                empty.message = missing
                return empty
            states = [svc.studio.state(sid)]
        report = compute(states)
    except (StoreError, ValueError) as exc:
        empty.message = problem(plain(exc))
        return empty
    table = agreement_table(report)
    figures = _charts(states[0] if scope != "all sessions" and states else None, report, states)
    n = _get(report, "d2", "n")
    notes = [str(x) for x in (getattr(report, "notes", None) or [])]
    text = f"agreement over {len(states)} session(s), {n or 0} D2 label(s)"
    if notes:
        text += " — " + "; ".join(render.esc(x) for x in notes[:5])
    return AgreementView(table, report, figures, ok(text))


def _get(report: Any, part: str, key: str) -> Any:
    section = getattr(report, part, None) or {}
    if isinstance(section, dict):
        return section.get(key)
    return getattr(section, key, None)


def _fmt(value: Any) -> Any:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return round(value, 3)
    return value


def agreement_table(report: Any) -> list[list[Any]]:
    rows = [
        ["D2 human vs VLM verdict", "labels", _get(report, "d2", "n")],
        ["D2 human vs VLM verdict", "confusion (human → VLM)", _confusion_text(_get(report, "d2", "confusion"))],
        ["D2 human vs VLM verdict", "accept recall", _get(report, "d2", "accept_recall")],
        ["D2 human vs VLM verdict", "reject recall", _get(report, "d2", "reject_recall")],
        ["D2 human vs VLM verdict", "agreement", _get(report, "d2", "agreement")],
        ["D2 human vs VLM verdict", "Cohen's kappa", _get(report, "d2", "kappa")],
        ["D1 plan depth", "sessions", _get(report, "d1", "n")],
        ["D1 plan depth", "exact match", _get(report, "d1", "exact_match")],
        ["D1 plan depth", "mean absolute error", _get(report, "d1", "mae")],
        ["D3 suggestion rating", "ratings", _get(report, "d3", "n")],
        ["D3 suggestion rating", "mean (1-3)", _get(report, "d3", "mean")],
    ]
    return [[a, b, _fmt(c)] for a, b, c in rows]


def _confusion_text(confusion: Any) -> str:
    if not confusion:
        return "n/a"
    if isinstance(confusion, dict):
        cells = []
        for human, row in confusion.items():
            if isinstance(row, dict):
                cells += [f"{human}→{vlm}: {n}" for vlm, n in row.items()]
            else:
                cells.append(f"{human}: {row}")
        return ", ".join(cells)
    return str(confusion)


def _charts(state: SessionState | None, report: Any, states: list[SessionState]) -> tuple[Any, Any, Any]:
    try:
        from ui import charts
    except ImportError:
        return None, None, None
    target = state if state is not None else (states[-1] if states else None)
    try:
        seconds = charts.vgm_seconds_chart(target) if target is not None else None
        confusion = charts.confusion_chart(report)
        verdicts = charts.verdicts_chart(target) if target is not None else None
    except Exception:  # a chart must never take the table down with it
        return None, None, None
    return seconds, confusion, verdicts

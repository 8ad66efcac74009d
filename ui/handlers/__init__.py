"""What each button does, as plain functions of the services and the inputs (testable without a browser),
one module per panel:

    common.py       Services (what handlers touch), ok/problem messages, the guards
    view.py         the view of one open session (timeline, status line, the panels' choices)
    new_session.py  the task catalog, backend lists, starting a session
    control.py      step, run, pause, stop, breakpoints
    decisions.py    override, edit the next action, route (regen, split, fallback), fork
    annotation.py   D1/D2/D3 labels and notes
    agreement.py    people vs the VLM: table and charts
    bench.py        benchmark runs: summary table, figure, samples
    sessions.py     list, delete, export, final video
    study.py        the Study tab: make a study, the blind labelling queue, adjudication, figures, export
    review.py       frame-accurate review of a clip, notes anchored at a frame

Each handler asks the Studio, the store, collabvr.report or collabvr.agreement and returns plain values:
messages, HTML, lists, file paths. People's mistakes and refused decisions come back as a message that
starts with "⚠"; nothing here raises for those. The Gradio wiring (ui/wiring.py) turns the values into
component updates. Every handler is importable from here (`from ui import handlers; handlers.step(...)`).
"""

from ui.handlers.agreement import SCOPES, AgreementView, agreement, agreement_table
from ui.handlers.annotation import annotate, attempt_targets, neighbour
from ui.handlers.bench import SAMPLE_COLUMNS as BENCH_SAMPLE_COLUMNS, bench_runs, bench_view
from ui.handlers.common import BREAKPOINT_LABELS, Services, is_problem, ok, problem
from ui.handlers.control import pause, run, set_breakpoints, step, stop, wait_idle
from ui.handlers.decisions import (
    decision_focus, edit_action, fork, override, regen_preview, regen_source, route_fallback, route_regen,
    route_split,
)
from ui.handlers.new_session import (
    MAX_UPLOAD_BYTES, availability_markdown, backend_check, backend_choices, backend_problems, difficulties,
    families, load_upload, loop_config, new_session, preview_task, upload_preview,
)
from ui.handlers.sessions import (
    SESSION_COLUMNS, STATUS_FILTERS, delete_session, export_session, final_video, list_sessions,
)
from ui.handlers import review, study  # used as handlers.study.<name>, handlers.review.<name>
from ui.handlers.view import (
    SHOWN_STATUSES, SessionView, activity_key, open_session, refresh, session_view, shown_status, was_running,
)

__all__ = [
    "BENCH_SAMPLE_COLUMNS", "BREAKPOINT_LABELS", "MAX_UPLOAD_BYTES", "bench_runs", "bench_view", "SCOPES", "SESSION_COLUMNS", "SHOWN_STATUSES", "STATUS_FILTERS",
    "AgreementView", "Services", "SessionView", "activity_key", "agreement", "agreement_table", "annotate",
    "attempt_targets", "availability_markdown", "backend_check", "backend_choices", "backend_problems",
    "decision_focus", "delete_session", "difficulties", "edit_action", "export_session", "families",
    "final_video", "fork", "is_problem", "list_sessions", "load_upload", "loop_config", "neighbour",
    "new_session", "ok", "open_session", "override", "pause", "preview_task", "problem", "refresh",
    "regen_preview", "regen_source", "route_fallback", "route_regen", "route_split", "run", "session_view",
    "set_breakpoints", "shown_status", "step", "stop", "upload_preview", "wait_idle", "was_running",
    "review", "study",
]

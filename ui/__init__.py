"""The audit app's Gradio UI: one module per panel, one place that wires events (ui/wiring.py), handlers as
plain functions, one module per panel (ui/handlers/), and the timeline's HTML as pure functions of a
session's state (ui/render.py). No loop logic lives here: the UI only calls the Studio, the store,
collabvr.report and collabvr.agreement.

Stable hooks for browser and API tests (keep them when you change the page):

elem_id (interactive components and the main displays)
    top bar        session-id, annotator
    new session    new-session (accordion), task-source, family, difficulty, seed, task-preview, task-prompt,
                   upload-image, upload-prompt, vlm-choice, vgm-choice, backend-check, backend-availability,
                   n-max, m, first-seconds, later-seconds, sim-latency, new-breakpoints, start-session,
                   new-session-message
    control        status-line (.status-badge.status-<idle|working|held|failed|interrupted|finished>),
                   btn-step, btn-run, btn-pause, btn-stop, breakpoints, control-message, final-video, timeline
    decisions      decide-panel, decision-attempt, decision-focus, override-reason, override-suggestion,
                   btn-override-accept,
                   btn-override-reject, next-action, btn-save-action, route-panel, regen-frame, regen-preview,
                   btn-regen, split-steps, btn-split, btn-fallback, decision-message, fork-panel, fork-step,
                   btn-fork
    annotation     annotate-panel, annot-target, btn-prev-attempt, btn-next-attempt, btn-d2-accept,
                   btn-d2-reject, btn-d3-1, btn-d3-2, btn-d3-3, d1, btn-d1, note, btn-note,
                   annotation-message, shortcuts (accordion with the cheat sheet; "?" also toggles
                   #shortcut-sheet)
    agreement      agreement-panel, agreement-scope, btn-agreement, agreement-message, agreement-table,
                   chart-seconds, chart-confusion, chart-verdicts
    sessions tab   session-search, session-status, btn-list-sessions, sessions-table, session-pick, btn-open,
                   btn-resume, btn-export, confirm-delete, btn-delete, sessions-message, export-files
    bench tab      tab-bench, bench-run, btn-bench-refresh, bench-message, bench-table (rows
                   tr[data-method][data-group]), bench-figure, bench-samples (a click on a row opens its session)
    review         review-panel, review-attempt, review-compare (.review-card[data-step][data-attempt]),
                   review-frame, btn-frame-prev, btn-frame-next, btn-jump-failing, btn-jump-boundary,
                   review-info (.review-frame-info[data-frame]), review-image, review-note, btn-review-note,
                   review-message
    study tab      tab-study, study-panel, study-pick, btn-study-refresh, study-progress, study-new, study-name,
                   study-sessions, study-labels, study-per-item, study-annotators, study-blind, btn-study-create,
                   study-create-message, study-label-panel, study-item (.study-item[data-item][data-kind]),
                   study-buttons-d2 (btn-q-accept, btn-q-reject), study-buttons-d3 (btn-q-1..3),
                   study-depth (btn-q-depth-1..6, q-d1, btn-q-d1), btn-q-back, btn-q-next, q-note, btn-q-note,
                   study-message, study-shortcuts, study-adjudicate, btn-disagreements, study-disagreements,
                   adj-item, adj-value, adj-reason, btn-adjudicate, adj-message, study-figures-panel,
                   btn-study-figures, btn-study-export, study-figures-message, study-tables,
                   chart-study-kappa, chart-study-confusion, study-export-file

The *-message components are read-only text boxes (ui/widgets.py): their value is the plain message.

api_name (gradio_client: Client(url).predict(..., api_name="/<name>"))
    new_session(source, family, difficulty, seed, upload_image, upload_prompt, vlm, vgm, n_max, m,
                first_seconds, later_seconds, breakpoints, latency) -> (session_id, message)
    step, run, pause, stop (session_id, decision_attempt, annot_target) -> (message, status, timeline, ...)
    refresh (session_id, decision_attempt, annot_target) -> (status, timeline, ..., control message)
    set_breakpoints (session_id, decision_attempt, annot_target, breakpoints, annotator) -> (message, ...)
    override (session_id, target, verdict, reason, suggestion, annotator) -> (message, timeline)
    edit_action (session_id, decision_attempt, annot_target, text, annotator) -> (message, ...)
    route_regen (session_id, decision_attempt, annot_target, attempt, frame, suggestion, annotator)
                -> (message, reason, suggestion, status, timeline, ...)
    route_split (session_id, decision_attempt, annot_target, sub_steps, annotator)
    route_fallback (session_id, decision_attempt, annot_target, annotator)
    annotate (session_id, target, label, value, annotator) -> (message, timeline)
    agreement (session_id, scope) -> (message, table, chart, chart, chart)
    fork (session_id, step) -> (new session_id, message)
    list_sessions (search, status, picked) -> (table, session choices)
    open_session (session_id) -> (session_id, message)
    delete_session (session_id, confirmed, open_session_id, search, status) -> (message, table, ...)
    export_session (session_id) -> (files, message)
    bench_view (run_id) -> (runs, table, figure, samples, message)
    note_at_frame (session_id, ..., attempt, frame, text, annotator) -> (message, ...)
    study_next (study, annotator, item) -> (next item id, its HTML, message); study_label (study, annotator,
                item, value) -> the same for the item after; study_figures (study) -> (tables, charts, message);
                study_export (study) -> (file, message)

CSS hooks of the timeline: .step-card[data-step], .attempt-row[data-step][data-attempt],
.verdict-badge.accept|.reject, .prompt-diff (with <del>/<ins>), .frames img.failing, .route, .ssim,
.human-decision (.override.current|.earlier, .edit), .simulated-label, video.clip[poster], .backend-failed,
.result-discarded, .partial-progress, .session-finished, .selection (Pass@k), .critique[data-round] (VideoTPO),
.judged (a benchmark's rubric judge); clip players: .clip-player[data-fps][data-frames] with
.clip-timeline .mark.boundary|.failing|.moment-note[data-frame], .clip-step, .clip-speed, .clip-jump,
.frame-readout; notes at a frame: .annotation.moment[data-frame]; the status line's .gpu-queue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


_HERE = Path(__file__).resolve().parent
CSS = (_HERE / "style.css").read_text(encoding="utf-8")
HEAD = "<script>\n" + (_HERE / "shortcuts.js").read_text(encoding="utf-8") + "\n</script>"


def launch_options() -> dict[str, Any]:
    """What Gradio 6 takes at launch() rather than in Blocks(): the page's CSS and the shortcut script."""
    return {"css": CSS, "head": HEAD}


def create_app(*args: Any, **kwargs: Any):
    """ui.wiring.create_app(studio, store, artifacts, data_dir=None, default_latency=0.0) -> gr.Blocks."""
    from ui.wiring import create_app as build

    return build(*args, **kwargs)


__all__ = ["CSS", "HEAD", "create_app", "launch_options"]

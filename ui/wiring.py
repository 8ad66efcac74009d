"""The one place where the panels' events are wired to the handlers, and the app is put together."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from collabvr.artifacts import ArtifactFolder
from collabvr.studio import Studio
from storage import SQLiteEventStore, private_folder
from ui import handlers, render
from ui.annotation import create_agreement, create_annotation
from ui.control import create_control, create_timeline
from ui.decisions import create_decisions
from ui.handlers import Services, SessionView
from ui.new_session import create_new_session
from ui.sessions import create_sessions


TIMER_SECONDS = 0.7
STORAGE_KEY = "collabvr-studio"
KEY_NAME = "browser-state.key"
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
QUIET: dict[str, Any] = {"show_progress": "hidden"}


def create_app(studio: Studio, store: SQLiteEventStore, artifacts: ArtifactFolder, *,
               data_dir: Path | str | None = None, default_latency: float = 0.0) -> gr.Blocks:
    """The audit app. `data_dir` (default: the artifact folder's parent, as storage.open_data_dir lays it
    out) holds the frame cache, exports and the private folder. Launch it serving only
    storage.served_folders(data_dir) and blocking the database and private folder, as app.py's
    served_paths does."""
    if artifacts is not studio.artifacts:
        raise ValueError("the Studio and the app must share one artifact folder")
    svc = Services.create(studio, store, data_dir or artifacts.root.parent, default_latency)
    with gr.Blocks(title="CollabVR Studio", fill_width=True) as demo:
        _build(svc, demo)
    demo.services = svc  # type: ignore[attr-defined]  # for tests and scripts
    return demo


def _browser_secret(data_dir: Path) -> str | None:
    """The key BrowserState encrypts this browser's saved session and annotator with. Gradio's default is a
    new random key per launch, which loses both at every server restart; keep one per data folder instead,
    in its private folder, which is never served (None, i.e. Gradio's default, when it cannot be kept)."""
    try:
        path = private_folder(data_dir) / KEY_NAME
        legacy = Path(data_dir) / KEY_NAME  # where earlier versions kept it, inside the served data folder
        if legacy.is_file() and not path.exists():
            os.replace(legacy, path)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
                out.write(secrets.token_urlsafe(24))
        except FileExistsError:  # kept from an earlier launch (or another process wrote it first)
            pass
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _build(svc: Services, demo: gr.Blocks) -> None:
    saved = gr.BrowserState({"session_id": "", "annotator": ""}, storage_key=STORAGE_KEY,
                            secret=_browser_secret(svc.data_dir))
    seen = gr.State({})
    with gr.Row(elem_id="topbar", equal_height=True):
        gr.HTML('<div class="brand"><h1>CollabVR Studio</h1><span>plan · generate · verify · route — '
                'audit every decision</span></div>', scale=3)
        sid = gr.Textbox("", label="Open session", interactive=False, elem_id="session-id", scale=1,
                         min_width=160)
        annotator = gr.Textbox("", label="Annotator (your name; kept in this browser)", max_length=80,
                               placeholder="required for decisions and labels", elem_id="annotator", scale=1,
                               min_width=220)
    with gr.Tabs(elem_id="tabs"):
        with gr.Tab("Session", id="tab-session"):
            with gr.Accordion("New session", open=True, elem_id="new-session") as new_panel:
                ns = create_new_session(svc.default_latency)
            ctl = create_control()
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=560):
                    timeline = create_timeline()
                with gr.Column(scale=1, min_width=320, elem_id="sidebar"):
                    dec = create_decisions()
                    ann = create_annotation()
            with gr.Accordion("Agreement: people vs the VLM", open=False, elem_id="agreement-panel"):
                agr = create_agreement()
        with gr.Tab("Sessions", id="tab-sessions"):
            ses = create_sessions()
    timer = gr.Timer(TIMER_SECONDS)

    # Everything that shows one session; every listener that changes a session re-renders it.
    view_outputs = [ctl["status"], timeline, dec["attempt"], dec["next_action"], dec["fork_step"], ann["target"],
                    ctl["breakpoints"], ses["video"], seen]
    view_inputs = [sid, seen, dec["attempt"], ann["target"]]

    def show(session_id: str, last: dict, attempt: str | None, target: str | None, force: bool = True) -> list:
        if not session_id:
            # Only a person's action blanks the view. A timer tick sent before a session opened can be
            # answered after that session's view was shown; blanking then left the page empty for good,
            # because `seen` already said the session was on screen.
            return _no_session() if force else [gr.skip()] * len(view_outputs)
        if force:
            view, changed = handlers.session_view(svc, session_id), True
        else:
            if last.get("sid") != session_id:
                last = {}
            view, changed = handlers.refresh(svc, session_id, last.get("seq"), last.get("act"))
        if view is None or not changed:
            return [gr.skip()] * len(view_outputs)
        return _view_updates(view, last if last.get("sid") == session_id else {}, attempt, target)

    def show_forced(session_id, last, attempt, target):
        return show(session_id, last, attempt, target, force=True)

    def with_view(fn: Callable[..., str]) -> Callable[..., list]:
        """A decision's handler, followed at once by the re-rendered session."""
        def run(session_id, last, attempt, target, *args):
            message = fn(session_id, *args)
            return [message] + show(session_id, last, attempt, target)
        return run

    # ----- new session ----------------------------------------------------------------------------------
    ns["source"].change(lambda s: (gr.update(visible=s == "sim"), gr.update(visible=s == "upload")),
                        ns["source"], [ns["sim_group"], ns["upload_group"]], **PRIVATE, **QUIET)
    gr.on([ns["family"].change, ns["difficulty"].change, ns["seed"].change], handlers.preview_task,
          [ns["family"], ns["difficulty"], ns["seed"]], [ns["preview"], ns["prompt"]], **PRIVATE, **QUIET)

    def new_session(*args):
        new_id, message = handlers.new_session(svc, *args)
        if not new_id:
            return gr.skip(), message, gr.skip()
        return new_id, message, gr.update(open=False)

    ns["start"].click(
        new_session,
        [ns["source"], ns["family"], ns["difficulty"], ns["seed"], ns["upload_image"], ns["upload_prompt"],
         ns["vlm"], ns["vgm"], ns["n_max"], ns["m"], ns["first_seconds"], ns["later_seconds"],
         ns["new_breakpoints"], ns["latency"]],
        [sid, ns["message"], new_panel], api_name="new_session",
    ).then(show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    # ----- driving -------------------------------------------------------------------------------------
    for key, fn, name in (("step", handlers.step, "step"), ("run", handlers.run, "run"),
                          ("pause", handlers.pause, "pause"), ("stop", handlers.stop, "stop")):
        ctl[key].click(lambda s, *rest, fn=fn: [fn(svc, s)] + show(s, *rest), view_inputs,
                       [ctl["message"]] + view_outputs, api_name=name, **QUIET)
    ctl["breakpoints"].input(
        with_view(lambda s, bps, who: handlers.set_breakpoints(svc, s, bps, who)),
        view_inputs + [ctl["breakpoints"], annotator], [ctl["message"]] + view_outputs,
        api_name="set_breakpoints", **QUIET)
    timer.tick(lambda *a: show(*a, force=False), view_inputs, view_outputs, api_name="refresh",
               concurrency_limit=None, **QUIET)

    # ----- decisions -------------------------------------------------------------------------------------
    decision_outputs = [dec["message"]] + view_outputs
    for key, verdict in (("accept", "accept"), ("reject", "reject")):
        dec[key].click(
            with_view(lambda s, target, reason, suggestion, who, verdict=verdict:
                      handlers.override(svc, s, target, verdict, reason, suggestion, who)),
            view_inputs + [dec["attempt"], dec["reason"], dec["suggestion"], annotator], decision_outputs,
            **PRIVATE, **QUIET)

    @gr.api(api_name="override")
    def override_api(session_id: str, target: str, verdict: str, reason: str, suggestion: str,
                     annotator: str) -> tuple[str, str]:
        """Flip the verdict of an attempt ("step:t/attempt:j") of the current step; returns (message, timeline)."""
        message = handlers.override(svc, session_id, target, verdict, reason, suggestion, annotator)
        return message, _timeline_html(svc, session_id)

    dec["save_action"].click(
        with_view(lambda s, text, who: handlers.edit_action(svc, s, text, who)),
        view_inputs + [dec["next_action"], annotator], decision_outputs, api_name="edit_action", **QUIET)
    dec["regen"].click(
        with_view(lambda s, target, frame, suggestion, who:
                  handlers.route_regen(svc, s, target, frame, suggestion, who)),
        view_inputs + [dec["attempt"], dec["frame"], dec["suggestion"], annotator], decision_outputs,
        api_name="route_regen", **QUIET)
    dec["split"].click(
        with_view(lambda s, n, who: handlers.route_split(svc, s, n, who)),
        view_inputs + [dec["split_steps"], annotator], decision_outputs, api_name="route_split", **QUIET)
    dec["fallback"].click(
        with_view(lambda s, who: handlers.route_fallback(svc, s, who)),
        view_inputs + [annotator], decision_outputs, api_name="route_fallback", **QUIET)

    # The view re-sets the attempt picker on every refresh; the frame slider is reset only when the picked
    # attempt really changes, so a refresh never overwrites the frame a person chose.
    regen_for = gr.State("")

    def regen_source(session_id, target, shown_for):
        key = f"{session_id}|{target}"
        if key == shown_for:
            return gr.skip(), gr.skip(), shown_for
        last, suggested = handlers.regen_source(svc, session_id, target)
        return (gr.update(maximum=max(last, 1), value=suggested),
                handlers.regen_preview(svc, session_id, target, suggested), key)

    dec["attempt"].change(regen_source, [sid, dec["attempt"], regen_for], [dec["frame"], dec["preview"], regen_for],
                          **PRIVATE, **QUIET)
    dec["frame"].release(lambda s, t, f: handlers.regen_preview(svc, s, t, f), [sid, dec["attempt"], dec["frame"]],
                         dec["preview"], **PRIVATE, **QUIET)

    def fork(session_id, step_number):
        new_id, message = handlers.fork(svc, session_id, step_number)
        return (new_id or gr.skip()), message

    dec["fork"].click(fork, [sid, dec["fork_step"]], [sid, dec["message"]], api_name="fork", **QUIET).then(
        show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    # ----- annotation --------------------------------------------------------------------------------------
    annotation_outputs = [ann["message"]] + view_outputs
    labelled = (("d2_accept", "D2", "accept"), ("d2_reject", "D2", "reject"),
                ("d3_1", "D3", 1), ("d3_2", "D3", 2), ("d3_3", "D3", 3))
    for key, label, value in labelled:
        ann[key].click(
            with_view(lambda s, target, who, label=label, value=value:
                      handlers.annotate(svc, s, target, label, value, who)),
            view_inputs + [ann["target"], annotator], annotation_outputs, **PRIVATE, **QUIET)
    ann["d1_save"].click(
        with_view(lambda s, depth, who: handlers.annotate(svc, s, "session", "D1", depth, who)),
        view_inputs + [ann["d1"], annotator], annotation_outputs, **PRIVATE, **QUIET)
    ann["note_save"].click(
        with_view(lambda s, target, text, who: handlers.annotate(svc, s, target, "note", text or "", who)),
        view_inputs + [ann["target"], ann["note"], annotator], annotation_outputs, **PRIVATE, **QUIET)

    @gr.api(api_name="annotate")
    def annotate_api(session_id: str, target: str, label: str, value: str, annotator: str) -> tuple[str, str]:
        """Record a label: D1 (target "session", a depth), D2 (an attempt, accept|reject), D3 (an attempt, 1-3)
        or note; returns (message, timeline)."""
        message = handlers.annotate(svc, session_id, target, label, value, annotator)
        return message, _timeline_html(svc, session_id)

    for key, delta in (("prev", -1), ("next", +1)):
        ann[key].click(lambda s, t, delta=delta: handlers.neighbour(handlers.attempt_targets(svc, s), t, delta),
                       [sid, ann["target"]], ann["target"], **PRIVATE, **QUIET)

    # ----- agreement -----------------------------------------------------------------------------------------
    def agreement(session_id, scope):
        result = handlers.agreement(svc, session_id, scope)
        return (result.message, result.table, *result.figures)

    agr["compute"].click(agreement, [sid, agr["scope"]],
                         [agr["message"], agr["table"], agr["chart_seconds"], agr["chart_confusion"],
                          agr["chart_verdicts"]], api_name="agreement")

    # ----- sessions view -----------------------------------------------------------------------------------------
    def list_sessions(search, status, picked):
        table, ids = handlers.list_sessions(svc, search, status)
        return table, gr.update(choices=ids, value=picked if picked in ids else (ids[0] if ids else None))

    list_event = dict(fn=list_sessions, inputs=[ses["search"], ses["status"], ses["pick"]],
                      outputs=[ses["table"], ses["pick"]])
    ses["list"].click(**list_event, api_name="list_sessions")
    gr.on([ses["search"].submit, ses["status"].change], **list_event, **PRIVATE, **QUIET)
    def pick_row(evt: gr.SelectData):
        return evt.row_value[0] if evt.row_value else gr.skip()

    ses["table"].select(pick_row, None, ses["pick"], **PRIVATE, **QUIET)

    def open_session(picked):
        view, message = handlers.open_session(svc, picked)
        return (picked if view is not None else gr.skip()), message

    ses["open"].click(open_session, ses["pick"], [sid, ses["message"]], api_name="open_session").then(
        show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    def resume(picked):
        if not picked:
            return gr.skip(), handlers.problem("pick a session first")
        message = handlers.run(svc, picked)
        return (picked if not handlers.is_problem(message) else gr.skip()), message

    ses["resume"].click(resume, ses["pick"], [sid, ses["message"]], **PRIVATE).then(
        show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    def delete(picked, confirmed, current, search, status):
        message = handlers.delete_session(svc, picked, confirmed)
        table, ids = handlers.list_sessions(svc, search, status)
        done = not handlers.is_problem(message)
        return (message, table, gr.update(choices=ids, value=ids[0] if ids else None), False,
                "" if done and current == picked else gr.skip())

    ses["delete"].click(delete, [ses["pick"], ses["confirm"], sid, ses["search"], ses["status"]],
                        [ses["message"], ses["table"], ses["pick"], ses["confirm"], sid],
                        api_name="delete_session").then(show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    def export(picked):
        paths, message = handlers.export_session(svc, picked)
        return (paths or None), message

    ses["export"].click(export, ses["pick"], [ses["files"], ses["message"]], api_name="export_session")

    # The sessions view follows the open session (a new one, a fork, one opened by id), so Export and
    # Delete act on what is on screen unless the person picks another.
    def follow(session_id, search, status):
        table, ids = handlers.list_sessions(svc, search, status)
        return table, gr.update(choices=ids, value=session_id if session_id in ids else (ids[0] if ids else None))

    sid.change(follow, [sid, ses["search"], ses["status"]], [ses["table"], ses["pick"]], **PRIVATE, **QUIET)

    # ----- what a page reload restores ----------------------------------------------------------------------------
    # Both fields are written from the page's current values, one event at a time and in order. Merging into
    # the saved value instead lost the session id whenever a name was typed while the new session's save was
    # still on its way: the second save still carried the old copy.
    def remember(session_id: str, name: str) -> dict:
        return {"session_id": session_id or "", "annotator": (name or "").strip()}

    gr.on([sid.change, annotator.change], remember, [sid, annotator], saved, concurrency_limit=1,
          concurrency_id="browser-state", **PRIVATE, **QUIET)

    def restore(kept, *rest):
        kept = kept or {}
        session_id = kept.get("session_id") or ""
        try:
            if session_id:
                svc.store.get_session(session_id)
        except Exception:  # deleted meanwhile, or another data folder: start empty
            session_id = ""
        table, ids = handlers.list_sessions(svc, "", "all")
        view = show(session_id, {}, None, None)
        picked = session_id if session_id in ids else (ids[0] if ids else None)
        return [session_id, kept.get("annotator") or "", table, gr.update(choices=ids, value=picked),
                gr.update(open=not session_id)] + view

    demo.load(restore, [saved], [sid, annotator, ses["table"], ses["pick"], new_panel] + view_outputs,
              **PRIVATE, **QUIET)


def _no_session() -> list:
    empty = gr.update(choices=[], value=None)
    return [render.empty_status(), render.empty_timeline(), empty, "", empty, empty, [], None, {}]


def _view_updates(view: SessionView, last: dict, attempt: str | None, target: str | None) -> list:
    """Component updates for a fresh view. Only the status line follows the worker's progress; the rest is
    sent when the log grew, so that an idle page does not flicker and what a person types is kept."""
    kept = {"sid": view.session_id, "seq": view.seq, "act": view.activity_key, "instr": view.instruction,
            "video": view.final_video}
    if last and view.seq == last.get("seq"):
        return [view.status] + [gr.skip()] * 7 + [kept]
    decision = gr.update(choices=view.decision_attempts,
                         value=attempt if attempt in view.decision_attempts
                         else (view.failed_attempt or (view.decision_attempts[-1] if view.decision_attempts else None)))
    instruction = view.instruction if not last or view.instruction != last.get("instr") else gr.skip()
    steps = [f"step {n}" for n in view.steps]
    fork_step = gr.update(choices=steps, value=steps[-1] if steps else None)
    annot = gr.update(choices=view.attempts,
                      value=target if target in view.attempts else (view.attempts[-1] if view.attempts else None))
    video = view.final_video if not last or view.final_video != last.get("video") else gr.skip()
    return [view.status, view.timeline, decision, instruction, fork_step, annot, view.breakpoints, video, kept]


def _timeline_html(svc: Services, session_id: str) -> str:
    try:
        return handlers.session_view(svc, session_id).timeline if session_id else render.empty_timeline()
    except Exception:
        return render.empty_timeline("the session could not be read")

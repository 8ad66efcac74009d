"""The one place where the panels' events are wired to the handlers, and the app is put together."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from collabvr.artifacts import ArtifactFolder
from collabvr.decisions import MAX_NAME_CHARS
from collabvr.studio import Studio
from storage import SQLiteEventStore, private_folder
from ui import handlers, render
from ui.access import actor_for
from ui.annotation import create_agreement, create_annotation
from ui.bench import create_bench
from ui.control import create_control, create_final_video, create_timeline
from ui.decisions import create_decisions
from ui.handlers import Services, SessionView
from ui.new_session import create_new_session
from ui.review import create_review
from ui.sessions import create_sessions
from ui.study import create_study_tab


TIMER_SECONDS = 0.7
STEP_SETTLE_S = 0.3  # a Step's answer waits this long at most for its command (most simulated ones take less)
LIST_SECONDS = 3.0  # how often the sessions list is brought up to date while its tab is open
SESSION_TAB, SESSIONS_TAB, BENCH_TAB, STUDY_TAB = "tab-session", "tab-sessions", "tab-bench", "tab-study"
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
                'audit every decision</span></div>', scale=3, min_width=240)
        # The open session's id: shown, copyable, not editable (open another in the Sessions tab).
        sid = gr.Textbox("", label="Open session", interactive=False, elem_id="session-id", scale=1,
                         min_width=140, placeholder="none yet")
        annotator = gr.Textbox("", label="Annotator (your name)",
                               placeholder=f"needed to decide and label; at most {MAX_NAME_CHARS} characters",
                               elem_id="annotator", scale=1, min_width=160)
    with gr.Tabs(elem_id="tabs") as tabs:
        with gr.Tab("Session", id=SESSION_TAB) as session_tab:
            with gr.Accordion("New session", open=True, elem_id="new-session") as new_panel:
                ns = create_new_session(svc.default_latency)
            ctl = create_control()
            final_video = create_final_video()
            with gr.Row(equal_height=False, elem_id="session-main"):
                with gr.Column(scale=3, min_width=300, elem_id="timeline-column"):
                    timeline = create_timeline()
                with gr.Column(scale=1, min_width=300, elem_id="sidebar"):
                    dec = create_decisions()
                    ann = create_annotation()
            with gr.Accordion("Review a clip, frame by frame", open=False, elem_id="review-panel"):
                rv = create_review()
            with gr.Accordion("Agreement: people vs the VLM", open=False, elem_id="agreement-panel"):
                agr = create_agreement()
        with gr.Tab("Sessions", id=SESSIONS_TAB) as sessions_tab:
            ses = create_sessions()
        with gr.Tab("Study", id=STUDY_TAB, elem_id="tab-study") as study_tab:
            st = create_study_tab()
        with gr.Tab("Bench", id=BENCH_TAB, elem_id="tab-bench") as bench_tab:
            bench = create_bench()
    timer = gr.Timer(TIMER_SECONDS)
    list_timer = gr.Timer(LIST_SECONDS, active=False)

    # Everything that shows one session; every listener that changes a session re-renders it. The control
    # panel's message is not among them: only what drives the worker (the buttons, the timer) says why the
    # worker returned, and a decision's own message goes to its panel.
    view_outputs = [ctl["status"], timeline, dec["attempt"], dec["next_action"], dec["fork_step"], ann["target"],
                    ctl["breakpoints"], final_video, dec["focus"], dec["accept"], dec["reject"], seen]
    view_inputs = [sid, seen, dec["attempt"], ann["target"]]

    def view(session_id: str, last: dict, attempt: str | None, target: str | None, *, force: bool = True,
             announce_since: float | None = None) -> tuple[list, str | None]:
        """(updates for view_outputs, the worker's closing message if it returned since it was last said):
        `announce_since` (a click's time) says a worker that ended after it, even on first sight."""
        if not session_id:
            # Only a person's action blanks the view. A timer tick sent before a session opened can be
            # answered after that session's view was shown; blanking then left the page empty for good,
            # because `seen` already said the session was on screen.
            return (_no_session() if force else [gr.skip()] * len(view_outputs)), None
        if last.get("sid") != session_id:
            last = {}
        if force:
            shown, changed = handlers.session_view(svc, session_id), True
        else:
            shown, changed = handlers.refresh(svc, session_id, last.get("seq"), last.get("act"))
        if shown is None or not changed:
            return [gr.skip()] * len(view_outputs), None
        said = last.get("said", shown.worker_ended_at if announce_since is None else announce_since)
        note = shown.worker_note if shown.worker_ended_at > said else None
        return _view_updates(shown, last, attempt, target, max(said, shown.worker_ended_at)), note

    def show(session_id, last, attempt, target, force: bool = True) -> list:
        return view(session_id, last, attempt, target, force=force)[0]

    def show_forced(session_id, last, attempt, target):
        return show(session_id, last, attempt, target)

    def tick(session_id, last, attempt, target):
        updates, note = view(session_id, last, attempt, target, force=False)
        return updates + [note if note else gr.skip()]

    def decided(fn: Callable[..., str], clear: int = 0) -> Callable[..., list]:
        """A decision's handler, followed at once by the re-rendered session; the `clear` text boxes after
        its inputs are emptied once the decision is recorded, so the next decision does not resend them."""
        def run(request: gr.Request, session_id, last, attempt, target, *args):
            # The last input is always the annotator box; with a login the logged-in user decides instead.
            message = fn(session_id, *args[:-1], actor_for(request, args[-1]))
            cleared = [gr.skip() if handlers.is_problem(message) else ""] * clear
            return [message] + cleared + show(session_id, last, attempt, target)
        return run

    # ----- new session ----------------------------------------------------------------------------------
    def source_changed(source, family, difficulty, seed, upload, vlm, vgm):
        upload_mode = source == "upload"
        if upload_mode:
            image, said = handlers.upload_preview(upload)
            preview = gr.update(value=image, label="Uploaded image")
        else:
            image, _ = handlers.preview_task(family, difficulty, seed)
            preview, said = gr.update(value=image, label="Input image (simulated task)"), ""
        return (gr.update(visible=not upload_mode), gr.update(visible=upload_mode), preview,
                gr.update(visible=not upload_mode), handlers.backend_check(source, vlm, vgm), said)

    ns["source"].change(source_changed, [ns["source"], ns["family"], ns["difficulty"], ns["seed"],
                                         ns["upload_image"], ns["vlm"], ns["vgm"]],
                        [ns["sim_group"], ns["upload_group"], ns["preview"], ns["prompt"], ns["backend_check"],
                         ns["message"]], **PRIVATE, **QUIET)
    gr.on([ns["family"].change, ns["difficulty"].change, ns["seed"].change], handlers.preview_task,
          [ns["family"], ns["difficulty"], ns["seed"]], [ns["preview"], ns["prompt"]], **PRIVATE, **QUIET)

    def uploaded(path):
        image, said = handlers.upload_preview(path)
        return gr.update(value=image, label="Uploaded image"), said

    ns["upload_image"].change(uploaded, ns["upload_image"], [ns["preview"], ns["message"]], **PRIVATE, **QUIET)
    gr.on([ns["vlm"].change, ns["vgm"].change], handlers.backend_check, [ns["source"], ns["vlm"], ns["vgm"]],
          ns["backend_check"], **PRIVATE, **QUIET)

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
    def drive(fn: Callable[[Services, str], str], settle: float = 0.0) -> Callable[..., list]:
        """A control button: `settle` seconds at most are given to a worker to finish before the page is
        answered, so a quick command shows its result with the click instead of on the next tick."""
        def run(session_id, last, attempt, target):
            clicked = time.time()
            message = fn(svc, session_id)
            if settle and session_id and not handlers.is_problem(message):
                svc.studio.wait(session_id, settle)
            updates, note = view(session_id, last, attempt, target, announce_since=clicked)
            # A quick command can be over before the page is answered: then say how it ended at once.
            return [note if note and not handlers.is_problem(message) else message] + updates
        return run

    for key, fn, name, settle in (("step", handlers.step, "step", STEP_SETTLE_S), ("run", handlers.run, "run", 0.0),
                                  ("pause", handlers.pause, "pause", 0.0), ("stop", handlers.stop, "stop", 0.0)):
        ctl[key].click(drive(fn, settle), view_inputs, [ctl["message"]] + view_outputs, api_name=name, **QUIET)
    ctl["breakpoints"].input(
        decided(lambda s, bps, who: handlers.set_breakpoints(svc, s, bps, who)),
        view_inputs + [ctl["breakpoints"], annotator], [ctl["message"]] + view_outputs,
        api_name="set_breakpoints", **QUIET)
    timer.tick(tick, view_inputs, view_outputs + [ctl["message"]], api_name="refresh", concurrency_limit=None,
               **QUIET)

    # ----- decisions -------------------------------------------------------------------------------------
    said_and_cleared = [dec["message"], dec["reason"], dec["suggestion"]] + view_outputs
    for key, verdict in (("accept", "accept"), ("reject", "reject")):
        dec[key].click(
            decided(lambda s, target, reason, suggestion, who, verdict=verdict:
                    handlers.override(svc, s, target, verdict, reason, suggestion, who), clear=2),
            view_inputs + [dec["attempt"], dec["reason"], dec["suggestion"], annotator], said_and_cleared,
            **PRIVATE, **QUIET)

    @gr.api(api_name="override")
    def override_api(request: gr.Request, session_id: str, target: str, verdict: str, reason: str, suggestion: str,
                     annotator: str) -> tuple[str, str]:
        """Flip the verdict of an attempt ("step:t/attempt:j") of the current step; returns (message, timeline).
        With a login the logged-in user is the actor, whatever `annotator` says."""
        message = handlers.override(svc, session_id, target, verdict, reason, suggestion,
                                    actor_for(request, annotator))
        return message, _timeline_html(svc, session_id)

    # Accept and reject name the attempt they act on before anyone presses them.
    def focus(session_id, target):
        line, accept, reject = handlers.decision_focus(svc, session_id, target)
        return line, gr.update(value=accept), gr.update(value=reject)

    # The view sets the attempt and its line together (SessionView.focus_lines); a person's own pick asks here.
    dec["attempt"].input(focus, [sid, dec["attempt"]], [dec["focus"], dec["accept"], dec["reject"]],
                         trigger_mode="always_last", **PRIVATE, **QUIET)

    dec["save_action"].click(
        decided(lambda s, text, who: handlers.edit_action(svc, s, text, who)),
        view_inputs + [dec["next_action"], annotator], [dec["message"]] + view_outputs, api_name="edit_action",
        **QUIET)
    dec["regen"].click(
        decided(lambda s, target, frame, suggestion, who:
                handlers.route_regen(svc, s, target, frame, suggestion, who), clear=2),
        view_inputs + [dec["attempt"], dec["frame"], dec["suggestion"], annotator],
        [dec["message"], dec["reason"], dec["suggestion"]] + view_outputs, api_name="route_regen", **QUIET)
    dec["split"].click(
        decided(lambda s, n, who: handlers.route_split(svc, s, n, who)),
        view_inputs + [dec["split_steps"], annotator], [dec["message"]] + view_outputs, api_name="route_split",
        **QUIET)
    dec["fallback"].click(
        decided(lambda s, who: handlers.route_fallback(svc, s, who)),
        view_inputs + [annotator], [dec["message"]] + view_outputs, api_name="route_fallback", **QUIET)

    # The view re-sets the attempt picker on every refresh; the frame slider is reset only when the picked
    # attempt really changes, so a refresh never overwrites the frame a person chose. The preview and the
    # Regen button follow the slider's value however it is set (drag, arrow keys, its number box).
    regen_for = gr.State("")

    def frame_shown(session_id, target, frame) -> tuple[Any, Any]:
        path = handlers.regen_preview(svc, session_id, target, frame)
        index = int(frame or 0)
        where = f"frame {index} of {target}" if target else f"frame {index}"
        return (gr.update(value=path, label=f"That frame: {where}"),
                gr.update(value=f"Regen from frame {index}"))

    def regen_source(session_id, target, shown_for):
        key = f"{session_id}|{target}"
        if key == shown_for:
            return gr.skip(), gr.skip(), gr.skip(), shown_for
        last, suggested = handlers.regen_source(svc, session_id, target)
        return (gr.update(maximum=max(last, 1), value=suggested), *frame_shown(session_id, target, suggested), key)

    dec["attempt"].change(regen_source, [sid, dec["attempt"], regen_for],
                          [dec["frame"], dec["preview"], dec["regen"], regen_for], **PRIVATE, **QUIET)
    dec["frame"].change(frame_shown, [sid, dec["attempt"], dec["frame"]], [dec["preview"], dec["regen"]],
                        trigger_mode="always_last", **PRIVATE, **QUIET)

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
            decided(lambda s, target, who, label=label, value=value:
                    handlers.annotate(svc, s, target, label, value, who)),
            view_inputs + [ann["target"], annotator], annotation_outputs, **PRIVATE, **QUIET)
    ann["d1_save"].click(
        decided(lambda s, depth, who: handlers.annotate(svc, s, "session", "D1", depth, who)),
        view_inputs + [ann["d1"], annotator], annotation_outputs, **PRIVATE, **QUIET)
    ann["note_save"].click(
        decided(lambda s, target, text, who: handlers.annotate(svc, s, target, "note", text or "", who), clear=1),
        view_inputs + [ann["target"], ann["note"], annotator], [ann["message"], ann["note"]] + view_outputs,
        **PRIVATE, **QUIET)

    @gr.api(api_name="annotate")
    def annotate_api(request: gr.Request, session_id: str, target: str, label: str, value: str,
                     annotator: str) -> tuple[str, str]:
        """Record a label: D1 (target "session", a depth), D2 (an attempt, accept|reject), D3 (an attempt, 1-3)
        or note; returns (message, timeline). With a login the logged-in user is the annotator."""
        message = handlers.annotate(svc, session_id, target, label, value, actor_for(request, annotator))
        return message, _timeline_html(svc, session_id)

    for key, delta in (("prev", -1), ("next", +1)):
        ann[key].click(lambda s, t, delta=delta: handlers.neighbour(handlers.attempt_targets(svc, s), t, delta),
                       [sid, ann["target"]], ann["target"], **PRIVATE, **QUIET)

    # ----- frame-accurate review ---------------------------------------------------------------------------------
    # The attempt picker follows the timeline (a new attempt appears in it); a note at a frame re-renders the
    # session, whose timeline then shows the note's mark on that clip.
    def review_choices(session_id, picked):
        targets = handlers.review.review_targets(svc, session_id)
        return gr.update(choices=targets, value=picked if picked in targets else (targets[-1] if targets else None))

    timeline.change(review_choices, [sid, rv["attempt"]], rv["attempt"], **PRIVATE, **QUIET)

    def review_attempt(session_id, target):
        html, last, message = handlers.review.compare(svc, session_id, target)
        return html, gr.update(maximum=max(last, 1), value=0), message

    def review_frame(session_id, target, index):
        return handlers.review.frame(svc, session_id, target, index)

    rv["attempt"].change(review_attempt, [sid, rv["attempt"]], [rv["compare"], rv["frame"], rv["message"]],
                         **PRIVATE, **QUIET)
    rv["frame"].change(review_frame, [sid, rv["attempt"], rv["frame"]], [rv["image"], rv["info"]],
                       trigger_mode="always_last", **PRIVATE, **QUIET)
    for key, delta in (("prev", -1), ("next", +1)):
        rv[key].click(lambda index, delta=delta: max(int(index or 0) + delta, 0), rv["frame"], rv["frame"],
                      **PRIVATE, **QUIET)

    def review_jump(session_id, target, where):
        index, message = handlers.review.jump(svc, session_id, target, where)
        return (gr.skip() if index is None else index), message

    for key in ("failing", "boundary"):
        rv[key].click(lambda s, t, where=key: review_jump(s, t, where), [sid, rv["attempt"]],
                      [rv["frame"], rv["message"]], **PRIVATE, **QUIET)
    rv["note_save"].click(
        decided(lambda s, target, index, text, who: handlers.review.note_at(svc, s, target, index, text, who),
                clear=1),
        view_inputs + [rv["attempt"], rv["frame"], rv["note"], annotator], [rv["message"], rv["note"]] + view_outputs,
        api_name="note_at_frame", **QUIET).then(
        lambda s, t: handlers.review.compare(svc, s, t)[0], [sid, rv["attempt"]], rv["compare"], **PRIVATE, **QUIET)

    # ----- agreement -----------------------------------------------------------------------------------------
    def agreement(session_id, scope):
        result = handlers.agreement(svc, session_id, scope)
        return (result.message, result.table, *result.figures)

    agr["compute"].click(agreement, [sid, agr["scope"]],
                         [agr["message"], agr["table"], agr["chart_seconds"], agr["chart_confusion"],
                          agr["chart_verdicts"]], api_name="agreement")

    # ----- sessions view -----------------------------------------------------------------------------------------
    # The list keeps itself current: refreshed when the tab is opened, every LIST_SECONDS while it is open
    # (sent only when something changed, so a picked row stays picked), and after anything that changes it.
    listed = gr.State([])

    def list_sessions(search, status, picked):
        table, ids = handlers.list_sessions(svc, search, status)
        return table, gr.update(choices=ids, value=picked if picked in ids else (ids[0] if ids else None)), table

    def list_if_changed(search, status, picked, shown):
        table, ids = handlers.list_sessions(svc, search, status)
        if table == shown:
            return gr.skip(), gr.skip(), gr.skip()
        return table, gr.update(choices=ids, value=picked if picked in ids else (ids[0] if ids else None)), table

    list_inputs = [ses["search"], ses["status"], ses["pick"]]
    list_outputs = [ses["table"], ses["pick"], listed]
    ses["list"].click(list_sessions, list_inputs, list_outputs, api_name="list_sessions")
    gr.on([ses["search"].submit, ses["status"].change], list_sessions, list_inputs, list_outputs, **PRIVATE, **QUIET)
    sessions_tab.select(list_sessions, list_inputs, list_outputs, **PRIVATE, **QUIET).then(
        lambda: gr.Timer(active=True), None, list_timer, **PRIVATE, **QUIET)
    session_tab.select(lambda: gr.Timer(active=False), None, list_timer, **PRIVATE, **QUIET)
    list_timer.tick(list_if_changed, list_inputs + [listed], list_outputs, concurrency_limit=None, **PRIVATE,
                    **QUIET)

    def pick_row(evt: gr.SelectData):
        return evt.row_value[0] if evt.row_value else gr.skip()

    ses["table"].select(pick_row, None, ses["pick"], **PRIVATE, **QUIET)

    def open_session(picked):
        opened, message = handlers.open_session(svc, picked)
        if opened is None:
            return gr.skip(), message, gr.skip()
        return picked, message, gr.Tabs(selected=SESSION_TAB)

    ses["open"].click(open_session, ses["pick"], [sid, ses["message"], tabs], api_name="open_session").then(
        show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET).then(
        lambda: gr.Timer(active=False), None, list_timer, **PRIVATE, **QUIET)

    def resume(picked):
        if not picked:
            return gr.skip(), handlers.problem("pick a session first"), gr.skip()
        message = handlers.run(svc, picked)
        if handlers.is_problem(message):
            return gr.skip(), message, gr.skip()
        return picked, message, gr.Tabs(selected=SESSION_TAB)

    ses["resume"].click(resume, ses["pick"], [sid, ses["message"], tabs], **PRIVATE).then(
        show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET).then(
        lambda: gr.Timer(active=False), None, list_timer, **PRIVATE, **QUIET)

    def delete(picked, confirmed, current, search, status):
        message = handlers.delete_session(svc, picked, confirmed)
        table, ids = handlers.list_sessions(svc, search, status)
        done = not handlers.is_problem(message)
        return (message, table, gr.update(choices=ids, value=ids[0] if ids else None), False,
                "" if done and current == picked else gr.skip(), table)

    ses["delete"].click(delete, [ses["pick"], ses["confirm"], sid, ses["search"], ses["status"]],
                        [ses["message"], ses["table"], ses["pick"], ses["confirm"], sid, listed],
                        api_name="delete_session").then(show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    def export(picked):
        paths, message = handlers.export_session(svc, picked)
        return (paths or None), message

    ses["export"].click(export, ses["pick"], [ses["files"], ses["message"]], api_name="export_session")

    # The Bench tab: a run's table, figure and samples; a click on a sample opens its session.
    def show_bench(run_id):
        runs = handlers.bench_runs(svc)
        chosen = run_id if run_id in runs else (runs[0] if runs else None)
        html, figure, samples, message = handlers.bench_view(svc, chosen)
        return gr.update(choices=runs, value=chosen), html, figure, samples, message

    bench_outputs = [bench["run"], bench["table"], bench["figure"], bench["samples"], bench["message"]]
    bench["refresh"].click(show_bench, bench["run"], bench_outputs, api_name="bench_view")
    bench_tab.select(show_bench, bench["run"], bench_outputs, **PRIVATE, **QUIET)
    bench["run"].input(show_bench, bench["run"], bench_outputs, **PRIVATE, **QUIET)

    def open_sample(evt: gr.SelectData):
        picked = evt.row_value[0] if evt.row_value else None
        opened, message = handlers.open_session(svc, picked)
        if opened is None:
            return gr.skip(), message, gr.skip()
        return picked, message, gr.Tabs(selected=SESSION_TAB)

    bench["samples"].select(open_sample, None, [sid, bench["message"], tabs], **PRIVATE, **QUIET).then(
        show_forced, view_inputs, view_outputs, **PRIVATE, **QUIET)

    # The sessions view follows the open session (a new one, a fork, one opened by id), so Export and
    # Delete act on what is on screen unless the person picks another.
    def follow(session_id, search, status):
        table, ids = handlers.list_sessions(svc, search, status)
        return (table, gr.update(choices=ids, value=session_id if session_id in ids else (ids[0] if ids else None)),
                table)

    sid.change(follow, [sid, ses["search"], ses["status"]], list_outputs, **PRIVATE, **QUIET)

    # ----- what a page reload restores ----------------------------------------------------------------------------
    # Both fields are written from the page's current values, one event at a time and in order. Merging into
    # the saved value instead lost the session id whenever a name was typed while the new session's save was
    # still on its way: the second save still carried the old copy.
    def remember(session_id: str, name: str) -> dict:
        return {"session_id": session_id or "", "annotator": (name or "").strip()}

    gr.on([sid.change, annotator.change], remember, [sid, annotator], saved, concurrency_limit=1,
          concurrency_id="browser-state", **PRIVATE, **QUIET)

    def restore(request: gr.Request, kept, *rest):
        kept = kept or {}
        user = getattr(request, "username", None)
        session_id = kept.get("session_id") or ""
        try:
            if session_id:
                svc.store.get_session(session_id)
        except Exception:  # deleted meanwhile, or another data folder: start empty
            session_id = ""
        table, ids = handlers.list_sessions(svc, "", "all")
        shown = show(session_id, {}, None, None)
        picked = session_id if session_id in ids else (ids[0] if ids else None)
        # With a login the name box shows the logged-in user and cannot be changed: decisions are theirs.
        name = gr.update(value=user, interactive=False) if user else (kept.get("annotator") or "")
        return [session_id, name, table, gr.update(choices=ids, value=picked),
                gr.update(open=not session_id), table] + shown

    demo.load(restore, [saved], [sid, annotator, ses["table"], ses["pick"], new_panel, listed] + view_outputs,
              **PRIVATE, **QUIET)
    _wire_study(svc, demo, st, study_tab, annotator)


def _wire_study(svc: Services, demo: gr.Blocks, st: dict, study_tab: gr.Tab, annotator: gr.Textbox) -> None:
    """The Study tab's events. The item on screen is kept per browser tab (`current`); the queue's own state
    (who holds what, who labelled what) is in the store, so a reload resumes the held item on "next"."""
    current = gr.State("")
    item_outputs = [st["item"], current, st["message"], st["progress"], st["row_d1"], st["row_d2"], st["row_d3"]]

    def shown(name, view) -> list:
        rows = [gr.update(visible=view.kind == kind) for kind in ("D1", "D2", "D3")]
        return [view.html, view.item_id, view.message, handlers.study.progress_html(svc, name)] + rows

    def names(picked=None):
        found = handlers.study.study_names(svc)
        return gr.update(choices=found, value=picked if picked in found else (found[0] if found else None))

    def refresh(picked):
        return names(picked), handlers.study.progress_html(svc, picked)

    demo.load(refresh, st["pick"], [st["pick"], st["progress"]], **PRIVATE, **QUIET)
    study_tab.select(refresh, st["pick"], [st["pick"], st["progress"]], **PRIVATE, **QUIET)
    st["refresh"].click(refresh, st["pick"], [st["pick"], st["progress"]], **PRIVATE, **QUIET)

    def picked(name):
        return shown(name, handlers.study.blank("Press Next (n) to get your first item."))

    st["pick"].change(picked, st["pick"], item_outputs, **PRIVATE, **QUIET)

    def as_user(fn: Callable[..., Any]) -> Callable[..., Any]:
        """A study handler whose second input is the annotator box: with a login the logged-in user labels,
        creates and adjudicates, whatever the box says."""
        def run(request: gr.Request, name, who, *rest):
            return fn(name, actor_for(request, who), *rest)
        return run

    def create(name, who, sessions, labels, per_item, annotators, blind):
        message, found = handlers.study.create_study(svc, name, sessions, labels, per_item, annotators, blind, who)
        made = (name or "").strip()
        pick = gr.skip() if handlers.is_problem(message) else gr.update(choices=found, value=made)
        return message, pick

    st["create"].click(as_user(create), [st["name"], annotator, st["sessions"], st["labels"], st["per_item"],
                                         st["annotators"], st["blind"]], [st["create_message"], st["pick"]],
                       **PRIVATE, **QUIET)

    st["next"].click(as_user(lambda name, who, item: shown(name, handlers.study.open_next(svc, name, who, item,
                                                                                          skip=True))),
                     [st["pick"], annotator, current], item_outputs, **PRIVATE, **QUIET)
    st["back"].click(as_user(lambda name, who, item: shown(name, handlers.study.back(svc, name, who, item))),
                     [st["pick"], annotator, current], item_outputs, **PRIVATE, **QUIET)
    values = [("accept", "accept"), ("reject", "reject"), ("r1", 1), ("r2", 2), ("r3", 3)]
    values += [(button, n) for n, button in enumerate(st["depth_buttons"], start=1)]
    for key, value in values:
        button = st[key] if isinstance(key, str) else key
        button.click(as_user(lambda name, who, item, value=value:
                             shown(name, handlers.study.label(svc, name, who, item, value))),
                     [st["pick"], annotator, current], item_outputs, **PRIVATE, **QUIET)
    st["depth_save"].click(as_user(lambda name, who, item, depth:
                                   shown(name, handlers.study.label(svc, name, who, item, depth))),
                           [st["pick"], annotator, current, st["depth"]], item_outputs, **PRIVATE, **QUIET)

    def note(name, who, item, text):
        message = handlers.study.note(svc, name, who, item, text)
        return message, (gr.skip() if handlers.is_problem(message) else "")

    st["note_save"].click(as_user(note), [st["pick"], annotator, current, st["note"]], [st["message"], st["note"]],
                          **PRIVATE, **QUIET)

    @gr.api(api_name="study_next")
    def study_next_api(request: gr.Request, study: str, annotator_name: str, item: str) -> tuple[str, str, str]:
        """Move on from `item` (or start) in a study's queue: (the next item's id, its HTML, message). In a blind
        study neither holds the VLM's verdict nor another annotator's label. With a login the logged-in user is
        the annotator, whatever `annotator_name` says."""
        view = handlers.study.open_next(svc, study, actor_for(request, annotator_name), item, skip=bool(item))
        return view.item_id, view.html, view.message

    @gr.api(api_name="study_label")
    def study_label_api(request: gr.Request, study: str, annotator_name: str, item: str,
                        value: str) -> tuple[str, str, str]:
        """Label the item (accept/reject, or a number), then get the next one: (its id, its HTML, message).
        With a login the logged-in user is the annotator."""
        view = handlers.study.label(svc, study, actor_for(request, annotator_name), item, value)
        return view.item_id, view.html, view.message

    def disagreements(name):
        rows, ids, message = handlers.study.disagreement_table(svc, name)
        return rows, gr.update(choices=ids, value=ids[0] if ids else None), message

    st["list_disagreements"].click(disagreements, st["pick"], [st["disagreements"], st["adj_item"], st["adj_message"]],
                                   **PRIVATE, **QUIET)

    def adjudicate(name, who, item, value, reason):
        message = handlers.study.adjudicate(svc, name, item, value, reason, who)
        rows, _, _ = handlers.study.disagreement_table(svc, name)
        cleared = gr.skip() if handlers.is_problem(message) else ""
        return message, rows, cleared, cleared

    st["adjudicate"].click(as_user(adjudicate), [st["pick"], annotator, st["adj_item"], st["adj_value"], st["adj_reason"]],
                           [st["adj_message"], st["disagreements"], st["adj_value"], st["adj_reason"]],
                           **PRIVATE, **QUIET)

    def figures(name):
        view = handlers.study.figures(svc, name)
        return view.html, view.charts[0], view.charts[1], view.message

    st["compute"].click(figures, st["pick"], [st["tables"], st["chart_kappa"], st["chart_confusion"],
                                             st["figures_message"]], api_name="study_figures")

    def export(name):
        path, message = handlers.study.export_study(svc, name)
        return path, message

    st["export"].click(export, st["pick"], [st["export_file"], st["figures_message"]], api_name="study_export")


def _no_session() -> list:
    empty = gr.update(choices=[], value=None)
    return [render.empty_status(), render.empty_timeline(), empty, "", empty, empty, [],
            gr.update(value=None, visible=False), render.decision_focus_empty(), gr.update(value="accept"),
            gr.update(value="reject"), {}]


def _view_updates(view: SessionView, last: dict, attempt: str | None, target: str | None, said: float) -> list:
    """Component updates for a fresh view. Only the status line follows the worker's progress; the rest is
    sent when the log grew, so that an idle page does not flicker and what a person types is kept. The
    decision panel follows the attempt the loop is on whenever that changes (a person's pick of another
    attempt is kept until then), its line and buttons naming the attempt picked; `said` is when the worker's latest return was last announced."""
    kept = {"sid": view.session_id, "seq": view.seq, "act": view.activity_key, "instr": view.instruction,
            "video": view.final_video, "focus": view.focus_attempt, "said": said}
    if last and view.seq == last.get("seq"):
        return [view.status] + [gr.skip()] * 10 + [kept]
    keep_pick = bool(last) and attempt in view.decision_attempts and last.get("focus") == view.focus_attempt
    picked = attempt if keep_pick else view.focus_attempt
    decision = gr.update(choices=view.decision_attempts, value=picked)
    line, accept, reject = view.focus_lines.get(picked or "", (render.decision_focus_empty(), "accept", "reject"))
    instruction = view.instruction if not last or view.instruction != last.get("instr") else gr.skip()
    steps = [f"step {n}" for n in view.steps]
    fork_step = gr.update(choices=steps, value=steps[-1] if steps else None)
    annot = gr.update(choices=view.attempts,
                      value=target if target in view.attempts else (view.attempts[-1] if view.attempts else None))
    video = gr.update(value=view.final_video, visible=view.final_video is not None) \
        if not last or view.final_video != last.get("video") else gr.skip()
    return [view.status, view.timeline, decision, instruction, fork_step, annot, view.breakpoints, video, line,
            gr.update(value=accept), gr.update(value=reject), kept]


def _timeline_html(svc: Services, session_id: str) -> str:
    try:
        return handlers.session_view(svc, session_id).timeline if session_id else render.empty_timeline()
    except Exception:
        return render.empty_timeline("the session could not be read")

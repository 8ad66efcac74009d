"""HTML of the timeline and the status line, as pure functions of a session's state.

Nothing here reads files or the store: where a clip or a frame is shown, a `MediaLinks` (ui/media.py, or a
fake in tests) turns the artifact into a URL. Every string a model or a person wrote goes through `esc`
before it becomes HTML. The CSS classes named in ui/__init__.py are hooks for browser tests; keep them.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import html
import re
from typing import Iterable, Protocol

from collabvr.events import (
    ActionEdited, Annotated, Artifact, BackendFailed, BreakpointsSet, RouteRequested, VerdictOverridden,
    attempt_target,
)
from collabvr.loop import Command, Kind
from collabvr.state import AttemptState, SessionState, StepState
from collabvr.studio import Activity


class MediaLinks(Protocol):
    def clip_url(self, artifact: Artifact) -> str: ...

    def image_url(self, artifact: Artifact) -> str: ...

    def frame_urls(self, clip: Artifact, indices: Iterable[int]) -> dict[int, str]: ...


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def when(at: float) -> str:
    return _dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def is_simulated(state: SessionState) -> bool:
    return state.started.vlm.simulated or state.started.vgm.simulated


# ----- prompt diffs --------------------------------------------------------------------------------------

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> str:
    """`after` as HTML, with the words removed since `before` in <del> and the words added in <ins>."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(esc("".join(a[i1:i2])))
            continue
        if op in ("delete", "replace") and "".join(a[i1:i2]).strip():
            out.append(f"<del>{esc(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace") and "".join(b[j1:j2]).strip():
            out.append(f"<ins>{esc(''.join(b[j1:j2]))}</ins>")
        elif op in ("insert", "replace"):
            out.append(esc("".join(b[j1:j2])))
    return "".join(out)


def prompt_block(label: str, before: str | None, after: str) -> str:
    body = word_diff(before, after) if before is not None and before != after else esc(after)
    changed = " changed" if before is not None and before != after else ""
    return (f'<div class="prompt-diff{changed}"><span class="label">{esc(label)}</span> '
            f'<span class="text">{body}</span></div>')


# ----- the timeline ---------------------------------------------------------------------------------------

def render_timeline(state: SessionState, media: MediaLinks, failures: Iterable[BackendFailed] = ()) -> str:
    """The whole session: a header, then one card per step, one row per attempt. `failures` are the
    session's BackendFailed events (the state keeps only the unrecovered ones)."""
    failures = list(failures)
    parts = [_header(state, media)]
    for step in state.steps:
        parts.append(_step_card(state, step, media, [f for f in failures if f.step == step.number]))
    loose = [f for f in failures if f.step is None or all(f.step != s.number for s in state.steps)]
    parts.extend(_failure(f) for f in loose)
    if state.finished is not None:
        parts.append(_finished(state))
    return f'<div class="timeline-root" data-session="{esc(state.session_id)}" data-seq="{state.seq}">' \
           + "".join(parts) + "</div>"


def empty_timeline(message: str = "No session open. Start one above, or open one in the Sessions tab.") -> str:
    return f'<div class="timeline-root empty"><p class="hint">{esc(message)}</p></div>'


def _header(state: SessionState, media: MediaLinks) -> str:
    started = state.started
    task = started.task
    label = '<span class="simulated-label" title="plans, clips and verdicts come from the simulated world, ' \
            'not from real models">SIMULATED</span>' if is_simulated(state) else ""
    where = (f"{esc(task.family)} / {esc(task.difficulty)} / seed {esc(task.task_seed)}"
             if task.source == "sim" else "uploaded image")
    fork = ""
    if started.fork is not None:
        fork = (f'<div class="fork-origin">forked from <code>{esc(started.fork.parent_session)}</code> '
                f'at event {started.fork.at_seq}</div>')
    cost = state.cost
    return f"""
<div class="session-head">
  <img class="input-image" src="{esc(media.image_url(started.input_image))}" alt="input image">
  <div class="session-info">
    <div class="session-title">{label}<b>{esc(started.title)}</b> <code>{esc(state.session_id)}</code></div>
    <div class="task-prompt"><span class="label">Task</span> {esc(state.task_prompt)}</div>
    <div class="session-meta">{where} · VLM: {esc(started.vlm.name)} · VGM: {esc(started.vgm.name)} ·
      N_max {started.config.n_max}, M {started.config.m},
      clips {started.config.first_step_seconds:g} s then {started.config.later_seconds:g} s</div>
    {fork}
    <div class="cost">Cost so far: <b>{cost.vgm_seconds:.1f} s</b> of video · <b>{cost.clips}</b> clips ·
      <b>{cost.vlm_calls}</b> VLM calls</div>
  </div>
</div>"""


def _step_card(state: SessionState, step: StepState, media: MediaLinks, failures: list[BackendFailed]) -> str:
    plan = step.plan
    sub = ""
    if step.is_split_sub_step:
        sub = f' · sub-step {step.planned.sub_step}/{step.planned.sub_steps} of step {step.planned.split_of}'
    status = step.status
    if step.result_attempt is not None:
        status += f" (attempt {step.result_attempt}, by {esc(step.result_by or 'engine')})"
    if plan.task_complete:
        status = "planner: task complete"
    rows = []
    previous_prompt: str | None = None
    for attempt in step.attempts:
        rows.append(_attempt_row(state, step, attempt, media, previous_prompt))
        previous_prompt = attempt.prompt
    pending = ""
    last = step.last_attempt
    if not step.resolved and last is not None and step.instruction != last.prompt:
        pending = prompt_block("Next prompt", last.prompt, step.instruction)
    routes = "".join(_route(r) for r in step.routes)
    edits = "".join(_human_event(e) for e in state.human_events
                    if isinstance(e, ActionEdited) and e.step == step.number)
    fails = "".join(_failure(f) for f in failures)
    plan_html = "" if plan.task_complete else f"""
    <div class="instruction"><span class="label">Instruction</span> {esc(plan.instruction)}</div>
    <div class="target-state"><span class="label">Target state</span> {esc(plan.target_state)}</div>"""
    return f"""
<section class="step-card status-{esc(step.status)}" data-step="{step.number}">
  <header><h3>Step {step.number} <small>of {state.max_steps}{sub}</small></h3>
    <span class="step-status">{status}</span></header>
  <div class="plan">
    <div class="observation"><span class="label">Observation</span> {esc(plan.observation)}</div>
    <div class="remaining"><span class="label">Remaining goal</span> {esc(plan.remaining_goal)}
      (about {plan.estimated_steps_remaining} step(s) left)</div>{plan_html}
  </div>
  {edits}{"".join(rows)}{pending}{routes}{fails}
</section>"""


def _attempt_row(state: SessionState, step: StepState, attempt: AttemptState, media: MediaLinks,
                 previous_prompt: str | None) -> str:
    gen = attempt.generated
    start = "from the step's start frame"
    if gen.start.kind == "partial":
        start = f"from frame {gen.start.frame_index} of attempt {gen.start.from_attempt}"
    before = previous_prompt if previous_prompt is not None else step.planned.plan.instruction
    prompt = prompt_block("Prompt", before, attempt.prompt)
    verify = _verification(attempt, media)
    target = attempt_target(step.number, attempt.number)
    notes = "".join(_annotation(a) for a in state.annotations if a.target == target)
    return f"""
  <div class="attempt-row purpose-{esc(attempt.purpose)}" data-step="{step.number}" data-attempt="{attempt.number}">
    <div class="clip-col">
      <div class="attempt-title">Attempt {attempt.number} <small>{esc(attempt.purpose)}, {esc(start)}</small></div>
      <video class="clip" controls preload="metadata" src="{esc(media.clip_url(gen.candidate))}"></video>
      <div class="clip-meta">{gen.seconds:.2f} s generated · {gen.prefix_frames + gen.n_frames} frames
        @ {gen.fps:g} fps · <span class="ssim">first-frame SSIM {gen.first_frame_ssim:.3f}</span></div>
    </div>
    <div class="verify-col">{prompt}{verify}{notes}</div>
  </div>"""


def _verification(attempt: AttemptState, media: MediaLinks) -> str:
    verified = attempt.verified
    if verified is None:
        return '<div class="verdict-pending">not verified yet</div>'
    verdict = verified.verdict
    failing = verified.first_failing_frame
    urls = media.frame_urls(attempt.generated.candidate, verified.sampled_indices)
    # The first sampled frame at or after the first failing frame is the one the verifier saw go wrong.
    marked = min((i for i in verified.sampled_indices if i >= failing), default=None) if failing is not None else None
    frames = []
    for index in verified.sampled_indices:
        mark = ' class="failing"' if index == marked else ""
        frames.append(f'<figure><img{mark} src="{esc(urls.get(index, ""))}" alt="frame {index}" '
                      f'data-index="{index}"><figcaption>{index}</figcaption></figure>')
    suggestion = ""
    if verdict.suggestion:
        suggestion = f'<div class="suggestion"><span class="label">Suggestion</span> {esc(verdict.suggestion)}</div>'
    error = f' · {esc(verdict.error_type)}' if verdict.error_type else ""
    fraction = f" · good fraction {verdict.good_fraction:.2f}" if verdict.good_fraction is not None else ""
    vlm_class = "accept" if verdict.verdict == "accept" else "reject"
    effective = attempt.effective_verdict or verdict.verdict
    human = ""
    if attempt.override is not None:
        o = attempt.override
        extra = f' · suggestion: {esc(o.suggestion)}' if o.suggestion else ""
        human = (f'<div class="human-decision">overridden to <b>{esc(o.verdict)}</b> by {esc(o.actor)} at '
                 f'{when(o.at)}: {esc(o.reason or "no reason given")}{extra}</div>')
    return f"""
      <div class="frames" title="the frames the verifier saw; the first failing one is marked">{"".join(frames)}</div>
      <div class="verdict">
        <span class="verdict-badge {"accept" if effective == "accept" else "reject"}">{esc(effective)}</span>
        <span class="vlm-verdict {vlm_class}">VLM: {esc(verdict.verdict)} ({verdict.confidence:.2f}){error}{fraction}</span>
        <div class="reason">{esc(verdict.reason)}</div>{suggestion}{human}
      </div>"""


def _route(route) -> str:
    d = route.decision
    what = d.action + (f" into {d.estimated_steps} sub-steps" if d.action == "split" and d.estimated_steps else "")
    if d.action == "regen" and route.attempt:
        where = f" from frame {route.frame_index}" if route.frame_index is not None else ""
        what += f" of attempt {route.attempt}{where}"
    who = "router (VLM)" if route.by == "vlm" else "a person"
    suggestion = f' · suggestion: {esc(d.suggestion)}' if d.suggestion else ""
    done = "done" if route.executed else "pending"
    return (f'<div class="route by-{esc(route.by)}"><span class="label">Route</span> <b>{esc(what)}</b> by {who} '
            f'({done}): {esc(d.reason)}{suggestion}</div>')


def _human_event(event) -> str:
    if isinstance(event, ActionEdited):
        body = prompt_block("Edited action", event.before, event.after)
        reason = f": {esc(event.reason)}" if event.reason else ""
        return (f'<div class="human-decision edit">action edited by {esc(event.actor)} at {when(event.at)}'
                f'{reason}{body}</div>')
    if isinstance(event, RouteRequested):
        return f'<div class="human-decision">route requested by {esc(event.actor)} at {when(event.at)}</div>'
    if isinstance(event, VerdictOverridden):
        return f'<div class="human-decision">verdict overridden by {esc(event.actor)} at {when(event.at)}</div>'
    if isinstance(event, BreakpointsSet):
        return (f'<div class="human-decision">breakpoints set to {esc(", ".join(event.breakpoints) or "none")} '
                f'by {esc(event.actor)} at {when(event.at)}</div>')
    return ""


def _annotation(a: Annotated) -> str:
    names = {"D1": "plan depth", "D2": "human verdict", "D3": "suggestion rating", "note": "note"}
    return (f'<div class="annotation label-{esc(a.label)}">{esc(a.label)} {names.get(a.label, "")}: '
            f'<b>{esc(a.value)}</b> by {esc(a.actor)} at {when(a.at)}</div>')


def _failure(f: BackendFailed) -> str:
    where = f" step {f.step}" if f.step is not None else ""
    where += f" attempt {f.attempt}" if f.attempt is not None else ""
    retry = "retryable" if f.retryable else "not retryable"
    return (f'<div class="backend-failed"><b>{esc(f.role)}{esc(where)} failed</b> ({esc(f.error)}, {retry}) '
            f'at {when(f.at)}: {esc(f.message)}</div>')


def _finished(state: SessionState) -> str:
    f = state.finished
    assert f is not None
    success = {True: '<span class="success yes">task solved</span>',
               False: '<span class="success no">task not solved</span>', None: ""}[f.success]
    session_notes = "".join(_annotation(a) for a in state.annotations if a.target == "session")
    return (f'<div class="session-finished"><b>Finished</b>: {esc(f.reason)} {success} · {f.n_frames} frames · '
            f'{f.cost.vgm_seconds:.1f} s of video, {f.cost.clips} clips, {f.cost.vlm_calls} VLM calls'
            f'{session_notes}</div>')


# ----- the status line ------------------------------------------------------------------------------------

def render_status(state: SessionState, command: Command, activity: Activity, *, shown: str | None = None) -> str:
    """One line: the session's status (`shown`, as ui.handlers.view.shown_status says, else the logged one),
    what comes next (or why it waits), and the command in flight."""
    status = shown or state.status
    if status == "interrupted":
        status = "interrupted (press Run to resume)"
    elif status == "working":
        status = f"working ({activity.mode})"
    parts = [f'<span class="status-badge status-{esc(state.status)}">{esc(status)}</span>',
             f'<code class="sid">{esc(state.session_id)}</code>']
    if command.kind is Kind.WAIT:
        held = f" (holds: {esc(command.held.describe())})" if command.held else ""
        parts.append(f'<span class="waiting">waiting: {esc(command.reason)}{held}</span>')
    elif command.kind is Kind.DONE:
        parts.append(f'<span class="next">done: {esc(command.reason)}</span>')
    else:
        parts.append(f'<span class="next">next: {esc(command.describe())}</span>')
    if activity.running:
        total = max(activity.total, 1)
        parts.append(f'<span class="activity">in flight: {esc(activity.command or "starting")} '
                     f'<progress value="{activity.done}" max="{total}"></progress> {activity.done}/{activity.total}'
                     f'</span>')
    elif activity.error:
        parts.append(f'<span class="activity-error">worker error: {esc(activity.error)}</span>')
    if is_simulated(state):
        parts.append('<span class="simulated-label">SIMULATED</span>')
    return '<div class="status-line">' + " · ".join(parts) + "</div>"


def empty_status() -> str:
    return '<div class="status-line"><span class="status-badge">no session</span></div>'

"""HTML of the timeline and the status line: Jinja2 templates (ui/templates/) with autoescaping on, filled
from a session's state.

Nothing here reads files or the store: where a clip or a frame is shown, a `MediaLinks` (ui/media.py, or a
fake in tests) turns the artifact into a URL. Escaping is the templates' default: every value that reaches
a template is escaped where it is written, and nothing is ever marked safe, so a string a model or a person
wrote cannot become markup. Python decides what to show (which frame failed, the prompt's word diff as
pieces, where each failure belongs); the templates decide how. The CSS classes named in ui/__init__.py are
hooks for browser tests; keep them.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import jinja2

from collabvr.events import (
    ActionEdited, Annotated, Artifact, BackendFailed, ClipsCritiqued, CommandFailed, ResultDiscarded, RouteRequested,
    VerdictOverridden, attempt_target, parse_attempt_target,
)
from collabvr.loop import Command, Kind, baseline_name, unheld
from collabvr.state import AttemptState, RouteState, SessionState, StepState
from collabvr.studio import Activity, GPUQueue


TEMPLATES = Path(__file__).resolve().parent / "templates"
Failure = BackendFailed | CommandFailed  # a model's failure, or the engine's own; shown alike
LABEL_NAMES = {"D1": "plan depth", "D2": "human verdict", "D3": "suggestion rating", "note": "note"}


class MediaLinks(Protocol):
    def clip_url(self, artifact: Artifact) -> str: ...

    def poster_url(self, clip: Artifact) -> str: ...

    def image_url(self, artifact: Artifact) -> str: ...

    def frame_urls(self, clip: Artifact, indices: Iterable[int]) -> dict[int, str]: ...


def esc(text: object) -> str:
    """Escape text for the few places that build HTML or Markdown outside a template."""
    return html.escape(str(text), quote=True)


def when(at: float) -> str:
    return _dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def is_simulated(state: SessionState) -> bool:
    return state.started.vlm.simulated or state.started.vgm.simulated


SIMULATED_PREFIX = "[SIMULATED] "


_FORK_MARK = re.compile(r" \(fork @\d+\)$")


def display_title(state: SessionState) -> str:
    """The session's title for the timeline header, which shows the SIMULATED label and the fork's origin on
    their own: a sim session's default title starts with "[SIMULATED] " for the places without that label
    (exports), and a fork's ends with "(fork @<event number>)", which reads like a step number."""
    title = _FORK_MARK.sub("", state.started.title)
    if is_simulated(state) and title.startswith(SIMULATED_PREFIX):
        return title[len(SIMULATED_PREFIX):]
    return title


def list_title(title: str, fork_step: int | None) -> str:
    """A title for the sessions list: a fork's "(fork @<event number>)" says the step it was forked at."""
    if fork_step is None:
        return title
    return _FORK_MARK.sub(f" (fork at step {fork_step})", title)


def finish_summary(state: SessionState) -> str:
    """How a finished session ended, in words that do not contradict each other: a task solved on the last
    allowed step says so, rather than "step budget spent" beside "task solved"."""
    finished = state.finished
    if finished is None:
        return ""
    steps = sum(1 for s in state.steps if s.resolved)
    used = f"after {steps} step{'s' if steps != 1 else ''}"
    budget = finished.reason.startswith("step budget spent")
    if finished.success is True:
        return f"task solved {used}" if budget else f"task solved {used} ({finished.reason})"
    if finished.success is False:
        return f"task not solved {used}: {'every allowed step was used' if budget else finished.reason}"
    return f"{finished.reason} ({used})"


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["when"] = when
_env.globals["label_names"] = LABEL_NAMES
_env.globals["method_name"] = baseline_name


# ----- prompt diffs --------------------------------------------------------------------------------------

_TOKENS = re.compile(r"\s+|[^\s]+")


def diff_pieces(before: str, after: str) -> list[tuple[str, str]]:
    """`after` as (op, text) pieces against `before`: op "del" for words removed, "ins" for words added,
    "same" for the rest (whitespace-only changes are kept as plain text)."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    pieces: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        removed, added = "".join(a[i1:i2]), "".join(b[j1:j2])
        if op == "equal":
            pieces.append(("same", removed))
            continue
        if op in ("delete", "replace") and removed.strip():
            pieces.append(("del", removed))
        if op in ("insert", "replace"):
            pieces.append(("ins" if added.strip() else "same", added))
    return pieces


@dataclass(frozen=True)
class PromptBlock:
    """A prompt as the template shows it: the whole text, or its word diff against the one before."""

    label: str
    pieces: list[tuple[str, str]]
    changed: bool


def prompt_view(label: str, before: str | None, after: str) -> PromptBlock:
    if before is None or before == after:
        return PromptBlock(label, [("same", after)], changed=False)
    return PromptBlock(label, diff_pieces(before, after), changed=True)


def word_diff(before: str, after: str) -> str:
    """`after` as HTML, with the words removed since `before` in <del> and the words added in <ins>."""
    return str(_parts().diff(diff_pieces(before, after)))


def prompt_block(label: str, before: str | None, after: str) -> str:
    """A labelled prompt as HTML: its word diff against `before`, or the whole text when nothing changed."""
    return str(_parts().prompt_block(prompt_view(label, before, after)))


def render_template(name: str, **values: object) -> str:
    """Any template of ui/templates/ with these values, autoescaped (for the panels that render their own)."""
    return _env.get_template(name).render(**values)


def _parts():
    """The macros of parts.html, callable from Python."""
    return _env.get_template("parts.html").module  # type: ignore[attr-defined]


# ----- the timeline ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipShown:
    """A clip as its player shows it (parts.html clip_player): where it plays from, its frames, and the marks
    on its timeline: where new frames start after a kept prefix, the first failing frame (None when the
    verifier found none, or in a blind view), and the notes anchored at a frame."""

    url: str
    poster: str
    fps: float
    n_frames: int
    prefix_frames: int = 0
    failing: int | None = None
    notes: tuple[Annotated, ...] = ()

    def left(self, frame: int) -> float:
        """Where frame `frame` sits on the clip's timeline, in percent of its width."""
        return round(100 * min(max(frame, 0), self.n_frames - 1) / max(self.n_frames - 1, 1), 2)


def clip_shown(attempt: AttemptState, media: MediaLinks, notes: Iterable[Annotated] = (), *,
               blind: bool = False) -> ClipShown:
    """The player of an attempt's candidate clip; `blind` leaves out the first failing frame (it tells the
    verdict)."""
    gen = attempt.generated
    failing = None if blind or attempt.verified is None else attempt.verified.first_failing_frame
    return ClipShown(media.clip_url(gen.candidate), media.poster_url(gen.candidate), gen.fps,
                     attempt.candidate_frames, gen.prefix_frames, failing,
                     tuple(n for n in notes if n.frame is not None))


@dataclass
class _Frame:
    index: int
    url: str
    failing: bool


@dataclass
class _AttemptRow:
    step: int
    attempt: AttemptState
    start: str
    player: ClipShown
    prompt: PromptBlock
    frames: list[_Frame]
    notes: list[Annotated]
    overrides: list[VerdictOverridden]  # every person's override of this attempt, oldest first
    unverified: str = "not verified yet"  # what an attempt without a verdict says (a baseline has no verifier)
    critiques: list["_Critique"] = field(default_factory=list)  # VideoTPO: critiques of the round ending here


@dataclass
class _Critique:
    event: ClipsCritiqued
    block: PromptBlock


@dataclass
class _Edit:
    event: ActionEdited
    block: PromptBlock


@dataclass
class _Route:
    route: RouteState
    requested: RouteRequested | None  # a person's route: who asked for it, and when


@dataclass
class _StepCard:
    step: StepState
    outcome: str
    rows: list[_AttemptRow]
    edits: list[_Edit]
    pending: PromptBlock | None
    routes: list[_Route]
    failures: list[Failure] = field(default_factory=list)
    discarded: list[ResultDiscarded] = field(default_factory=list)


def render_timeline(state: SessionState, media: MediaLinks, failures: Iterable[Failure] = (),
                    discarded: Iterable[ResultDiscarded] = (), fork_step: int | None = None) -> str:
    """The whole session: a header, then one card per step, one row per attempt. `failures` are the
    session's BackendFailed and CommandFailed events (the state keeps only the unrecovered ones);
    `discarded` its ResultDiscarded events (results a person's decision made stale, with their cost);
    `fork_step`, for a fork, the step it was forked at (ui.handlers.view.fork_step)."""
    failures, discarded = list(failures), list(discarded)
    numbers = {s.number for s in state.steps}
    cards = [_step_card(state, step, media, [f for f in failures if f.step == step.number],
                        [d for d in discarded if d.step == step.number]) for step in state.steps]
    loose = [f for f in failures if f.step is None or f.step not in numbers]
    loose_discarded = [d for d in discarded if d.step is None or d.step not in numbers]
    return _env.get_template("timeline.html").render(
        state=state, cards=cards, loose_failures=loose, loose_discarded=loose_discarded,
        image_url=media.image_url(state.started.input_image), simulated=is_simulated(state),
        title=display_title(state), finish=finish_summary(state), fork_step=fork_step)


def empty_timeline(message: str = "No session open. Start one above, or open one in the Sessions tab.") -> str:
    return _env.get_template("empty_timeline.html").render(message=message)


def _step_card(state: SessionState, step: StepState, media: MediaLinks, failures: list[Failure],
               discarded: list[ResultDiscarded]) -> _StepCard:
    overrides = [e for e in state.human_events if isinstance(e, VerdictOverridden) and e.step == step.number]
    rows = []
    previous_prompt: str | None = None
    baseline = state.config.method != "collabvr"
    for attempt in step.attempts:
        mine = [o for o in overrides if o.attempt == attempt.number]
        row = _attempt_row(state, step, attempt, media, previous_prompt, mine)
        if baseline:
            row.unverified = f"not verified: {baseline_name(state.config)} has no verifier"
        row.critiques = [_Critique(c, prompt_view("Rewritten prompt", c.before, c.after)) for c in step.critiques
                         if c.attempts and c.attempts[-1] == attempt.number]
        rows.append(row)
        previous_prompt = attempt.prompt
    pending = None
    last = step.last_attempt
    if not step.resolved and last is not None and step.instruction != last.prompt:
        pending = prompt_view("Next prompt", last.prompt, step.instruction)
    edits = [_Edit(e, prompt_view("Edited action", e.before, e.after)) for e in state.human_events
             if isinstance(e, ActionEdited) and e.step == step.number]
    # Each RouteRequested of the step made one of its person's routes, in the same order.
    requests = iter([e for e in state.human_events if isinstance(e, RouteRequested) and e.step == step.number])
    routes = [_Route(r, next(requests, None) if r.by == "human" else None) for r in step.routes]
    return _StepCard(step, step_outcome(step, overrides), rows, edits, pending, routes, failures, discarded)


def step_outcome(step: StepState, overrides: list[VerdictOverridden] = ()) -> str:
    """What became of a step, and on whose decision: "accepted (attempt 2, accepted by Ada at ...)"."""
    if step.plan.task_complete:
        return "planner: task complete"
    if step.result_attempt is None:
        return step.status
    if step.status == "propagated":
        return f"propagated (attempt {step.result_attempt}: the best of its rejected attempts)"
    if step.result_by == "selector":
        return f"{step.status} (attempt {step.result_attempt}, picked by the VLM's selector)"
    if step.result_by == "method":
        return f"{step.status} (attempt {step.result_attempt}, by the method's rule)"
    if step.result_by == "human":
        mine = [o for o in overrides if o.attempt == step.result_attempt and o.verdict == "accept"]
        if mine:
            return (f"{step.status} (attempt {step.result_attempt}, accepted by {mine[-1].actor} "
                    f"at {when(mine[-1].at)})")
        return f"{step.status} (attempt {step.result_attempt}, by a person)"
    return f"{step.status} (attempt {step.result_attempt}, by the verifier)"


def _attempt_row(state: SessionState, step: StepState, attempt: AttemptState, media: MediaLinks,
                 previous_prompt: str | None, overrides: list[VerdictOverridden]) -> _AttemptRow:
    gen = attempt.generated
    start = "from the step's start frame"
    if gen.start.kind == "partial":
        start = f"from frame {gen.start.frame_index} of attempt {gen.start.from_attempt}"
    before = previous_prompt if previous_prompt is not None else step.planned.plan.instruction
    target = attempt_target(step.number, attempt.number)
    notes = [a for a in state.annotations if a.target == target]
    return _AttemptRow(step=step.number, attempt=attempt, start=start, player=clip_shown(attempt, media, notes),
                       prompt=prompt_view("Prompt", before, attempt.prompt), frames=_frames(attempt, media),
                       notes=notes, overrides=overrides)


def _frames(attempt: AttemptState, media: MediaLinks) -> list[_Frame]:
    """The frames the verifier saw, the first failing one marked (none before the attempt is verified)."""
    verified = attempt.verified
    if verified is None:
        return []
    failing = verified.first_failing_frame
    urls = media.frame_urls(attempt.generated.candidate, verified.sampled_indices)
    # The first sampled frame at or after the first failing frame is the one the verifier saw go wrong.
    marked = min((i for i in verified.sampled_indices if i >= failing), default=None) if failing is not None else None
    return [_Frame(index, urls.get(index, ""), index == marked) for index in verified.sampled_indices]


# ----- the status line ------------------------------------------------------------------------------------

BADGE_HINTS = {
    "idle": "nothing runs: press Step for one command or Run to go on",
    "working": "a background worker is running this session's commands",
    "held": "the loop waits for a person: a breakpoint holds the next command",
    "failed": "the latest model call or command failed; Step or Run tries again",
    "interrupted": "an earlier server stopped in the middle of a run; Run resumes it",
    "finished": "the session is done; fork it to explore from an earlier step",
}


@dataclass(frozen=True)
class Badge:
    """What the status badge says: one of BADGE_HINTS' words, and the few words after it that say what runs
    and how far it got, what holds the loop, or how it ended. Never "running" while nothing runs."""

    word: str
    detail: str

    @property
    def hint(self) -> str:
        return BADGE_HINTS[self.word]


def badge(state: SessionState, command: Command, activity: Activity, *, interrupted: bool = False) -> Badge:
    """The badge of a session, from its state, the loop's next command and this process's worker."""
    if activity.running:
        what = activity.command or "starting"
        # done/total is the command's own progress: denoising steps, or a simulated model's latency ticks
        far = f", {activity.done} of {activity.total} done" if activity.total else ""
        return Badge("working", f"{activity.mode}: {what}{far}")
    if state.finished is not None:
        return Badge("finished", finish_summary(state))
    if interrupted:
        return Badge("interrupted", "press Run to resume")
    latest = state.failures[-1] if state.failures else None
    if latest is not None and state.status == "stopped":
        return Badge("idle", "stopped by a person; Step or Run generates again")
    if command.kind is Kind.WAIT and not command.reason.startswith("breakpoint"):
        return Badge("failed", f"{command.reason}; Step or Run tries again")
    if command.kind is Kind.WAIT:
        held = unheld(command)
        return Badge("held", f"at {command.reason.removeprefix('breakpoint: ')}, before {held.describe()}")
    if latest is not None:
        return Badge("failed", f"{latest.role} failed ({latest.message}); Step or Run retries it")
    if state.seq <= 1:
        return Badge("idle", "new: nothing has run yet")
    return Badge("idle", activity.outcome or "ready")


def render_status(state: SessionState, command: Command, activity: Activity, *, shown: str | None = None,
                  gpu: GPUQueue | None = None) -> str:
    """One line: the badge (idle, working, held, failed, interrupted, finished; ui.handlers.view.shown_status
    says "interrupted" through `shown`), what comes next (or why it waits), the command in flight with its
    own progress (denoising steps, or a simulated model's latency ticks), and, while it runs, the session's
    place at the GPU gate (`gpu`, Studio.gpu_queue)."""
    shown_badge = badge(state, command, activity, interrupted=shown == "interrupted")
    return _env.get_template("status_line.html").render(state=state, badge=shown_badge, command=command,
                                                        activity=activity, simulated=is_simulated(state),
                                                        gpu=gpu_line(gpu) if activity.running else "")


def gpu_line(gpu: GPUQueue | None) -> str:
    """The session's place at the GPU gate in words: "on the GPU", "waiting for the GPU: 2nd in line", ...,
    with the gate's own counts; "" when the gate is idle and the session not at it."""
    if gpu is None or (gpu.place == "idle" and not gpu.busy and not gpu.waiting):
        return ""
    counts = f"{gpu.busy} of {gpu.slots} GPU slot{'s' if gpu.slots != 1 else ''} busy, {gpu.waiting} waiting"
    if gpu.place == "holding":
        return f"on the GPU ({counts})"
    if gpu.place == "waiting":
        return f"waiting for the GPU: {_ordinal(gpu.position)} in line ({counts})"
    return f"GPU: {counts}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def empty_status() -> str:
    return _env.get_template("status_line.html").render(state=None)


def worker_message(activity: Activity) -> str:
    """The control panel's message once a worker has returned: why it stopped, in the ✔/⚠ convention of
    ui.handlers.common (so "running until the end ..." never outlives the run)."""
    if activity.error:
        return f"⚠ the {activity.mode or 'worker'} stopped on an error: {activity.error}"
    what = "Step" if activity.mode == "step" else "Run"
    return f"✔ {what} ended: {activity.outcome or 'done'}"


# ----- the decision panel -----------------------------------------------------------------------------------

def focus_attempt(state: SessionState, command: Command) -> str | None:
    """The attempt of the current step a decision acts on by default: the one the loop holds on (the
    attempt its next command, held or not, names), else the step's latest verified attempt."""
    current = state.current_step
    if current is None:
        return None
    verified = [a for a in current.attempts if a.verified is not None]
    named = unheld(command)
    if named.step == current.number and named.attempt is not None:
        for a in verified:
            if a.number == named.attempt:
                return attempt_target(current.number, a.number)
    return attempt_target(current.number, verified[-1].number) if verified else None


def decision_focus(state: SessionState, command: Command, target: str | None) -> str:
    """One line above the accept/reject buttons: which attempt a decision acts on, what it was judged, and
    whether it is the one the loop holds on."""
    return _env.get_template("decision_focus.html").render(
        focus=_focus_view(state, target), held=_focus_view(state, focus_attempt(state, command)))


def decision_focus_empty() -> str:
    return _env.get_template("decision_focus.html").render(focus=None, held=None)


@dataclass
class _FocusView:
    target: str
    step: int
    attempt: int
    verdict: str
    by: str


def _focus_view(state: SessionState, target: str | None) -> _FocusView | None:
    if not target:
        return None
    try:
        step_number, number = parse_attempt_target(target)
        attempt = state.step(step_number).attempt(number)
    except (KeyError, ValueError):
        return None
    if attempt.override is not None:
        by = f"{attempt.override.actor} (override)"
    else:
        by = "the VLM"
    return _FocusView(target, step_number, number, attempt.effective_verdict or "not verified", by)


# ----- benchmark results ------------------------------------------------------------------------------------

def bench_table(run_id: str, rows: list, spec: dict, simulated: bool) -> str:
    """A benchmark run's summary (collabvr.eval.scoring.Summary rows: per method, each family then overall)."""
    return _env.get_template("bench_table.html").render(run_id=run_id, rows=rows, spec=spec, simulated=simulated)


def empty_bench(command: str = "") -> str:
    """The Bench tab before any run: how to record one (`command`), if given."""
    return _env.get_template("bench_table.html").render(run_id=None, rows=[], spec={}, simulated=False,
                                                        command=command)

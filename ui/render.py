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
    ActionEdited, Annotated, Artifact, BackendFailed, CommandFailed, RouteRequested, attempt_target,
)
from collabvr.loop import Command
from collabvr.state import AttemptState, RouteState, SessionState, StepState
from collabvr.studio import Activity


TEMPLATES = Path(__file__).resolve().parent / "templates"
Failure = BackendFailed | CommandFailed  # a model's failure, or the engine's own; shown alike
LABEL_NAMES = {"D1": "plan depth", "D2": "human verdict", "D3": "suggestion rating", "note": "note"}


class MediaLinks(Protocol):
    def clip_url(self, artifact: Artifact) -> str: ...

    def image_url(self, artifact: Artifact) -> str: ...

    def frame_urls(self, clip: Artifact, indices: Iterable[int]) -> dict[int, str]: ...


def esc(text: object) -> str:
    """Escape text for the few places that build HTML or Markdown outside a template."""
    return html.escape(str(text), quote=True)


def when(at: float) -> str:
    return _dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def is_simulated(state: SessionState) -> bool:
    return state.started.vlm.simulated or state.started.vgm.simulated


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["when"] = when
_env.globals["label_names"] = LABEL_NAMES


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


def _parts():
    """The macros of parts.html, callable from Python."""
    return _env.get_template("parts.html").module  # type: ignore[attr-defined]


# ----- the timeline ---------------------------------------------------------------------------------------

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
    clip_url: str
    prompt: PromptBlock
    frames: list[_Frame]
    notes: list[Annotated]


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
    rows: list[_AttemptRow]
    edits: list[_Edit]
    pending: PromptBlock | None
    routes: list[_Route]
    failures: list[Failure] = field(default_factory=list)


def render_timeline(state: SessionState, media: MediaLinks, failures: Iterable[Failure] = ()) -> str:
    """The whole session: a header, then one card per step, one row per attempt. `failures` are the
    session's BackendFailed and CommandFailed events (the state keeps only the unrecovered ones)."""
    failures = list(failures)
    numbers = {s.number for s in state.steps}
    cards = [_step_card(state, step, media, [f for f in failures if f.step == step.number]) for step in state.steps]
    loose = [f for f in failures if f.step is None or f.step not in numbers]
    return _env.get_template("timeline.html").render(
        state=state, cards=cards, loose_failures=loose, image_url=media.image_url(state.started.input_image),
        simulated=is_simulated(state))


def empty_timeline(message: str = "No session open. Start one above, or open one in the Sessions tab.") -> str:
    return _env.get_template("empty_timeline.html").render(message=message)


def _step_card(state: SessionState, step: StepState, media: MediaLinks, failures: list[Failure]) -> _StepCard:
    rows = []
    previous_prompt: str | None = None
    for attempt in step.attempts:
        rows.append(_attempt_row(state, step, attempt, media, previous_prompt))
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
    return _StepCard(step, rows, edits, pending, routes, failures)


def _attempt_row(state: SessionState, step: StepState, attempt: AttemptState, media: MediaLinks,
                 previous_prompt: str | None) -> _AttemptRow:
    gen = attempt.generated
    start = "from the step's start frame"
    if gen.start.kind == "partial":
        start = f"from frame {gen.start.frame_index} of attempt {gen.start.from_attempt}"
    before = previous_prompt if previous_prompt is not None else step.planned.plan.instruction
    target = attempt_target(step.number, attempt.number)
    return _AttemptRow(step=step.number, attempt=attempt, start=start, clip_url=media.clip_url(gen.candidate),
                       prompt=prompt_view("Prompt", before, attempt.prompt), frames=_frames(attempt, media),
                       notes=[a for a in state.annotations if a.target == target])


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

def render_status(state: SessionState, command: Command, activity: Activity, *, shown: str | None = None) -> str:
    """One line: the session's status (`shown`, as ui.handlers.view.shown_status says, else the logged one),
    what comes next (or why it waits), and the command in flight."""
    status = shown or state.status
    if status == "interrupted":
        status = "interrupted (press Run to resume)"
    elif status == "working":
        status = f"working ({activity.mode})"
    return _env.get_template("status_line.html").render(state=state, status=status, command=command,
                                                        activity=activity, simulated=is_simulated(state))


def empty_status() -> str:
    return _env.get_template("status_line.html").render(state=None)

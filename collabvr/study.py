"""Reliability studies: which items a study asks people to label, who gets which item next, and what a labeller
may see of it (CollabVR, Kim et al. 2026, section 4.4: D1 plan depth, D2 clip verification, D3 suggestion quality).

A study names sessions, the labels it collects (D1, D2, D3, notes), its annotators (none named: anyone) and how
many annotators each item needs. Everything here is a pure function of folded sessions and of the study's
records (holds, adjudications), which storage/study_store.py keeps in SQLite. The labels themselves are
`Annotated` events in the sessions' logs carrying the study's name, so the timeline, exports and
collabvr.agreement keep working on them.

Rules, stated once:

* An item is one label kind on one target: D1 of a session, D2 of a verified attempt, D3 of a verified attempt
  whose VLM verdict carries a suggestion. The items are listed when the study is created and never change, in
  study order: every D1 item, then every D2 item, then every D3 item, each by session (in the study's order),
  step and attempt.
* The queue (`next_item`) gives an annotator the first item, in study order, that they have not labelled in
  this study, that has fewer than `per_item` annotators, that nobody else holds, and, for a D3 item, whose D2
  item they have labelled or that needs no more D2 labels (the suggestion tells that the VLM rejected the clip,
  so nobody sees it before judging that clip blind). An annotator who already holds an item they have not
  labelled gets that item again, so a reload does not lose their place.
* Opening an item holds it for `hold_s` seconds: nobody else is given it until its holder labels it, moves on,
  or the hold times out. One annotator holds one item at a time.
* Only labels given in the study count (`Annotated.study` is the study's name); the latest label of an annotator
  on an item replaces their earlier ones. Notes given in the study are kept beside the labels, all of them.
* An item's final label is the adjudicated one if there is one, else the label every annotator gave when they
  agree; otherwise it has none and is a disagreement for the adjudication view.
* Blind (the default): what the labelling view returns (`item_view`) has no VLM verdict, confidence, reason,
  good fraction or first failing frame, no person's override and no other annotator's label. D1 shows the
  input image and the task prompt only (not the VLM's plan); D3 shows the suggestion, not its effect (the next
  attempt). A study that is not blind shows the VLM's verdict and the other labels as the timeline does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collabvr.agreement import vlm_plan_depth
from collabvr.decisions import D1_RANGE, D3_RANGE, STUDY_NAME, DecisionError, check_actor, check_text
from collabvr.events import Annotated, Artifact, parse_attempt_target
from collabvr.state import AttemptState, SessionState


LABEL_KINDS = ("D1", "D2", "D3")
STUDY_LABELS = LABEL_KINDS + ("note",)
DEFAULT_PER_ITEM = 2
DEFAULT_HOLD_S = 600.0
MAX_PER_ITEM = 10
ANNOTATOR_CHARS = 80


class StudyError(ValueError):
    """A study cannot be made or used as asked; the message says why."""


ItemKey = tuple[str, str, str]  # (session id, target, label kind)


@dataclass(frozen=True)
class StudySpec:
    """What a study collects and from whom. `annotators` empty: anyone may label."""

    name: str
    sessions: tuple[str, ...]
    labels: tuple[str, ...]
    per_item: int = DEFAULT_PER_ITEM
    annotators: tuple[str, ...] = ()
    blind: bool = True
    hold_s: float = DEFAULT_HOLD_S
    created_at: float = 0.0
    created_by: str = ""

    @property
    def kinds(self) -> tuple[str, ...]:
        """The label kinds that make items (notes do not)."""
        return tuple(k for k in LABEL_KINDS if k in self.labels)

    def may_label(self, annotator: str) -> bool:
        return not self.annotators or annotator in self.annotators


@dataclass(frozen=True)
class StudyItem:
    session_id: str
    target: str  # "session" or "step:<t>/attempt:<j>"
    label: str  # D1, D2 or D3
    order: int

    @property
    def key(self) -> ItemKey:
        return (self.session_id, self.target, self.label)

    @property
    def id(self) -> str:
        """A printable, parseable name of the item: "<session>|<target>|<label>"."""
        return item_id(self.key)


@dataclass(frozen=True)
class StudyLabel:
    """One annotator's current label of one item in a study (the latest Annotated event of theirs)."""

    session_id: str
    target: str
    label: str
    annotator: str
    value: int | str
    at: float
    reason: str = ""

    @property
    def key(self) -> ItemKey:
        return (self.session_id, self.target, self.label)


@dataclass(frozen=True)
class StudyNote:
    session_id: str
    target: str
    annotator: str
    text: str
    at: float
    frame: int | None = None


@dataclass(frozen=True)
class Hold:
    """`annotator` has item `key` open until `until` (unix seconds)."""

    key: ItemKey
    annotator: str
    since: float
    until: float

    def active(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True)
class Adjudication:
    """The final label of an item, recorded by an adjudicator with a reason (the latest one counts)."""

    key: ItemKey
    value: int | str
    reason: str
    adjudicator: str
    at: float


def item_id(key: ItemKey) -> str:
    return "|".join(key)


def parse_item_id(text: object) -> ItemKey:
    """The key of "<session>|<target>|<label>" (as `StudyItem.id` writes it); StudyError otherwise."""
    parts = text.split("|") if isinstance(text, str) else []
    if len(parts) != 3 or parts[2] not in LABEL_KINDS or not parts[0]:
        raise StudyError(f"{text!r} is not a study item (write it as 'SESSION|step:1/attempt:1|D2')")
    return parts[0], parts[1], parts[2]


# ----- making a study ------------------------------------------------------------------------------------

def check_study_name(name: object) -> str:
    if isinstance(name, str) and STUDY_NAME.fullmatch(name):
        return name
    raise StudyError(f"{name!r} is not a valid study name: use 1 to 64 letters, digits, '_' or '-'")


def parse_labels(text: str | Sequence[str]) -> tuple[str, ...]:
    """"d1,d2,d3,notes" (any case, "note" or "notes") -> ("D1", "D2", "D3", "note"), in that order."""
    words = text.split(",") if isinstance(text, str) else list(text)
    chosen = set()
    for word in (w.strip() for w in words):
        if not word:
            continue
        name = "note" if word.lower() in ("note", "notes") else word.upper()
        if name not in STUDY_LABELS:
            raise StudyError(f"unknown label {word!r}; a study collects d1, d2, d3 and notes")
        chosen.add(name)
    if not chosen & set(LABEL_KINDS):
        raise StudyError("a study needs at least one of d1, d2, d3 (notes alone make no items)")
    return tuple(k for k in STUDY_LABELS if k in chosen)


def parse_annotators(text: str | Sequence[str] | None) -> tuple[str, ...]:
    words = (text.split(",") if isinstance(text, str) else list(text)) if text else []
    names: list[str] = []
    for word in (w.strip() for w in words):
        if not word:
            continue
        if len(word) > ANNOTATOR_CHARS or word == "engine":
            raise StudyError(f"{word[:40]!r} cannot be an annotator's name (1 to {ANNOTATOR_CHARS} characters, "
                             "not 'engine')")
        if word not in names:
            names.append(word)
    return tuple(names)


def make_spec(name: str, sessions: Sequence[str], labels: str | Sequence[str], per_item: int = DEFAULT_PER_ITEM,
              annotators: str | Sequence[str] | None = None, *, blind: bool = True,
              hold_s: float = DEFAULT_HOLD_S, created_by: str = "", now: float | None = None) -> StudySpec:
    """A checked StudySpec; StudyError says what is wrong with the request."""
    check_study_name(name)
    if not sessions:
        raise StudyError("a study needs at least one session")
    if len(set(sessions)) != len(sessions):
        raise StudyError("a session is named twice")
    try:
        per_item = int(per_item)
    except (TypeError, ValueError):
        raise StudyError(f"--per-item must be a whole number, not {per_item!r}") from None
    if not 1 <= per_item <= MAX_PER_ITEM:
        raise StudyError(f"each item needs 1 to {MAX_PER_ITEM} annotators, not {per_item}")
    names = parse_annotators(annotators)
    if names and len(names) < per_item:
        raise StudyError(f"{per_item} annotators per item, but only {len(names)} named: "
                         f"{', '.join(names)}; name more, or lower --per-item")
    if not 10 <= float(hold_s) <= 24 * 3600:
        raise StudyError("an item is held for 10 s to 24 h once opened")
    return StudySpec(name=name, sessions=tuple(sessions), labels=parse_labels(labels), per_item=per_item,
                     annotators=names, blind=blind, hold_s=float(hold_s),
                     created_at=time.time() if now is None else now, created_by=created_by)


def study_items(spec: StudySpec, states: Mapping[str, SessionState]) -> list[StudyItem]:
    """The study's items, in study order (see the module docstring)."""
    found: list[tuple[str, str, str]] = []
    for kind in spec.kinds:
        for session_id in spec.sessions:
            state = states[session_id]
            if kind == "D1":
                found.append((session_id, "session", kind))
                continue
            for step in state.steps:
                for attempt in step.attempts:
                    verdict = attempt.vlm_verdict
                    if verdict is None or (kind == "D3" and not verdict.suggestion):
                        continue
                    found.append((session_id, f"step:{step.number}/attempt:{attempt.number}", kind))
    return [StudyItem(s, t, k, i) for i, (s, t, k) in enumerate(found)]


# ----- labels ----------------------------------------------------------------------------------------------

def study_labels(name: str, annotations: Iterable[tuple[str, Annotated]]) -> tuple[list[StudyLabel], list[StudyNote]]:
    """The study's labels (latest per item and annotator, in log order) and notes, from (session id, Annotated)
    pairs in log order."""
    latest: dict[tuple[ItemKey, str], StudyLabel] = {}
    notes: list[StudyNote] = []
    for session_id, event in annotations:
        if event.study != name:
            continue
        if event.label == "note":
            notes.append(StudyNote(session_id, event.target, event.actor, str(event.value), event.at, event.frame))
            continue
        row = StudyLabel(session_id, event.target, event.label, event.actor, event.value, event.at, event.reason)
        latest.pop((row.key, row.annotator), None)  # a relabel moves to the end: log order is kept
        latest[(row.key, row.annotator)] = row
    return list(latest.values()), notes


def labels_by_item(labels: Iterable[StudyLabel]) -> dict[ItemKey, dict[str, StudyLabel]]:
    grouped: dict[ItemKey, dict[str, StudyLabel]] = {}
    for row in labels:
        grouped.setdefault(row.key, {})[row.annotator] = row
    return grouped


# ----- the queue -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueAnswer:
    """The item an annotator gets next, or None and why not (`why`, in words)."""

    item: StudyItem | None
    why: str = ""
    resumed: bool = False  # the item was already held by this annotator


def next_item(spec: StudySpec, items: Sequence[StudyItem], labels: Iterable[StudyLabel], holds: Iterable[Hold],
              annotator: str, now: float, skip: Iterable[ItemKey] = ()) -> QueueAnswer:
    """What `annotator` labels next, by the queue rules of the module docstring. `skip` names items to pass
    over this time (the one they just moved on from), so that "next" moves on even when it is still free."""
    if not spec.may_label(annotator):
        return QueueAnswer(None, f"{annotator} is not an annotator of study {spec.name} "
                                 f"(its annotators: {', '.join(spec.annotators)})")
    by_item = labels_by_item(labels)
    active = [h for h in holds if h.active(now)]
    held_by_others = {h.key for h in active if h.annotator != annotator}
    skipped = set(skip)
    for hold in active:
        if hold.annotator == annotator and annotator not in by_item.get(hold.key, {}) and hold.key not in skipped:
            mine = next((i for i in items if i.key == hold.key), None)
            if mine is not None:
                return QueueAnswer(mine, resumed=True)
    waiting_on_others = 0
    for item in items:
        done_by = by_item.get(item.key, {})
        if annotator in done_by or len(done_by) >= spec.per_item:
            continue
        if item.key in held_by_others:
            waiting_on_others += 1
            continue
        if item.label == "D3" and "D2" in spec.kinds and not _d2_settled(spec, by_item, item, annotator):
            continue
        if item.key in skipped:
            continue
        return QueueAnswer(item)
    if waiting_on_others:
        return QueueAnswer(None, f"the {waiting_on_others} item(s) left for you are open with other annotators; "
                                 f"try again when they are done (a hold ends after {spec.hold_s / 60:g} min)")
    if skipped and any(annotator not in by_item.get(k, {}) for k in skipped):
        return QueueAnswer(None, "no other item is free; the one you moved on from is still yours to label")
    return QueueAnswer(None, f"nothing left for {annotator} in study {spec.name}: every item has your label "
                             f"or all the annotators it needs")


def _d2_settled(spec: StudySpec, by_item: Mapping[ItemKey, Mapping[str, StudyLabel]], item: StudyItem,
                annotator: str) -> bool:
    """Whether the D2 item of a D3 item's attempt is out of the way for `annotator`: labelled by them, full,
    or not in the study (the attempt has no D2 item)."""
    d2 = by_item.get((item.session_id, item.target, "D2"), {})
    return annotator in d2 or len(d2) >= spec.per_item


def previous_item(items: Sequence[StudyItem], labels: Iterable[StudyLabel], annotator: str,
                  current: ItemKey | None) -> StudyItem | None:
    """The item `annotator` labelled before `current` (by when they labelled it), or their latest one when
    `current` is not among theirs; None when there is none before it."""
    mine = sorted((r for r in labels if r.annotator == annotator), key=lambda r: r.at)
    keys = [r.key for r in mine]
    if current in keys:
        index = keys.index(current) - 1
        if index < 0:
            return None
        wanted = keys[index]
    elif keys:
        wanted = keys[-1]
    else:
        return None
    return next((i for i in items if i.key == wanted), None)


# ----- progress ----------------------------------------------------------------------------------------------

@dataclass
class Progress:
    items: int
    complete: int  # items with all the annotators they need
    labels: int  # labels given, at most per_item per item
    needed: int  # items x per_item
    per_annotator: dict[str, int]  # labels given per annotator
    held: dict[str, str]  # annotator -> the item they hold now
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (complete, items)

    @property
    def share(self) -> float:
        return self.labels / self.needed if self.needed else 1.0


def progress(spec: StudySpec, items: Sequence[StudyItem], labels: Iterable[StudyLabel], holds: Iterable[Hold],
             now: float) -> Progress:
    by_item = labels_by_item(labels)
    per_annotator = {name: 0 for name in spec.annotators}
    for done in by_item.values():
        for name in done:
            per_annotator[name] = per_annotator.get(name, 0) + 1
    keys = {i.key for i in items}
    complete = sum(1 for i in items if len(by_item.get(i.key, {})) >= spec.per_item)
    given = sum(min(len(by_item.get(i.key, {})), spec.per_item) for i in items)
    by_kind = {}
    for kind in spec.kinds:
        mine = [i for i in items if i.label == kind]
        by_kind[kind] = (sum(1 for i in mine if len(by_item.get(i.key, {})) >= spec.per_item), len(mine))
    held = {h.annotator: item_id(h.key) for h in holds if h.active(now) and h.key in keys}
    return Progress(items=len(items), complete=complete, labels=given, needed=len(items) * spec.per_item,
                    per_annotator=per_annotator, held=held, by_kind=by_kind)


# ----- what the labelling view shows ---------------------------------------------------------------------

@dataclass(frozen=True)
class ItemView:
    """Everything the labelling view may show of an item. In a blind study it holds nothing that tells the
    VLM's verdict or another annotator's label; `revealed` holds those only when the study is not blind."""

    item: StudyItem
    blind: bool
    simulated: bool
    task_prompt: str
    input_image: Artifact
    step: int | None = None
    attempt: int | None = None
    instruction: str = ""  # the prompt the clip was generated from
    target_state: str = ""  # what the planner said the action should lead to
    clip: Artifact | None = None
    n_frames: int = 0
    fps: float = 0.0
    prefix_frames: int = 0  # frames kept from an earlier attempt, before the new ones
    suggestion: str = ""  # D3 only: the repair the verifier suggested
    own: StudyLabel | None = None  # the annotator's own earlier label, when they come back to it
    revealed: dict[str, Any] = field(default_factory=dict)


def item_view(spec: StudySpec, state: SessionState, item: StudyItem, annotator: str,
              labels: Iterable[StudyLabel] = ()) -> ItemView:
    """What `annotator` sees of `item` (see the module docstring for what a blind study leaves out)."""
    mine = next((r for r in labels if r.key == item.key and r.annotator == annotator), None)
    simulated = state.started.vlm.simulated or state.started.vgm.simulated
    base = dict(item=item, blind=spec.blind, simulated=simulated, task_prompt=state.task_prompt,
                input_image=state.started.input_image, own=mine)
    revealed: dict[str, Any] = {}
    if item.label == "D1":
        if not spec.blind:
            revealed = {"vlm_plan_depth": vlm_plan_depth(state),
                        "others": _others(labels, item, annotator)}
        return ItemView(**base, revealed=revealed)
    step_number, attempt_number = parse_attempt_target(item.target)
    step = state.step(step_number)
    attempt = step.attempt(attempt_number)
    generated = attempt.generated
    if not spec.blind:
        revealed = _revealed(attempt) | {"others": _others(labels, item, annotator)}
    suggestion = attempt.vlm_verdict.suggestion if item.label == "D3" and attempt.vlm_verdict else ""
    return ItemView(**base, step=step_number, attempt=attempt_number, instruction=generated.prompt,
                    target_state=step.plan.target_state, clip=generated.candidate,
                    n_frames=attempt.candidate_frames, fps=generated.fps, prefix_frames=generated.prefix_frames,
                    suggestion=suggestion, revealed=revealed)


def _revealed(attempt: AttemptState) -> dict[str, Any]:
    verdict = attempt.vlm_verdict
    if verdict is None:
        return {}
    return {"vlm_verdict": verdict.verdict, "confidence": verdict.confidence, "reason": verdict.reason,
            "suggestion": verdict.suggestion,
            "first_failing_frame": attempt.verified.first_failing_frame if attempt.verified else None}


def _others(labels: Iterable[StudyLabel], item: StudyItem, annotator: str) -> list[tuple[str, int | str]]:
    return [(r.annotator, r.value) for r in labels if r.key == item.key and r.annotator != annotator]


# ----- the outcome of each item --------------------------------------------------------------------------

def latest_adjudications(adjudications: Iterable[Adjudication]) -> dict[ItemKey, Adjudication]:
    latest: dict[ItemKey, Adjudication] = {}
    for row in sorted(adjudications, key=lambda a: a.at):
        latest[row.key] = row
    return latest


def final_label(item_labels: Mapping[str, StudyLabel], adjudication: Adjudication | None) -> int | str | None:
    """The adjudicated value, else the value every annotator gave when they agree, else None."""
    if adjudication is not None:
        return adjudication.value
    values = {r.value for r in item_labels.values()}
    return values.pop() if len(values) == 1 else None


@dataclass(frozen=True)
class Disagreement:
    item: StudyItem
    labels: list[StudyLabel]
    adjudication: Adjudication | None


def disagreements(items: Sequence[StudyItem], labels: Iterable[StudyLabel],
                  adjudications: Iterable[Adjudication] = ()) -> list[Disagreement]:
    """Items whose annotators gave different values, in study order, with their adjudication if any."""
    by_item = labels_by_item(labels)
    decided = latest_adjudications(adjudications)
    found = []
    for item in items:
        given = by_item.get(item.key, {})
        if len({r.value for r in given.values()}) > 1:
            found.append(Disagreement(item, sorted(given.values(), key=lambda r: r.annotator), decided.get(item.key)))
    return found


def make_adjudication(item: StudyItem, value: object, reason: str | None, adjudicator: str | None,
                      at: float) -> Adjudication:
    """The final label of `item` as an adjudicator records it: the value in the label's own type and range
    (the ranges of collabvr.decisions), a reason and a name, both required and refused over their limits."""
    if not (adjudicator or "").strip():
        raise StudyError("an adjudication needs the adjudicator's name")
    try:  # the limits of every person's text, refused over them and never cut
        who, why = check_actor(adjudicator), check_text(reason, "reason")
    except DecisionError as e:
        raise StudyError(str(e)) from None
    if not why:
        raise StudyError("an adjudication needs a reason")
    return Adjudication(item.key, _adjudicated_value(item, value), why, who, at)


def _adjudicated_value(item: StudyItem, value: object) -> int | str:
    if item.label == "D2":
        text = str(value).strip().lower()
        if text not in ("accept", "reject"):
            raise StudyError(f"a D2 label is accept or reject, not {value!r}")
        return text
    try:
        number = int(str(value).strip())
    except ValueError:
        raise StudyError(f"a {item.label} label is a whole number, not {value!r}") from None
    low, high = D1_RANGE if item.label == "D1" else D3_RANGE
    if not low <= number <= high:
        raise StudyError(f"a {item.label} label is between {low} and {high}, not {number}")
    return number


# ----- export ---------------------------------------------------------------------------------------------

def export_rows(spec: StudySpec, items: Sequence[StudyItem], labels: Iterable[StudyLabel],
                notes: Iterable[StudyNote], adjudications: Iterable[Adjudication],
                states: Mapping[str, SessionState], truths: Mapping[ItemKey, str] | None = None
                ) -> list[dict[str, Any]]:
    """One JSON-able row per item: every label with its annotator and time, the notes, the adjudication, the
    final label, and what the VLM said (and, for simulated clips, the ground truth) for analysis."""
    labels = list(labels)
    by_item = labels_by_item(labels)
    decided = latest_adjudications(adjudications)
    notes = list(notes)
    rows = []
    for item in items:
        state = states.get(item.session_id)
        given = sorted(by_item.get(item.key, {}).values(), key=lambda r: r.at)
        adjudication = decided.get(item.key)
        rows.append({
            "study": spec.name, "item": item.id, "session_id": item.session_id, "target": item.target,
            "label": item.label, "order": item.order,
            "simulated": bool(state and (state.started.vlm.simulated or state.started.vgm.simulated)),
            "vlm": state.started.vlm.name if state else None,
            "labels": [{"annotator": r.annotator, "value": r.value, "at": r.at, "reason": r.reason} for r in given],
            "notes": [{"annotator": n.annotator, "text": n.text, "at": n.at, "frame": n.frame} for n in notes
                      if n.session_id == item.session_id and n.target == item.target],
            "complete": len(given) >= spec.per_item,
            "agreed": len({r.value for r in given}) == 1 if given else None,
            "adjudicated": None if adjudication is None else {
                "value": adjudication.value, "reason": adjudication.reason, "adjudicator": adjudication.adjudicator,
                "at": adjudication.at},
            "final": final_label(by_item.get(item.key, {}), adjudication),
            "vlm_value": vlm_value(state, item) if state else None,
            "truth": (truths or {}).get(item.key),
        })
    return rows


def vlm_value(state: SessionState, item: StudyItem) -> int | str | None:
    """What the VLM said on the item's question: its plan depth (D1) or its own verdict (D2); None for D3,
    which rates the VLM's suggestion and has no VLM answer."""
    if item.label == "D1":
        return vlm_plan_depth(state)
    if item.label == "D2":
        step, attempt = parse_attempt_target(item.target)
        try:
            verdict = state.step(step).attempt(attempt).vlm_verdict
        except KeyError:
            return None
        return verdict.verdict if verdict else None
    return None


# ----- a study as read from the store -------------------------------------------------------------------------

@dataclass
class StudySnapshot:
    """A study with everything its views, figures and export need, read at one moment (storage builds it)."""

    spec: StudySpec
    items: list[StudyItem]
    labels: list[StudyLabel]
    notes: list[StudyNote]
    holds: list[Hold]
    adjudications: list[Adjudication]
    states: dict[str, SessionState]
    truths: dict[ItemKey, str] = field(default_factory=dict)  # D2 items of simulated clips: the true verdict
    missing: list[str] = field(default_factory=list)  # sessions deleted since the study was made

    @property
    def present_items(self) -> list[StudyItem]:
        """The items whose session still exists."""
        return [i for i in self.items if i.session_id in self.states]

    def vlm_values(self) -> dict[ItemKey, int | str | None]:
        return {i.key: vlm_value(self.states[i.session_id], i) for i in self.present_items}

    def vlm_names(self) -> dict[str, str]:
        return {sid: state.started.vlm.name for sid, state in self.states.items()}

    def rows(self) -> list[dict[str, Any]]:
        return export_rows(self.spec, self.items, self.labels, self.notes, self.adjudications, self.states,
                           self.truths)


def d2_truths(items: Iterable[StudyItem], events_of: Mapping[str, Sequence[Any]]) -> dict[ItemKey, str]:
    """The simulator's verdict of each D2 item's clip, where the calibrated world recorded one."""
    from collabvr.sim.calibration import candidate_truths

    truths: dict[ItemKey, str] = {}
    per_session: dict[str, dict[tuple[int, int], str]] = {}
    for item in items:
        if item.label != "D2" or item.session_id not in events_of:
            continue
        if item.session_id not in per_session:
            per_session[item.session_id] = candidate_truths(events_of[item.session_id])
        truth = per_session[item.session_id].get(parse_attempt_target(item.target))
        if truth is not None:
            truths[item.key] = truth
    return truths

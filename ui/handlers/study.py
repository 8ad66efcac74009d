"""The Study tab: make a study, label its queue blind with the keyboard, see progress, adjudicate
disagreements, see its figures (Tables 6-7, plotly charts) and export it. The rules are collabvr.study's and the
records storage/study_store.py's; labels go through the Studio as Annotated events carrying the study's name.

What the labelling view returns is built from collabvr.study.item_view only, so in a blind study no value a
handler here returns holds the VLM's verdict or another annotator's label.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from collabvr.store import InvalidSessionId, StoreError, check_session_id
from collabvr.study import (
    ItemKey, StudyError, StudyItem, StudySnapshot, disagreements, item_view, make_spec, parse_item_id,
    previous_item, progress,
)
from collabvr.study_stats import agreement_rows, snapshot_figures, table6, table7
from storage.data_dir import EXPORTS_NAME
from storage.study_store import StudyStore
from ui import render
from ui.handlers.common import Services, need_name, ok, plain, problem


KIND_TITLES = {"D1": "D1 plan depth", "D2": "D2 clip verdict", "D3": "D3 suggestion rating"}
LABEL_CHOICES = ("D1", "D2", "D3", "notes")
FIGURE_RESAMPLES = 500  # bootstrap resamples in the app (the command line's default is 1000)


def _studies(svc: Services) -> StudyStore:
    return StudyStore(svc.store)


def _need_study(name: str | None) -> str | None:
    return None if name else problem("pick a study first (or make one under 'New study')")


def study_names(svc: Services) -> list[str]:
    return _studies(svc).names()


def create_study(svc: Services, name: str | None, sessions: str | None, labels: list[str] | None,
                 per_item: Any, annotators: str | None, blind: bool, who: str | None) -> tuple[str, list[str]]:
    """(message, every study's name). `sessions` is "all" or comma-separated ids."""
    try:
        text = (sessions or "").strip()
        if text == "all":
            ids = svc.store.session_ids()
        else:
            ids = [check_session_id(s.strip()) for s in text.split(",") if s.strip()]
        chosen = ["note" if k == "notes" else k for k in (labels or [])]
        spec = make_spec((name or "").strip(), ids, chosen, per_item if per_item not in (None, "") else 2,
                         annotators, blind=bool(blind), created_by=(who or "").strip())
        items = _studies(svc).create(spec)
    except (StudyError, InvalidSessionId, StoreError) as exc:
        return problem(plain(exc)), study_names(svc)
    return (ok(f"study {spec.name}: {len(items)} item(s) over {len(ids)} session(s), {spec.per_item} annotator(s) "
               f"per item, {'blind' if spec.blind else 'not blind'}"), study_names(svc))


def progress_html(svc: Services, name: str | None) -> str:
    if not name:
        message = ("No study picked." if study_names(svc) else
                   "No study yet: a study asks people to label the VLM's decisions (D1-D3) in a blind queue. "
                   "Make one under New study below (or: python -m collabvr study create NAME --sessions all).")
        return render.render_template("study_progress.html", spec=None, message=message)
    try:
        snap = _studies(svc).snapshot(name, with_truth=False)
    except (StudyError, StoreError) as exc:
        return render.render_template("study_progress.html", spec=None, message=plain(exc))
    done = progress(snap.spec, snap.present_items, snap.labels, snap.holds, time.time())
    return render.render_template("study_progress.html", spec=snap.spec, done=done, missing=snap.missing)


# ----- the labelling queue ------------------------------------------------------------------------------------

@dataclass
class QueueView:
    """What the labelling panel shows: the item's id (the panel keeps it), its HTML and a message."""

    item_id: str
    html: str
    message: str
    kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # the item view's own fields (for the API and tests)


def blank(message: str) -> QueueView:
    """An empty labelling view that says `message`."""
    return QueueView("", render.render_template("study_item.html", view=None, message=message), message)


def _shown(svc: Services, snap: StudySnapshot, item: StudyItem, who: str, message: str) -> QueueView:
    state = snap.states.get(item.session_id)
    if state is None:
        return blank(problem(f"session {item.session_id} of this item was deleted"))
    view = item_view(snap.spec, state, item, who, snap.labels)
    player = None
    if view.clip is not None:
        step, attempt = view.step or 0, view.attempt or 0
        player = render.clip_shown(state.step(step).attempt(attempt), svc.links, blind=snap.spec.blind)
    html = render.render_template("study_item.html", view=view, player=player, total=len(snap.items),
                                  kind_titles=KIND_TITLES, image_url=svc.links.image_url(view.input_image))
    data = {"item": item.id, "kind": item.label, "session_id": item.session_id, "step": view.step,
            "task_prompt": view.task_prompt, "instruction": view.instruction, "target_state": view.target_state,
            "suggestion": view.suggestion, "own": None if view.own is None else view.own.value,
            "blind": view.blind, "revealed": view.revealed}
    return QueueView(item.id, html, message, item.label, data)


def open_next(svc: Services, name: str | None, who: str | None, current: str | None = None,
              skip: bool = False) -> QueueView:
    """The annotator's next item, held for them; with `skip`, moving on from `current` (its hold ends)."""
    missing = _need_study(name) or need_name(who)
    if missing:
        return blank(missing)
    who = (who or "").strip()
    try:
        skipped: list[ItemKey] = [parse_item_id(current)] if skip and current else []
        answer = _studies(svc).open_next(name, who, skip=skipped)
        if answer.item is None:
            return blank(problem(answer.why) if "not an annotator" in answer.why else ok(answer.why))
        snap = _studies(svc).snapshot(name, with_truth=False)
        said = "back to the item you have open" if answer.resumed else "next item"
        return _shown(svc, snap, answer.item, who, ok(f"{said}: {KIND_TITLES[answer.item.label]}, "
                                                      f"held for you for {snap.spec.hold_s / 60:g} min"))
    except (StudyError, StoreError) as exc:
        return blank(problem(plain(exc)))


def back(svc: Services, name: str | None, who: str | None, current: str | None) -> QueueView:
    """The item the annotator labelled before `current`, to look at or relabel (their hold, if any, stays)."""
    missing = _need_study(name) or need_name(who)
    if missing:
        return blank(missing)
    who = (who or "").strip()
    try:
        snap = _studies(svc).snapshot(name, with_truth=False)
        key = parse_item_id(current) if current else None
        item = previous_item(snap.items, snap.labels, who, key)
        if item is None:
            view = open_next(svc, name, who) if not current else None
            return view or blank(problem("nothing before this item: you have labelled nothing earlier"))
        return _shown(svc, snap, item, who, ok("an item you labelled before; label it again to change it"))
    except (StudyError, StoreError) as exc:
        return blank(problem(plain(exc)))


def label(svc: Services, name: str | None, who: str | None, current: str | None, value: Any) -> QueueView:
    """Record the annotator's label of the item on screen, then open their next item."""
    missing = _need_study(name) or need_name(who)
    if missing:
        return blank(missing)
    if not current:
        return blank(problem("no item is open: press Next (n) to get one"))
    who = (who or "").strip()
    try:
        key = parse_item_id(current)
        if key[2] in ("D1", "D3"):
            value = _whole(value)
        _studies(svc).label(name, key, value, who, svc.studio.annotate)
    except (StudyError, StoreError, ValueError, KeyError) as exc:
        shown = _reshow(svc, name, who, current)
        shown.message = problem(plain(exc))
        return shown
    recorded = f"{key[2]} = {value} recorded for {key[1]} of {key[0]} by {who}"
    following = open_next(svc, name, who)
    following.message = ok(recorded) + ("; " + following.message.lstrip("✔⚠ ") if following.message else "")
    return following


def _reshow(svc: Services, name: str, who: str, current: str) -> QueueView:
    try:
        snap = _studies(svc).snapshot(name, with_truth=False)
        key = parse_item_id(current)
        item = next(i for i in snap.items if i.key == key)
        return _shown(svc, snap, item, who, "")
    except (StudyError, StoreError, StopIteration):
        return blank("")


def _whole(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StudyError(f"the label must be a whole number, not {value!r}") from None
    if number != int(number):
        raise StudyError(f"the label must be a whole number, not {value!r}")
    return int(number)


def note(svc: Services, name: str | None, who: str | None, current: str | None, text: str | None) -> str:
    missing = _need_study(name) or need_name(who)
    if missing:
        return missing
    if not current:
        return problem("no item is open: a note belongs to the item on screen")
    if not (text or "").strip():
        return problem("the note is empty")
    try:
        session_id, target, _ = parse_item_id(current)
        _studies(svc).note(name, session_id, target, text or "", (who or "").strip(), svc.studio.annotate)
    except (StudyError, StoreError, ValueError, KeyError) as exc:
        return problem(plain(exc))
    return ok(f"note recorded on {target} of {session_id}")


# ----- adjudication --------------------------------------------------------------------------------------------

DISAGREEMENT_COLUMNS = ["item", "label", "labels (annotator: value)", "adjudicated"]


def disagreement_table(svc: Services, name: str | None) -> tuple[list[list[str]], list[str], str]:
    """(rows, item ids, message) of the items whose annotators disagree. The study's labels are shown here, to
    the adjudicator, as they must be; the labelling view never shows them."""
    missing = _need_study(name)
    if missing:
        return [], [], missing
    try:
        snap = _studies(svc).snapshot(name, with_truth=False)
    except (StudyError, StoreError) as exc:
        return [], [], problem(plain(exc))
    found = disagreements(snap.present_items, snap.labels, snap.adjudications)
    rows = []
    for d in found:
        given = ", ".join(f"{r.annotator}: {r.value}" for r in d.labels)
        decided = "" if d.adjudication is None else \
            f"{d.adjudication.value} by {d.adjudication.adjudicator}: {d.adjudication.reason}"
        rows.append([d.item.id, d.item.label, given, decided])
    open_ = sum(1 for d in found if d.adjudication is None)
    return rows, [d.item.id for d in found], ok(f"{len(found)} disagreement(s), {open_} not adjudicated yet")


def adjudicate(svc: Services, name: str | None, item: str | None, value: Any, reason: str | None,
               who: str | None) -> str:
    missing = _need_study(name) or need_name(who)
    if missing:
        return missing
    if not item:
        return problem("pick a disagreement first")
    try:
        row = _studies(svc).adjudicate(name, parse_item_id(item), value, reason or "", who or "")
    except (StudyError, StoreError) as exc:
        return problem(plain(exc))
    return ok(f"final label of {item}: {row.value}, by {row.adjudicator}")


# ----- figures and export -------------------------------------------------------------------------------------------

@dataclass
class FiguresView:
    html: str
    charts: tuple[Any, Any]
    message: str
    figures: Any = None


def figures(svc: Services, name: str | None, resamples: int = FIGURE_RESAMPLES) -> FiguresView:
    missing = _need_study(name)
    if missing:
        return FiguresView("", (None, None), missing)
    try:
        snap = _studies(svc).snapshot(name)
    except (StudyError, StoreError) as exc:
        return FiguresView("", (None, None), problem(plain(exc)))
    found = snapshot_figures(snap, resamples)
    tables = [("Table 6: people (each item's consensus) against the VLM", *table6(found)),
              ("Table 7: D2 confusion, the VLM's verdict (pred) against people's", *table7(found)),
              ("Agreement, pair by pair and of all annotators (κ Cohen's kappa, α Krippendorff's alpha), "
               "95% bootstrap intervals", *agreement_rows(found))]
    simulated = any(s.started.vlm.simulated or s.started.vgm.simulated for s in snap.states.values())
    html = render.render_template("study_tables.html", tables=tables, notes=found.notes, simulated=simulated)
    try:
        from ui import charts

        shown = (charts.study_kappa_chart(found), charts.study_confusion_chart(found))
    except Exception:  # a chart must never take the tables down with it
        shown = (None, None)
    return FiguresView(html, shown, ok(f"figures of {name}: {len(snap.labels)} label(s) on "
                                       f"{len(snap.present_items)} item(s)"), found)


def export_study(svc: Services, name: str | None) -> tuple[str | None, str]:
    """A JSONL file in the data folder's exports (one row per item), and a message."""
    missing = _need_study(name)
    if missing:
        return None, missing
    try:
        rows = _studies(svc).snapshot(name).rows()
    except (StudyError, StoreError) as exc:
        return None, problem(plain(exc))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = svc.data_dir / EXPORTS_NAME / f"study-{name}-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    labels = sum(len(r["labels"]) for r in rows)
    return str(out), ok(f"exported study {name}: {len(rows)} item(s), {labels} label(s), one row per item")

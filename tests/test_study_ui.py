"""The Study tab's and the review panel's handlers, called directly (no browser): the blind labelling view
returns nothing of the VLM's verdict, the queue labels and moves on, adjudication, figures, export; notes at a
frame show on the clip's timeline; the status line says where a session stands at the GPU gate."""

from __future__ import annotations

import json
import threading

import pytest

from collabvr.events import parse_attempt_target
from collabvr.studio import Activity, Studio
from storage import open_data_dir
from ui import handlers, render
from ui.handlers import Services


@pytest.fixture
def svc(tmp_path):
    store, artifacts = open_data_dir(tmp_path / "data")
    return Services.create(Studio(store, artifacts), store, tmp_path / "data")


def finished(svc, seed: int) -> str:
    sid, message = handlers.new_session(svc, "sim", "maze", "easy", seed, None, "", "sim:gemini-2.5-pro", "sim:legacy",
                                        2, 2, 2.0, 1.0, [], 0.0)
    assert sid, message
    svc.studio.engine(sid).run()
    return sid


@pytest.fixture
def study(svc):
    sids = [finished(svc, 4), finished(svc, 0)]
    message, names = handlers.study.create_study(svc, "pilot", ",".join(sids), ["D1", "D2", "D3", "notes"], 2,
                                                 "ana, bo", True, "cy")
    assert not handlers.is_problem(message) and names == ["pilot"], message
    return sids


def vlm_words(svc, sids) -> list[str]:
    """Everything the VLM said about the sessions' clips that a blind view must not show."""
    words = []
    for sid in sids:
        for step in svc.studio.state(sid).steps:
            for attempt in step.attempts:
                verdict = attempt.vlm_verdict
                words += [verdict.reason, f"{verdict.confidence:.2f}"]
    return [w for w in words if w]


def test_the_blind_labelling_view_returns_neither_the_vlm_verdict_nor_other_labels(svc, study):
    secret = vlm_words(svc, study)
    seen_kinds = set()
    view = handlers.study.open_next(svc, "pilot", "ana")
    for _ in range(40):
        if not view.item_id:
            break
        returned = view.html + view.message + json.dumps(view.data)
        for word in secret:
            assert word not in returned, (view.item_id, word)
        assert "VLM:" not in returned and "verdict-badge" not in returned and "failing" not in returned
        assert "bo" not in json.dumps(view.data)
        seen_kinds.add(view.kind)
        if view.kind == "D2":
            handlers.study.label(svc, "pilot", "bo", view.item_id, "reject")  # another's label: never shown to ana
        value = {"D1": 2, "D2": "accept", "D3": 2}[view.kind]
        view = handlers.study.label(svc, "pilot", "ana", view.item_id, value)
    assert seen_kinds == {"D1", "D2", "D3"}
    assert "nothing left for ana" in view.message


def test_a_d3_view_shows_the_suggestion_but_not_its_effect(svc, study):
    view = handlers.study.open_next(svc, "pilot", "bo")
    while view.kind != "D3":
        value = 3 if view.kind == "D1" else "accept"
        view = handlers.study.label(svc, "pilot", "bo", view.item_id, value)
    assert view.data["suggestion"] and view.data["suggestion"] in view.html.replace("&#39;", "'").replace("&quot;", '"')
    session_id, target, _ = view.item_id.split("|")
    step, attempt = parse_attempt_target(target)
    later = [a for a in svc.studio.state(session_id).step(step).attempts if a.number > attempt]
    for other in later:  # the next attempt (the suggestion's effect) is not in the view
        assert f"attempt:{other.number}" not in view.html and other.prompt not in view.html


def test_labelling_moves_on_refuses_bad_input_and_back_returns(svc, study):
    first = handlers.study.open_next(svc, "pilot", "ana")
    assert first.kind == "D1"
    refused = handlers.study.label(svc, "pilot", "ana", first.item_id, "lots")
    assert handlers.is_problem(refused.message) and refused.item_id == first.item_id
    second = handlers.study.label(svc, "pilot", "ana", first.item_id, 3)
    assert "D1 = 3 recorded" in second.message and second.item_id != first.item_id
    back = handlers.study.back(svc, "pilot", "ana", second.item_id)
    assert back.item_id == first.item_id and back.data["own"] == 3
    assert handlers.is_problem(handlers.study.open_next(svc, "pilot", "eve").message)  # not an annotator
    assert handlers.is_problem(handlers.study.open_next(svc, "pilot", "").message)
    assert handlers.is_problem(handlers.study.open_next(svc, "", "ana").message)
    assert "3 of 3" not in handlers.study.progress_html(svc, "pilot")
    assert "ana" in handlers.study.progress_html(svc, "pilot")


def test_the_second_annotator_is_not_given_the_item_the_first_holds(svc, study):
    ana = handlers.study.open_next(svc, "pilot", "ana")
    bo = handlers.study.open_next(svc, "pilot", "bo")
    assert ana.item_id and bo.item_id and ana.item_id != bo.item_id
    assert "ana" in handlers.study.progress_html(svc, "pilot")  # who has what open


def test_disagreements_adjudication_figures_and_export(svc, study):
    for who, value in (("ana", "accept"), ("bo", "reject")):
        view = handlers.study.open_next(svc, "pilot", who)
        while view.item_id:
            answer = {"D1": 2, "D2": value, "D3": 2}[view.kind]
            view = handlers.study.label(svc, "pilot", who, view.item_id, answer)
    rows, ids, message = handlers.study.disagreement_table(svc, "pilot")
    assert ids and all(r[1] == "D2" for r in rows) and "not adjudicated" in message
    assert "ana: accept" in rows[0][2] and "bo: reject" in rows[0][2]
    assert handlers.is_problem(handlers.study.adjudicate(svc, "pilot", ids[0], "accept", "", "cy"))
    said = handlers.study.adjudicate(svc, "pilot", ids[0], "accept", "the disc reaches the cell", "cy")
    assert "final label" in said
    assert "accept by cy" in handlers.study.disagreement_table(svc, "pilot")[0][0][3]
    shown = handlers.study.figures(svc, "pilot", resamples=50)
    assert "Table 6" in shown.html and "Table 7" in shown.html and "Krippendorff" in shown.html
    assert shown.charts[0] is not None and shown.charts[1] is not None
    path, message = handlers.study.export_study(svc, "pilot")
    rows = [json.loads(line) for line in open(path)]
    assert len(rows) == len(handlers.study._studies(svc).items("pilot"))
    adjudicated = next(r for r in rows if r["item"] == ids[0])
    assert adjudicated["adjudicated"]["adjudicator"] == "cy" and adjudicated["final"] == "accept"
    assert {x["annotator"] for x in adjudicated["labels"]} == {"ana", "bo"}


def test_making_a_study_refuses_bad_input_with_a_message(svc):
    sid = finished(svc, 0)
    for args, why in ((("bad name!", sid, ["D2"], 2, "", True), "valid study name"),
                      (("s", "nope", ["D2"], 2, "", True), "no session"),
                      (("s", sid, [], 2, "", True), "at least one of"),
                      (("s", "../x", ["D2"], 2, "", True), "not a valid session id")):
        message, _ = handlers.study.create_study(svc, *args, "cy")
        assert handlers.is_problem(message) and why in message, message


# ----- review ----------------------------------------------------------------------------------------------

def test_a_note_at_a_frame_shows_on_that_clips_timeline(svc):
    sid = finished(svc, 4)
    targets = handlers.review.review_targets(svc, sid)
    target = targets[0]
    html, last, _ = handlers.review.compare(svc, sid, target)
    assert html.count('class="review-card') == len([t for t in targets if t.startswith(target.split("/")[0])])
    path, info = handlers.review.frame(svc, sid, target, 5)
    assert path and 'data-frame="5"' in info
    assert handlers.is_problem(handlers.review.note_at(svc, sid, target, last + 1, "past the end", "ana"))
    said = handlers.review.note_at(svc, sid, target, 5, "<b>the disc</b> clips the wall", "ana")
    assert "frame 5" in said and not handlers.is_problem(said)
    timeline = handlers.session_view(svc, sid).timeline
    step, attempt = parse_attempt_target(target)
    row = timeline.split(f'data-step="{step}" data-attempt="{attempt}"', 1)[1].split('class="attempt-row', 1)[0]
    assert 'class="mark moment-note" data-frame="5"' in row
    assert "note at frame 5" in row and "&lt;b&gt;the disc&lt;/b&gt;" in row and "<b>the disc" not in row


def test_jumps_go_to_the_first_failing_frame_and_to_where_new_frames_start(svc):
    sid = finished(svc, 4)
    state = svc.studio.state(sid)
    rejected = next((s.number, a) for s in state.steps for a in s.attempts
                    if a.verified and a.verified.first_failing_frame is not None)
    target = f"step:{rejected[0]}/attempt:{rejected[1].number}"
    assert handlers.review.jump(svc, sid, target, "failing")[0] == rejected[1].verified.first_failing_frame
    accepted = next(f"step:{s.number}/attempt:{a.number}" for s in state.steps for a in s.attempts
                    if a.verified and a.verified.first_failing_frame is None and not a.generated.prefix_frames)
    assert handlers.review.jump(svc, sid, accepted, "failing")[0] is None
    assert handlers.review.jump(svc, sid, accepted, "boundary")[0] is None


# ----- live feedback ------------------------------------------------------------------------------------------

def test_the_status_line_says_the_sessions_place_in_the_gpu_queue(svc):
    sid = finished(svc, 0)
    gate = svc.studio.gate
    entered, leave = threading.Event(), threading.Event()

    def hold(who):
        with gate.hold(who=who):
            entered.set()
            leave.wait(5)

    threading.Thread(target=hold, args=("other",), daemon=True).start()
    entered.wait(5)
    waiter = threading.Thread(target=lambda: gate.hold(who=sid).__enter__(), daemon=True)
    waiter.start()
    for _ in range(100):
        if svc.studio.gpu_queue(sid).place == "waiting":
            break
        threading.Event().wait(0.02)
    queue = svc.studio.gpu_queue(sid)
    assert (queue.place, queue.position, queue.busy, queue.waiting) == ("waiting", 1, 1, 1)
    state = svc.studio.state(sid)
    line = render.render_status(state, svc.studio.next_command(sid),
                                Activity(sid, running=True, mode="run", command="generate step 1 attempt 1", done=3,
                                         total=11), gpu=queue)
    assert "waiting for the GPU: 1st in line (1 of 1 GPU slot busy, 1 waiting)" in line and "3/11" in line
    leave.set()


def test_the_study_tab_without_studies_says_what_a_study_is_and_how_to_make_one(tmp_path):
    store, artifacts = open_data_dir(tmp_path / "data")
    svc = Services.create(Studio(store, artifacts), store, tmp_path / "data")
    html = handlers.study.progress_html(svc, None)
    assert "No study yet" in html and "New study" in html and "study create" in html

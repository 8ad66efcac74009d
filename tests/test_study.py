"""Reliability studies: the queue (no item twice, the annotators each item needs, holds), blind labelling
views, the agreement figures against hand-computed values, adjudication and export, in SQLite."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict

import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.events import attempt_target
from collabvr.study import (
    Adjudication, Hold, StudyError, StudyItem, StudyLabel, StudySpec, disagreements, final_label, item_view,
    make_spec, next_item, parse_item_id, parse_labels, previous_item, progress, study_items,
)
from collabvr.study_stats import (
    agreement_rows, bootstrap, cohen_kappa, krippendorff_alpha, study_figures, table6, table7,
)
from storage import SQLiteEventStore
from storage.study_store import StudyNotFound, StudyStore

from scripted import ScriptedVLM, accept, plan, reject, start_engine


NOW = 1_000_000.0
REASON = "MARKER-REASON the disc went left"
SUGGESTION = "MARKER-SUGGESTION move it right"


def spec(per_item: int = 2, labels=("D2",), annotators=(), hold_s: float = 600.0) -> StudySpec:
    return StudySpec(name="s", sessions=("a",), labels=tuple(labels), per_item=per_item,
                     annotators=tuple(annotators), hold_s=hold_s)


def items(n: int, label: str = "D2") -> list[StudyItem]:
    return [StudyItem("a", attempt_target(i + 1, 1), label, i) for i in range(n)]


def labelled(item: StudyItem, who: str, value="accept", at: float = NOW) -> StudyLabel:
    return StudyLabel(item.session_id, item.target, item.label, who, value, at)


# ----- the queue -------------------------------------------------------------------------------------------

def test_the_queue_never_gives_an_annotator_the_same_item_twice():
    study, pool = spec(per_item=2), items(6)
    labels: list[StudyLabel] = []
    seen = []
    for turn in range(20):
        answer = next_item(study, pool, labels, [], "ana", NOW + turn)
        if answer.item is None:
            break
        seen.append(answer.item.key)
        labels.append(labelled(answer.item, "ana", at=NOW + turn))
    assert len(seen) == len(set(seen)) == 6
    assert "nothing left for ana" in next_item(study, pool, labels, [], "ana", NOW + 99).why


def test_each_item_gets_exactly_the_annotators_it_needs():
    study, pool = spec(per_item=2), items(5)
    labels: list[StudyLabel] = []
    turn = 0
    for _ in range(10):  # three people take turns until nobody gets anything
        given = 0
        for who in ("ana", "bo", "cy"):
            answer = next_item(study, pool, labels, [], who, NOW + turn)
            turn += 1
            if answer.item is not None:
                labels.append(labelled(answer.item, who, at=NOW + turn))
                given += 1
        if not given:
            break
    per_item = {i.key: sorted(r.annotator for r in labels if r.key == i.key) for i in pool}
    assert all(len(names) == 2 for names in per_item.values()), per_item
    assert len(labels) == 10
    assert progress(study, pool, labels, [], NOW).complete == 5


def test_a_held_item_goes_to_nobody_else_until_released_or_timed_out():
    study, pool = spec(per_item=2, hold_s=600), items(1)
    hold = Hold(pool[0].key, "ana", NOW, NOW + 600)
    waiting = next_item(study, pool, [], [hold], "bo", NOW + 10)
    assert waiting.item is None and "open with other annotators" in waiting.why
    # ana herself gets it back (a reload does not lose her place)
    again = next_item(study, pool, [], [hold], "ana", NOW + 10)
    assert again.item == pool[0] and again.resumed
    # released (no hold any more): bo gets it
    assert next_item(study, pool, [], [], "bo", NOW + 10).item == pool[0]
    # timed out: bo gets it too
    assert next_item(study, pool, [], [hold], "bo", NOW + 601).item == pool[0]


def test_a_second_annotator_gets_the_next_free_item_while_the_first_is_held():
    study, pool = spec(per_item=2), items(3)
    hold = Hold(pool[0].key, "ana", NOW, NOW + 600)
    assert next_item(study, pool, [], [hold], "bo", NOW).item == pool[1]


def test_a_d3_item_waits_until_the_annotator_judged_its_clip_blind():
    study = StudySpec(name="s", sessions=("a",), labels=("D2", "D3"), per_item=1)
    d2, d3 = StudyItem("a", "step:1/attempt:1", "D2", 0), StudyItem("a", "step:1/attempt:1", "D3", 1)
    hold = Hold(d2.key, "ana", NOW, NOW + 600)
    # bo may not rate the suggestion while the clip's D2 item is still open to him
    assert next_item(study, [d2, d3], [], [hold], "bo", NOW).item is None
    assert next_item(study, [d2, d3], [labelled(d2, "ana")], [], "bo", NOW).item == d3  # D2 full: settled


def test_next_moves_on_from_the_skipped_item_and_back_returns_the_previous_one():
    study, pool = spec(per_item=1), items(3)
    assert next_item(study, pool, [], [], "ana", NOW, skip=[pool[0].key]).item == pool[1]
    labels = [labelled(pool[0], "ana", at=NOW), labelled(pool[2], "ana", at=NOW + 5)]
    assert previous_item(pool, labels, "ana", pool[2].key) == pool[0]
    assert previous_item(pool, labels, "ana", pool[1].key) == pool[2]  # a new item: back to the latest
    assert previous_item(pool, labels, "ana", pool[0].key) is None


def test_only_the_named_annotators_get_items():
    study = spec(annotators=("ana", "bo"))
    answer = next_item(study, items(2), [], [], "eve", NOW)
    assert answer.item is None and "not an annotator" in answer.why


def test_bad_study_requests_are_refused_with_the_reason():
    with pytest.raises(StudyError, match="valid study name"):
        make_spec("no spaces", ["a"], "d2")
    with pytest.raises(StudyError, match="unknown label"):
        parse_labels("d2,d9")
    with pytest.raises(StudyError, match="only 1 named"):
        make_spec("s", ["a"], "d2", per_item=2, annotators="ana")
    with pytest.raises(StudyError, match="1 to 10"):
        make_spec("s", ["a"], "d2", per_item=0)
    with pytest.raises(StudyError, match="not a study item"):
        parse_item_id("a|step:1/attempt:1|D7")
    assert parse_labels("D3, notes ,d1") == ("D1", "D3", "note")


# ----- sessions, blind views -------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    return SQLiteEventStore(tmp_path / "db.sqlite")


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


def session(store, folder, verdicts=None):
    """Step 1: attempt 1 rejected (with REASON and SUGGESTION), attempt 2 accepted; then task complete."""
    vlm = ScriptedVLM(plans=[plan("push the disc right"), plan(complete=True)],
                      verdicts=verdicts or [reject(0.5, suggestion=SUGGESTION, reason=REASON), accept()])
    engine = start_engine(folder, vlm, store=store, n_max=2)
    engine.run()
    return engine


def annotate_with(engines):
    def annotate(session_id, target, label, value, actor, study=None, frame=None):
        return engines[session_id].annotate(target, label, value, actor, study=study, frame=frame)
    return annotate


def test_study_items_are_d1_per_session_d2_per_verified_attempt_d3_per_suggestion(store, folder):
    engine = session(store, folder)
    sid = engine.session_id
    found = study_items(make_spec("s", [sid], "d1,d2,d3"), {sid: engine.state})
    assert [(i.target, i.label) for i in found] == [
        ("session", "D1"), ("step:1/attempt:1", "D2"), ("step:1/attempt:2", "D2"), ("step:1/attempt:1", "D3")]


def test_the_blind_labelling_view_holds_no_vlm_verdict_and_no_other_label(store, folder):
    engine = session(store, folder)
    sid = engine.session_id
    study = make_spec("s", [sid], "d1,d2,d3", per_item=2)
    other = StudyLabel(sid, "step:1/attempt:1", "D2", "OTHER-ANNOTATOR", "reject", NOW)
    d1, d2, _, d3 = study_items(study, {sid: engine.state})
    for item in (d1, d2, d3):
        view = item_view(study, engine.state, item, "ana", [other])
        shown = json.dumps(asdict(view), default=str)
        assert REASON not in shown and "OTHER-ANNOTATOR" not in shown
        assert "confidence" not in shown and "0.8" not in shown  # the scripted reject's confidence
        assert "first_failing" not in shown and view.revealed == {}
        assert ("reject" not in shown) and ("accept" not in shown)  # neither verdict, in any field
    assert SUGGESTION not in json.dumps(asdict(item_view(study, engine.state, d2, "ana")), default=str)
    # D3 shows the suggestion, not its effect (the next attempt, its verdict)
    rated = item_view(study, engine.state, d3, "ana")
    assert rated.suggestion == SUGGESTION and rated.attempt == 1
    # D1: the task and the input image only, not the VLM's plan
    depth = item_view(study, engine.state, d1, "ana")
    assert depth.clip is None and depth.instruction == "" and depth.task_prompt == engine.state.task_prompt


def test_a_study_that_is_not_blind_shows_the_verdict_and_the_other_labels(store, folder):
    engine = session(store, folder)
    sid = engine.session_id
    study = make_spec("s", [sid], "d2", blind=False)
    other = StudyLabel(sid, "step:1/attempt:1", "D2", "bo", "reject", NOW)
    view = item_view(study, engine.state, study_items(study, {sid: engine.state})[0], "ana", [other])
    assert view.revealed["vlm_verdict"] == "reject" and view.revealed["reason"] == REASON
    assert view.revealed["others"] == [("bo", "reject")]


# ----- the study in SQLite ------------------------------------------------------------------------------------

def test_a_study_in_sqlite_queues_labels_holds_adjudicates_and_exports(store, folder):
    engines = {e.session_id: e for e in (session(store, folder), session(store, folder))}
    studies = StudyStore(store)
    spec_ = make_spec("pilot", list(engines), "d2,notes", per_item=2, annotators="ana,bo", now=NOW)
    created = studies.create(spec_)
    assert len(created) == 4 and studies.names() == ["pilot"]
    annotate = annotate_with(engines)

    first = studies.open_next("pilot", "ana", now=NOW).item
    assert studies.holds("pilot")[0].key == first.key
    second = studies.open_next("pilot", "bo", now=NOW).item
    assert second.key != first.key  # held by ana
    studies.label("pilot", first.key, "accept", "ana", annotate)
    assert all(h.annotator != "ana" for h in studies.holds("pilot"))  # labelled: released
    studies.label("pilot", second.key, "accept", "bo", annotate)
    # the labels are Annotated events in the session log, carrying the study's name
    event = [a for a in engines[first.session_id].state.annotations if a.actor == "ana"][-1]
    assert (event.study, event.label, event.value) == ("pilot", "D2", "accept")
    # a label given outside the study does not count in it
    engines[first.session_id].annotate(first.target, "D2", "reject", "eve")
    labels, _ = studies.labels("pilot")
    assert {(r.annotator, r.value) for r in labels} == {("ana", "accept"), ("bo", "accept")}

    while (answer := studies.open_next("pilot", "ana", now=NOW + 1)).item is not None:
        studies.label("pilot", answer.item.key, "accept", "ana", annotate)
    while (answer := studies.open_next("pilot", "bo", now=NOW + 2)).item is not None:
        studies.label("pilot", answer.item.key, "reject" if answer.item.key == first.key else "accept", "bo",
                      annotate)
    studies.note("pilot", first.session_id, first.target, "the disc flickers", "bo", annotate)
    snap = studies.snapshot("pilot")
    assert progress(snap.spec, snap.items, snap.labels, snap.holds, NOW).complete == 4
    found = disagreements(snap.items, snap.labels)
    assert [d.item.key for d in found] == [first.key]

    with pytest.raises(StudyError, match="needs a reason"):
        studies.adjudicate("pilot", first.key, "accept", "", "cy")
    with pytest.raises(StudyError, match="accept or reject"):
        studies.adjudicate("pilot", first.key, "maybe", "looked again", "cy")
    # over their limits, a reason and a name are refused with the limit named, never cut
    with pytest.raises(StudyError, match="the reason has 5000 characters; at most 4000"):
        studies.adjudicate("pilot", first.key, "reject", "r" * 5000, "cy")
    with pytest.raises(StudyError, match="the name has 200 characters; at most 80"):
        studies.adjudicate("pilot", first.key, "reject", "looked again", "c" * 200)
    assert studies.snapshot("pilot").rows()[0]["adjudicated"] is None  # nothing recorded
    studies.adjudicate("pilot", first.key, "reject", "the disc goes left at frame 3", "cy", now=NOW + 9)
    rows = studies.snapshot("pilot").rows()
    assert len(rows) == 4
    row = next(r for r in rows if r["item"] == first.id)
    assert [(x["annotator"], x["value"]) for x in row["labels"]] == [("ana", "accept"), ("bo", "reject")]
    assert row["adjudicated"]["value"] == "reject" and row["adjudicated"]["adjudicator"] == "cy"
    assert row["final"] == "reject" and row["agreed"] is False and row["simulated"] is True
    assert row["notes"][0]["text"] == "the disc flickers"
    assert all(r["labels"][0]["at"] for r in rows)
    json.dumps(rows)


def test_outsiders_and_items_of_another_study_are_refused(store, folder):
    engine = session(store, folder)
    studies = StudyStore(store)
    studies.create(make_spec("closed", [engine.session_id], "d2", per_item=1, annotators="ana"))
    annotate = annotate_with({engine.session_id: engine})
    with pytest.raises(StudyError, match="not an annotator"):
        studies.label("closed", (engine.session_id, "step:1/attempt:1", "D2"), "accept", "eve", annotate)
    with pytest.raises(StudyError, match="not an item"):
        studies.label("closed", (engine.session_id, "step:9/attempt:1", "D2"), "accept", "ana", annotate)
    with pytest.raises(StudyError, match="exists already"):
        studies.create(make_spec("closed", [engine.session_id], "d2", per_item=1))
    with pytest.raises(StudyNotFound):
        studies.spec("nope")
    with pytest.raises(StudyError, match="no session"):
        studies.create(make_spec("other", ["missing"], "d2", per_item=1))


def test_two_annotators_opening_at_the_same_moment_never_get_the_same_item(store, folder):
    engines = {e.session_id: e for e in (session(store, folder), session(store, folder))}
    studies = StudyStore(store)
    studies.create(make_spec("race", list(engines), "d2", per_item=2))
    got: dict[str, object] = {}
    barrier = threading.Barrier(4)

    def ask(who):
        barrier.wait()
        got[who] = studies.open_next("race", who, now=NOW).item.key

    threads = [threading.Thread(target=ask, args=(w,)) for w in ("ana", "bo", "cy", "di")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got.values())) == 4


# ----- agreement figures, against hand-computed values ---------------------------------------------------------

def test_cohens_kappa_of_two_annotators_matches_the_hand_computed_value():
    first = ["accept"] * 6 + ["reject"] * 4
    second = ["accept"] * 4 + ["reject"] * 5 + ["accept"]
    # By hand: they agree on 7 of 10 (po = 0.7); first accepts 6/10, second 5/10, so
    # pe = 0.6 * 0.5 + 0.4 * 0.5 = 0.5 and kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(["accept"] * 3, ["accept"] * 3) is None  # chance agreement already 1
    assert cohen_kappa(["accept"], ["reject"]) is None


THREE = [{"ana": "accept", "bo": "accept", "cy": "accept"}, {"ana": "accept", "bo": "accept", "cy": "reject"},
         {"ana": "reject", "bo": "reject", "cy": "reject"}, {"ana": "accept", "bo": "reject", "cy": "reject"}]


def test_krippendorffs_alpha_of_three_annotators_matches_the_hand_computed_value():
    # By hand, the coincidence matrix (each ordered pair of values in a unit weighs 1 / (m_u - 1) = 1/2):
    # o_aa = 3 + 1 = 4, o_rr = 3 + 1 = 4, o_ar = o_ra = 1 + 1 = 2; n = 12, n_a = n_r = 6.
    # Do = 4 / 12 = 1/3; De = 2 * 6 * 6 / (12 * 11) = 6/11; alpha = 1 - (1/3) / (6/11) = 7/18.
    assert krippendorff_alpha(THREE, "D2") == pytest.approx(7 / 18)
    assert krippendorff_alpha([{"ana": "accept", "bo": "accept"}] * 3, "D2") is None  # no variation
    assert krippendorff_alpha([{"ana": "accept"}], "D2") is None  # nothing pairable


def test_study_figures_of_three_annotators_give_pairwise_kappa_alpha_and_the_consensus_against_the_vlm():
    pool = items(4)
    labels = [labelled(i, who, value) for i, unit in zip(pool, THREE) for who, value in unit.items()]
    vlm = {i.key: v for i, v in zip(pool, ["accept", "reject", "reject", "accept"])}
    figures = study_figures(pool, labels, [], vlm, {"a": "sim-vlm"}, resamples=200)
    pair = next(p for p in figures.between if (p.first, p.second) == ("ana", "bo"))
    # ana a,a,r,a against bo a,a,r,r: po = 3/4, pe = 3/4 * 2/4 + 1/4 * 2/4 = 1/2, kappa = 0.5
    assert (pair.n, pair.agreement, pair.kappa) == (4, 0.75, pytest.approx(0.5))
    group = figures.groups[0]
    assert group.alpha == pytest.approx(7 / 18) and group.n == 4 and group.level == "nominal"
    assert group.ci is None or group.ci.low <= group.alpha <= group.ci.high
    # The consensus: items 1 and 3 are unanimous (accept, reject); 2 and 4 disagree and are left out, with a note.
    consensus = next(p for p in figures.vs_vlm if p.first == "consensus")
    assert consensus.n == 2 and consensus.agreement == 1.0  # accept = accept, reject = reject
    assert any("2 item(s)" in note for note in figures.notes)
    # Adjudicating item 2 as accept adds it to the consensus.
    decided = Adjudication(pool[1].key, "accept", "looked again", "di", NOW)
    again = study_figures(pool, labels, [decided], vlm, {"a": "sim-vlm"}, resamples=50)
    assert next(p for p in again.vs_vlm if p.first == "consensus").n == 3


def test_tables_6_and_7_are_laid_out_as_in_the_paper():
    pool = items(4)
    labels = [labelled(i, w, v) for i, v in zip(pool, ["accept", "accept", "reject", "reject"])
              for w in ("ana", "bo")]
    vlm = {i.key: v for i, v in zip(pool, ["accept", "reject", "reject", "reject"])}
    figures = study_figures(pool, labels, [], vlm, {"a": "gemini"}, resamples=100)
    header, rows = table6(figures)
    assert header == ["Axis", "gemini (1 session)"]
    assert [r[0] for r in rows] == ["D1 exact-match (n)", "D1 MAE", "D2 accept-recall / reject-recall / overall (n)",
                                    "D2 Cohen's κ [95% CI]", "D3 mean, ≥2 share, =3 share (n)"]
    assert rows[2][1] == "50.0% / 100.0% / 75.0% (4)"
    assert rows[3][1].startswith("0.500")
    header7, rows7 = table7(figures)
    assert rows7 == [["gemini", "1", "0", "1", "2"]]  # pred x human: acc/acc, acc/rej, rej/acc, rej/rej
    assert agreement_rows(figures)[1]


def test_the_bootstrap_interval_is_seeded_and_covers_the_estimate():
    pairs = [("accept", "accept")] * 8 + [("reject", "reject")] * 8 + [("accept", "reject")] * 4
    kappa = lambda ps: cohen_kappa([a for a, _ in ps], [b for _, b in ps])  # noqa: E731
    first, second = bootstrap(pairs, kappa, 300, seed=1), bootstrap(pairs, kappa, 300, seed=1)
    assert first == second and first.low <= kappa(pairs) <= first.high and first.resamples > 150
    assert bootstrap(pairs[:1], kappa) is None


def test_final_label_is_the_adjudicated_one_else_the_unanimous_one():
    item = items(1)[0]
    agree = {"ana": labelled(item, "ana"), "bo": labelled(item, "bo")}
    split = {"ana": labelled(item, "ana"), "bo": labelled(item, "bo", "reject")}
    assert final_label(agree, None) == "accept" and final_label(split, None) is None
    assert final_label(split, Adjudication(item.key, "reject", "why", "cy", NOW)) == "reject"

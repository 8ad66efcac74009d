"""Human-vs-VLM agreement (D1 plan depth, D2 verdicts, D3 suggestion ratings) and the per-step series."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from collabvr.agreement import (
    agreement, cumulative_vgm_seconds, d1_report, d2_report, d3_report, latest_labels, verdicts_per_step,
    vlm_plan_depth,
)
from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec, attempt_target
from collabvr.store import MemoryEventStore

from scripted import ScriptedVGM, ScriptedVLM, accept, plan, reject, route


TASK = TaskSpec(prompt="Sort the blocks.", source="upload")
# ScriptedVGM makes round(seconds * 8) + 1 frames at 8 fps: a 6 s clip is 49 frames = 6.125 s, a 3 s one 3.125 s.
FIRST, LATER = 6.0, 3.0  # nominal clip lengths: the paper counts what was asked for


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


def run_session(folder, plans, verdicts, routes=(), **config) -> Engine:
    image = np.full((32, 64, 3), 200, dtype=np.uint8)
    engine = Engine.start(MemoryEventStore(), folder, ScriptedVLM(plans=list(plans), verdicts=list(verdicts),
                                                                  routes=list(routes)),
                          ScriptedVGM(), task=TASK, input_image=image, config=LoopConfig(**config), seed=3)
    engine.run()
    return engine


def two_step_session(folder) -> Engine:
    """Step 1: attempt 1 rejected, attempt 2 accepted; step 2: attempt 1 accepted; then "task complete"."""
    return run_session(folder, [plan("a"), plan("b"), plan(complete=True)], [reject(0.0), accept(), accept()],
                       n_max=3)


# ----- D2 ------------------------------------------------------------------------------------------------

def gemini_pairs() -> list[tuple[str, str]]:
    """The paper's Gemini matrix (VLM x human): acc/acc 106, acc/rej 43, rej/acc 19, rej/rej 82,
    as (human, VLM) pairs."""
    return ([("accept", "accept")] * 106 + [("reject", "accept")] * 43 + [("accept", "reject")] * 19
            + [("reject", "reject")] * 82)


def test_paper_matrix_gives_the_papers_recalls_agreement_and_kappa():
    pairs = gemini_pairs()
    report = d2_report(pairs)
    assert report.n == 250
    assert report.confusion == {"accept": {"accept": 106, "reject": 19}, "reject": {"accept": 43, "reject": 82}}
    assert report.matrix == [[106, 19], [43, 82]] and report.labels == ["accept", "reject"]
    assert report.accept_recall == pytest.approx(106 / 125) == pytest.approx(0.848)
    assert report.reject_recall == pytest.approx(82 / 125) == pytest.approx(0.656)
    assert report.agreement == pytest.approx(0.752)
    # By hand: po = 0.752; VLM accepts 149/250, people 125/250, so pe = 0.5*149/250 + 0.5*101/250 = 0.5,
    # kappa = (0.752 - 0.5) / (1 - 0.5) = 0.504.
    human, vlm = zip(*pairs)
    assert report.kappa == pytest.approx(cohen_kappa_score(human, vlm)) == pytest.approx(0.504)
    # F1 of VLM rejects against people's rejects: 2*82 / (2*82 + 19 + 43)
    assert report.reject_f1 == pytest.approx(164 / 226)
    assert report.notes == []


def test_kappa_is_none_with_a_note_when_everybody_gave_the_same_verdict():
    report = d2_report([("accept", "accept")] * 5)
    assert report.kappa is None and report.agreement == 1.0
    assert any("kappa is undefined" in note for note in report.notes)
    assert report.reject_recall is None and any("reject-recall" in note for note in report.notes)
    json.dumps(asdict(report))  # None, not NaN


def test_kappa_needs_two_pairs_and_an_empty_report_defines_nothing():
    one = d2_report([("accept", "reject")])
    assert one.kappa is None and any("at least 2" in note for note in one.notes)
    empty = d2_report([])
    assert (empty.n, empty.matrix, empty.agreement, empty.kappa, empty.accept_recall) == (0, [[0, 0], [0, 0]],
                                                                                          None, None, None)
    assert empty.notes


def test_kappa_is_defined_when_only_one_side_varies():
    report = d2_report([("accept", "accept"), ("accept", "reject"), ("accept", "accept")])
    assert report.kappa == pytest.approx(0.0)  # pe = po = 2/3
    assert report.reject_recall is None and report.accept_recall == pytest.approx(2 / 3)


def test_d2_pairs_must_be_verdicts():
    with pytest.raises(ValueError, match="D2 pair"):
        d2_report([("accept", "maybe")])


def test_d2_compares_with_the_vlms_own_verdict_not_the_override(folder):
    engine = run_session(folder, [plan("a")], [reject(0.4)], n_max=1, breakpoints=("on_reject",))
    engine.override_verdict(1, 1, "accept", actor="ana", reason="it did move left")
    engine.annotate(attempt_target(1, 1), "D2", "accept", actor="ana")
    state = engine.state
    assert state.steps[0].attempts[0].effective_verdict == "accept"
    report = agreement([state])
    assert report.d2.confusion["accept"] == {"accept": 0, "reject": 1}
    assert report.d2.agreement == 0.0 and report.d2.accept_recall == 0.0


def test_a_later_label_of_the_same_annotator_replaces_the_earlier_one(folder):
    engine = two_step_session(folder)
    target = attempt_target(1, 1)  # the VLM rejected it
    engine.annotate(target, "D2", "accept", actor="ana")
    engine.annotate(target, "D2", "reject", actor="bo")
    engine.annotate(target, "D2", "reject", actor="ana")  # ana changes her mind
    rows = latest_labels([engine.state])
    assert [(r.annotator, r.value, r.step, r.attempt) for r in rows] == [("bo", "reject", 1, 1),
                                                                          ("ana", "reject", 1, 1)]
    report = agreement([engine.state])
    assert report.d2.n == 2 and report.d2.confusion["reject"]["reject"] == 2 and report.d2.agreement == 1.0


def test_every_item_and_annotator_pair_counts_and_the_filter_keeps_one_person(folder):
    engine = two_step_session(folder)
    engine.annotate(attempt_target(1, 1), "D2", "reject", actor="ana")  # VLM reject: agree
    engine.annotate(attempt_target(1, 2), "D2", "reject", actor="ana")  # VLM accept: disagree
    engine.annotate(attempt_target(1, 2), "D2", "accept", actor="bo")  # VLM accept: agree
    engine.annotate(attempt_target(2, 1), "D2", "accept", actor="bo")  # VLM accept: agree
    everybody = agreement([engine.state])
    assert everybody.d2.n == 4 and everybody.d2.agreement == pytest.approx(3 / 4)
    assert everybody.annotators == ["ana", "bo"]
    ana = agreement([engine.state], annotator="ana")
    assert ana.d2.n == 2 and ana.d2.confusion == {"accept": {"accept": 0, "reject": 0},
                                                  "reject": {"accept": 1, "reject": 1}}
    assert ana.annotator == "ana" and ana.annotators == ["ana"]


def test_notes_are_not_labels_and_are_left_out_by_default(folder):
    engine = two_step_session(folder)
    engine.annotate("session", "note", "first", actor="ana")
    engine.annotate("session", "note", "second", actor="ana")
    assert latest_labels([engine.state]) == []
    assert [r.value for r in latest_labels([engine.state], labels=("note",))] == ["second"]


# ----- D1 --------------------------------------------------------------------------------------------------

def test_vlm_plan_depth_leaves_out_the_task_complete_plan(folder):
    state = two_step_session(folder).state
    assert len(state.steps) == 3 and vlm_plan_depth(state) == 2


def test_vlm_plan_depth_counts_split_sub_steps_and_the_split_step(folder):
    # step 2 is rejected once (m=1), the router splits it into 2 sub-steps: steps 1, 2, 3, 4
    engine = run_session(folder, [plan("a"), plan("b"), plan("c"), plan("d")],
                         [accept(), reject(0.0), accept(), accept()], routes=[route("split", 2)], n_max=2, m=1)
    state = engine.state
    assert [s.status for s in state.steps] == ["accepted", "split", "accepted", "accepted"]
    assert vlm_plan_depth(state) == 4


def test_d1_exact_match_and_mae_over_sessions(folder):
    two = two_step_session(folder)  # VLM N = 2
    one = run_session(folder, [plan("a")], [accept()], n_max=1)  # VLM N = 1
    two.annotate("session", "D1", 2, actor="ana")  # exact
    one.annotate("session", "D1", 5, actor="ana")  # wrong: ana first thought 5 steps
    one.annotate("session", "D1", 3, actor="ana")  # ... then 3: off by 2
    report = agreement([two.state, one.state])
    assert report.d1.pairs == [(two.session_id, 2, 2), (one.session_id, 3, 1)]
    assert report.d1.n == 2 and report.d1.exact_match == 0.5 and report.d1.mae == 1.0
    assert d1_report([]).exact_match is None and d1_report([]).notes


def test_d1_on_an_unfinished_session_is_noted(folder):
    engine = run_session(folder, [plan("a")], [reject(0.3)], n_max=2, breakpoints=("on_reject",))
    engine.annotate("session", "D1", 1, actor="ana")
    report = agreement([engine.state])
    assert report.d1.exact_match == 1.0 and any("unfinished" in note for note in report.notes)


# ----- D3 --------------------------------------------------------------------------------------------------

def test_d3_mean_and_shares(folder):
    engine = run_session(folder, [plan("a")], [reject(0.0, "Go up."), reject(0.0, "Go left."), accept()], n_max=1)
    engine.annotate(attempt_target(1, 1), "D3", 1, actor="ana")
    engine.annotate(attempt_target(1, 2), "D3", 3, actor="ana")
    engine.annotate(attempt_target(1, 1), "D3", 2, actor="bo")
    engine.annotate(attempt_target(1, 2), "D3", 1, actor="bo")
    engine.annotate(attempt_target(1, 2), "D3", 3, actor="bo")  # replaces bo's 1
    report = agreement([engine.state]).d3
    assert report.n == 4  # ratings 1, 3, 2, 3
    assert report.mean == pytest.approx(9 / 4)
    assert report.share_at_least_2 == pytest.approx(3 / 4) and report.share_3 == pytest.approx(2 / 4)


def test_d3_of_nothing_is_undefined_and_ratings_are_checked():
    empty = d3_report([])
    assert (empty.n, empty.mean, empty.share_3) == (0, None, None) and empty.notes
    with pytest.raises(ValueError, match="1, 2 or 3"):
        d3_report([4])


def test_whole_report_is_json_serialisable(folder):
    engine = two_step_session(folder)
    engine.annotate("session", "D1", 2, actor="ana")
    engine.annotate(attempt_target(1, 1), "D2", "reject", actor="ana")
    engine.annotate(attempt_target(1, 1), "D3", 2, actor="ana")
    data = json.loads(json.dumps(asdict(agreement([engine.state]))))
    assert data["d1"]["pairs"] == [[engine.session_id, 2, 2]]
    assert data["d2"]["confusion"]["reject"]["reject"] == 1 and data["d3"]["mean"] == 2.0
    assert data["sessions"] == 1


# ----- per-step series ----------------------------------------------------------------------------------------

def test_cumulative_vgm_seconds_adds_every_attempt_per_step(folder):
    state = two_step_session(folder).state
    assert cumulative_vgm_seconds(state) == [(1, 2 * FIRST), (2, 2 * FIRST + LATER)]
    assert cumulative_vgm_seconds(state)[-1][1] == pytest.approx(state.vgm_seconds)


def test_verdicts_per_step_counts_vlm_verdicts_and_overrides(folder):
    engine = run_session(folder, [plan("a"), plan("b")], [reject(0.4), reject(0.0), accept()], n_max=2,
                         breakpoints=("on_reject",))
    engine.override_verdict(1, 1, "accept", actor="ana", reason="it did move left")
    engine.set_breakpoints([], actor="ana")
    engine.run()
    assert engine.state.finished is not None
    assert verdicts_per_step(engine.state) == [
        {"step": 1, "vlm_accept": 0, "vlm_reject": 1, "human_override": 1},
        {"step": 2, "vlm_accept": 1, "vlm_reject": 1, "human_override": 0},
    ]


def test_a_session_without_steps_has_empty_series(folder):
    image = np.full((32, 64, 3), 200, dtype=np.uint8)
    state = Engine.start(MemoryEventStore(), folder, ScriptedVLM(), ScriptedVGM(), task=TASK,
                         input_image=image).state
    assert cumulative_vgm_seconds(state) == [] and verdicts_per_step(state) == []
    assert agreement([state]).d2.n == 0

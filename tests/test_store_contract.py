"""The EventStore contract: one suite of behaviour tests, run against every store implementation."""

from __future__ import annotations

import inspect
from typing import Iterator

import numpy as np
import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import (
    Annotated, Artifact, BackendLabel, ClipGenerated, CostSummary, ClipVerified, ForkOrigin, SessionFinished,
    SessionStarted, StartPoint, StepAccepted, StepPlanned, TaskSpec,
)
from collabvr.report import summary
from collabvr.state import fold
from collabvr.store import (
    EventStore, InvalidSessionId, MemoryEventStore, SequenceConflict, SessionNotFound, StoreError,
)
from storage import SQLiteEventStore

from scripted import ScriptedVGM, ScriptedVLM, accept, plan, reject


TASK = TaskSpec(prompt="Move the red disc to the green goal.", source="upload")


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
        return
    sqlite_store = SQLiteEventStore(tmp_path / "events.sqlite")
    yield sqlite_store
    sqlite_store.close()


# ----- real events, built with the models ------------------------------------------------------------

def artifact(n: int, kind: str = "image") -> Artifact:
    digest = f"{n:064x}"
    return Artifact(sha256=digest, path=f"{kind}s/{digest[:2]}/{digest}.png", kind=kind, bytes=1000 + n)


def started(session_id: str = "s1", at: float = 1_000.0) -> SessionStarted:
    return SessionStarted(session_id=session_id, title="disc to goal", task=TASK, config=LoopConfig(n_max=2),
                          vlm=BackendLabel(name="scripted-vlm", simulated=True),
                          vgm=BackendLabel(name="scripted-vgm", simulated=True),
                          input_image=artifact(1), seed=7, at=at)


def one_step(step: int = 1) -> list:
    """A step planned, generated, verified and accepted: four events."""
    clip = artifact(10 + step, "clip")
    return [
        StepPlanned(step=step, max_steps=2, plan=plan(f"push the disc, part {step}")),
        ClipGenerated(step=step, attempt=1, purpose="attempt", prompt=f"push the disc, part {step}",
                      start=StartPoint(kind="step_start"), start_frame=artifact(1), clip=clip, candidate=clip,
                      n_frames=25, prefix_frames=0, fps=8.0, seconds=3.125, first_frame_ssim=0.98, seed=3,
                      wall_s=0.5, info={"clip": step}),
        ClipVerified(step=step, attempt=1, verdict=accept(), sampled_indices=[0, 8, 16, 24]),
        StepAccepted(step=step, attempt=1, clip=clip, last_frame=artifact(20 + step), by="verifier"),
    ]


# ----- the protocol ------------------------------------------------------------------------------------

def test_both_stores_take_the_protocols_arguments_with_its_defaults(store):
    # isinstance() on a runtime-checkable Protocol only checks that the names exist; compare signatures.
    for name in ("create", "append", "read", "session_ids"):
        wanted = inspect.signature(getattr(EventStore, name))
        actual = inspect.signature(getattr(store, name))
        expected = [(p.name, p.default) for p in wanted.parameters.values() if p.name != "self"]
        assert [(p.name, p.default) for p in actual.parameters.values()] == expected, name


@pytest.mark.parametrize("bad", ["../x", "a/b", "x" * 65, "", "a.b", "séance"])
def test_a_session_with_a_malformed_id_is_refused_and_nothing_is_created(store, bad):
    with pytest.raises(InvalidSessionId, match="not a valid session id"):
        store.create(started(bad))
    fork = started("fork1").model_copy(update={"fork": ForkOrigin(parent_session=bad, at_seq=1)})
    with pytest.raises(InvalidSessionId, match="not a valid session id"):
        store.create(fork)
    assert store.session_ids() == []


def test_created_session_reads_back_its_started_event(store):
    first = started()
    store.create(first)
    assert store.read("s1") == [first]


def test_append_with_the_right_expected_seq_returns_the_new_count_and_events_read_back_equal(store):
    store.create(started())
    events = one_step(1)
    assert store.append("s1", events, expected_seq=1) == 5
    note = Annotated(target="session", label="D1", value=2, actor="alice", reason="two moves")
    assert store.append("s1", [note], expected_seq=5) == 6
    assert store.read("s1") == [started(), *events, note]


def test_read_back_events_fold_to_the_same_state(store):
    store.create(started())
    store.append("s1", one_step(1) + one_step(2), expected_seq=1)
    state = fold(store.read("s1"))
    assert [s.status for s in state.steps] == ["accepted", "accepted"]
    assert state.seq == 9 and state.trajectory == [artifact(11, "clip"), artifact(12, "clip")]


def test_append_with_a_stale_expected_seq_raises_conflict_and_leaves_the_log_unchanged(store):
    store.create(started())
    store.append("s1", one_step(1), expected_seq=1)
    before = store.read("s1")
    with pytest.raises(SequenceConflict) as raised:
        store.append("s1", one_step(2), expected_seq=1)
    assert (raised.value.session_id, raised.value.expected, raised.value.actual) == ("s1", 1, 5)
    assert store.read("s1") == before


def test_append_ahead_of_the_log_raises_conflict_rather_than_leaving_a_gap(store):
    store.create(started())
    with pytest.raises(SequenceConflict):
        store.append("s1", one_step(1), expected_seq=3)
    assert len(store.read("s1")) == 1


def test_append_of_nothing_checks_the_sequence_and_returns_the_count(store):
    store.create(started())
    assert store.append("s1", [], expected_seq=1) == 1
    with pytest.raises(SequenceConflict):
        store.append("s1", [], expected_seq=0)


def test_read_since_returns_the_events_from_that_index_on(store):
    store.create(started())
    events = one_step(1)
    store.append("s1", events, expected_seq=1)
    assert store.read("s1", since=3) == events[2:]
    assert store.read("s1", since=5) == []


def test_unknown_session_raises_session_not_found_on_read_and_append(store):
    with pytest.raises(SessionNotFound):
        store.read("nope")
    with pytest.raises(SessionNotFound):
        store.read("nope", since=4)
    with pytest.raises(SessionNotFound):
        store.append("nope", one_step(1), expected_seq=1)


def test_session_not_found_reads_as_a_sentence_even_when_caught_as_a_key_error(store):
    with pytest.raises(KeyError) as raised:  # callers that look sessions up by id catch KeyError
        store.read("nope")
    assert str(raised.value) == "no session 'nope'" and raised.value.session_id == "nope"


def test_session_ids_lists_every_session_oldest_first(store):
    for n, session_id in enumerate(["b", "a", "c"]):
        store.create(started(session_id, at=1_000.0 + n))
    assert store.session_ids() == ["b", "a", "c"]


def test_creating_a_session_twice_raises_store_error_and_keeps_the_first(store):
    store.create(started())
    store.append("s1", one_step(1), expected_seq=1)
    with pytest.raises(StoreError):
        store.create(started())
    assert len(store.read("s1")) == 5


def test_sessions_do_not_see_each_others_events(store):
    store.create(started("s1"))
    store.create(started("s2"))
    store.append("s2", one_step(1), expected_seq=1)
    assert len(store.read("s1")) == 1 and len(store.read("s2")) == 5


# ----- the engine, end to end --------------------------------------------------------------------------

def run_scripted_session(store: EventStore, root) -> tuple[Engine, dict]:
    """A session with a rejected attempt, an evolved prompt, a person's label and a finish."""
    vlm = ScriptedVLM(plans=[plan("push left"), plan("push up"), plan(complete=True)],
                      verdicts=[reject(suggestion="Push harder."), accept(), accept()])
    image = np.full((32, 32, 3), 200, dtype=np.uint8)
    engine = Engine.start(store, ArtifactFolder(root), vlm, ScriptedVGM(), task=TASK, input_image=image,
                          config=LoopConfig(n_max=3), seed=7, session_id="e2e")
    engine.run()
    engine.annotate("session", "D1", 2, actor="alice")
    report = summary(engine.state)
    # Measured times of the scripted calls differ run to run; everything else must be equal.
    report.pop("wall_s")
    report["cost"] = {k: v for k, v in report["cost"].items() if k not in ("wall_s", "gate_wait_s")}
    return engine, report


def test_an_engine_run_folds_to_the_same_summary_on_every_store(store, tmp_path):
    _, expected = run_scripted_session(MemoryEventStore(), tmp_path / "reference")
    engine, report = run_scripted_session(store, tmp_path / "artifacts")
    assert report == expected
    assert report["status"] == "finished" and report["branches"]["evolved_prompts"] == 1
    reread = fold(store.read("e2e"))
    assert reread.seq == engine.state.seq and reread.annotations == engine.state.annotations


def test_an_engine_fork_copies_the_prefix_without_touching_the_original(store, tmp_path):
    engine, _ = run_scripted_session(store, tmp_path / "artifacts")
    original = store.read("e2e")
    fork_id = Engine.fork(store, "e2e", at_seq=5, new_session_id="e2e-fork")
    forked = store.read(fork_id)
    assert store.read("e2e") == original
    assert len(forked) == 5 and forked[1:] == original[1:5]
    assert forked[0].fork is not None and forked[0].fork.parent_session == "e2e"
    assert store.session_ids() == ["e2e", "e2e-fork"]


def test_a_finished_event_carries_its_cost_through_the_store(store):
    store.create(started())
    done = SessionFinished(reason="planner says done", final_video=artifact(99, "video"), n_frames=49,
                           cost=CostSummary(vgm_seconds=6.0, clips=2, vlm_calls=5, input_tokens=500))
    store.append("s1", one_step(1) + [done], expected_seq=1)
    assert fold(store.read("s1")).finished == done

"""A log the engine could not have written is refused, naming the first event that breaks the rules; every
log the engine does write replays (scripted sessions with every kind of decision, and simulated runs)."""

from __future__ import annotations

import threading

import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.replay import ImpossibleHistory, check_history
from collabvr.state import fold

from scripted import FlakyError, ScriptedVGM, ScriptedVLM, accept, plan, reject, route, start_engine


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


def log(engine):
    return engine.store.read(engine.session_id)


@pytest.fixture
def busy_log(folder):
    """A session with every kind of engine event and every kind of decision."""
    vlm = ScriptedVLM(plans=[plan("a"), plan("b"), plan("b1"), plan("b2")],
                      verdicts=[reject(0.5, "Slower."), accept(), reject(0.1), reject(0.1), accept(), accept()],
                      routes=[route("split", steps=2)])
    engine = start_engine(folder, vlm, ScriptedVGM(failures=[FlakyError()]), n_max=2, m=2, backend_retries=1)
    engine.set_breakpoints(["after_verify"], actor="ana")
    engine.run()  # plan, generate (fails, retried), ..., held after the first verification
    engine.override_verdict(1, 1, "reject", actor="ana", reason="the disc clipped a wall", suggestion="Go around.")
    engine.annotate("step:1/attempt:1", "D2", "reject", actor="ben")
    engine.set_breakpoints([], actor="ana")
    engine.run()
    engine.annotate("session", "note", "looked fine", actor="ben")
    return log(engine)


def test_every_log_the_engine_writes_replays(busy_log):
    state = check_history(busy_log)
    assert state.finished is not None  # replayed to the end
    types = {e.type for e in busy_log}
    assert {"BackendFailed", "PromptEvolved", "Routed", "VerdictOverridden", "Annotated", "BreakpointsSet",
            "StepAccepted", "SessionFinished"} <= types
    assert fold(busy_log).finished == state.finished


def test_a_stale_result_and_a_fork_replay_too(folder):
    class Blocking(ScriptedVGM):
        def __init__(self):
            super().__init__()
            self.started, self.release = threading.Event(), threading.Event()

        def generate(self, request):
            self.started.set()
            self.release.wait(10)
            return super().generate(request)

    vgm = Blocking()
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), vgm, n_max=1)
    engine.step()
    worker = threading.Thread(target=engine.step)
    worker.start()
    vgm.started.wait(10)
    engine.edit_action(1, "b", actor="ana")
    vgm.release.set()
    worker.join(10)
    engine.run()
    assert "ResultDiscarded" in {e.type for e in log(engine)}
    check_history(log(engine))
    from collabvr.engine import Engine
    fork = Engine.fork(engine.store, engine.session_id, 3)
    check_history(engine.store.read(fork))


def _forged(events, index, **changes):
    forged = list(events)
    forged[index] = forged[index].model_copy(update=changes)
    return forged


def _index(events, kind, nth=0):
    return [i for i, e in enumerate(events) if e.type == kind][nth]


def test_an_accept_of_a_rejected_attempt_is_refused(busy_log):
    i = _index(busy_log, "StepAccepted")
    rejected_attempt = next(e.attempt for e in busy_log if e.type == "ClipVerified" and e.step == busy_log[i].step
                            and e.verdict.verdict == "reject")
    with pytest.raises(ImpossibleHistory, match=r"event \d+ \(StepAccepted\)"):
        check_history(_forged(busy_log, i, attempt=rejected_attempt))


@pytest.mark.parametrize("what", ["duplicated", "out of order", "after the end", "second start"])
def test_duplicated_reordered_or_trailing_events_are_refused(busy_log, what):
    events = list(busy_log)
    g = _index(events, "ClipGenerated", 1)
    if what == "duplicated":
        events.insert(g + 1, events[g])
    elif what == "out of order":
        events[g], events[g + 1] = events[g + 1], events[g]
    elif what == "after the end":
        events.append(events[_index(events, "StepPlanned")])
    else:
        events.insert(3, events[0])
    with pytest.raises(ImpossibleHistory):
        check_history(events)


def test_forged_actors_are_refused(busy_log):
    decision = _index(busy_log, "VerdictOverridden")
    with pytest.raises(ImpossibleHistory, match="recorded as the engine's"):
        check_history(_forged(busy_log, decision, actor="engine"))
    planned = _index(busy_log, "StepPlanned")
    with pytest.raises(ImpossibleHistory, match="recorded as 'mallory'"):
        check_history(_forged(busy_log, planned, actor="mallory"))


def test_a_forged_evolution_or_propagation_is_refused(busy_log):
    evolved = _index(busy_log, "PromptEvolved")
    with pytest.raises(ImpossibleHistory, match="evolved prompt"):
        check_history(_forged(busy_log, evolved, after="do something else entirely"))
    generated = _index(busy_log, "ClipGenerated", 1)
    with pytest.raises(ImpossibleHistory, match="another prompt"):
        check_history(_forged(busy_log, generated, prompt="a prompt nobody wrote"))


def test_a_decision_the_app_would_refuse_is_refused(busy_log):
    decision = _index(busy_log, "VerdictOverridden")
    with pytest.raises(ImpossibleHistory, match="would have refused it: step 9 is not the current step"):
        check_history(_forged(busy_log, decision, step=9))
    label = _index(busy_log, "Annotated")
    with pytest.raises(ImpossibleHistory, match="D2 must be accept or reject"):
        check_history(_forged(busy_log, label, value="maybe"))
    # a label's study and frame obey the app's rules too: only a note sits at a frame, within the clip
    with pytest.raises(ImpossibleHistory, match="only a note can be anchored"):
        check_history(_forged(busy_log, label, frame=2))
    with pytest.raises(ImpossibleHistory, match="is not a study's name"):
        check_history(_forged(busy_log, label, study="../pilot"))
    note = _index(busy_log, "Annotated", nth=1)  # the note on the session
    with pytest.raises(ImpossibleHistory, match="frame 999 is outside the clip"):
        check_history(_forged(busy_log, note, target="step:1/attempt:1", frame=999))


def test_a_failure_of_a_command_that_was_not_due_is_refused(busy_log):
    failed = _index(busy_log, "BackendFailed")
    with pytest.raises(ImpossibleHistory, match="a verify failure where the loop was due to generate"):
        check_history(_forged(busy_log, failed, role="verify"))


def test_simulated_runs_replay(tmp_path):
    from pathlib import Path

    from cli.run import run_one
    from collabvr.config import LoopConfig

    for family, seed in (("maze", 3), ("blocks", 5), ("shapes", 7)):
        engine, _ = run_one(family, "hard", seed, LoopConfig(), Path(tmp_path / f"{family}"), "paper",
                            "gemini-2.5-pro-paper")
        check_history(log(engine))

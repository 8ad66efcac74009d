"""Whole simulated sessions: a broken scene is a failed task that the run carries to its end, never a
backend error that leaves the session waiting for a person."""

from __future__ import annotations

import pytest

from collabvr.config import LoopConfig
from collabvr.events import BackendFailed

from cli_helpers import run_session


# Seeds whose runs (legacy world, the old default) used to stop with a BackendFailed: a block vanished
# (blocks 16, 49) or the frame to continue from could not be read (shapes 30).
@pytest.mark.parametrize("family, seed", [("blocks", 16), ("blocks", 49), ("shapes", 30)])
def test_a_collapsed_scene_is_carried_to_the_end_of_the_run_not_left_waiting(tmp_path, family, seed):
    engine = run_session(family, "hard", seed, LoopConfig(), tmp_path)
    state = engine.state
    events = engine.store.read(engine.session_id)
    assert not any(isinstance(e, BackendFailed) for e in events)
    assert state.finished is not None and state.finished.score is not None
    assert state.finished.success == (state.finished.score == 1.0)
    if family == "blocks":
        # The block is gone for good: the task is failed, and the planner said it could not complete it.
        assert state.finished.success is False and state.finished.score == 0.0
        assert any("cannot be completed" in step.plan.remaining_goal for step in state.steps)

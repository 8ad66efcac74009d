"""Calibration of the simulated world: the statistics it computes, the verifier's accuracy against ground
truth, and the command that prints them (the fit itself is not run here: every try runs a whole suite)."""

from __future__ import annotations

import pytest

from collabvr.backends import Verdict
from collabvr.events import ClipGenerated, ClipVerified, StartPoint
from collabvr.sim.calibration import (
    TARGETS, SessionRecord, VerifierAccuracy, run_suite, statistics, verifier_accuracy, world,
)

from test_cli import cli


def record(steps, clips=4, calls=7, score=0.5):
    return SessionRecord("maze", 0, True, score == 1.0, score, 12.0, clips, calls, steps, VerifierAccuracy())


def test_statistics_share_the_steps_by_outcome_and_bucket_later_steps_with_step_three():
    records = [record([(1, "first"), (2, "regen"), (3, "rejected")]),
               record([(1, "rejected"), (2, "first"), (3, "first"), (4, "rejected")], clips=8, calls=12)]
    stats = statistics(records)
    assert stats["first_try_accept"] == pytest.approx(3 / 7)
    assert stats["accepted_after_regen"] == pytest.approx(1 / 7)
    assert stats["all_rejected"] == pytest.approx(3 / 7)
    assert (stats["final_reject_step1"], stats["final_reject_step2"]) == (0.5, 0.0)
    assert stats["final_reject_step3"] == pytest.approx(2 / 3)  # steps 3, 3 and 4
    assert (stats["clips_per_sample"], stats["vlm_calls_per_sample"]) == (6.0, 9.5)


def _clip(attempt, verdict, error=None, frame=None, prefix=0, from_attempt=None):
    failure = {"mode": error, "at": 0.5, "frame": frame} if error else None
    start = StartPoint(kind="partial", from_attempt=from_attempt, frame_index=prefix) if prefix else \
        StartPoint(kind="step_start")
    truth = {"simulated": True, "verdict": verdict, "error": error}
    return ClipGenerated.model_construct(step=1, attempt=attempt, prefix_frames=prefix, start=start,
                                         info={"simulated": True, "failure": failure, "truth": truth})


def _verified(attempt, verdict):
    value = Verdict(verdict=verdict, action_executed=verdict == "accept", progress="partial", confidence=0.8,
                    reason="r", good_fraction=None if verdict == "accept" else 0.5)
    return ClipVerified.model_construct(step=1, attempt=attempt, verdict=value)


def test_verifier_accuracy_counts_verdicts_against_truth_and_a_kept_prefix_with_an_error():
    events = [
        _clip(1, "reject", "wrong_object", frame=10), _verified(1, "reject"),
        # Continues from frame 20 of attempt 1, whose error began at frame 10: the candidate is wrong.
        _clip(2, "accept", prefix=20, from_attempt=1), _verified(2, "accept"),
        # Continues from frame 8, before the error: right.
        _clip(3, "accept", prefix=8, from_attempt=1), _verified(3, "accept"),
        _clip(4, "accept"), _verified(4, "reject"),
    ]
    accuracy = verifier_accuracy(events)
    assert accuracy.counts == {("reject", "reject"): 1, ("reject", "accept"): 1, ("accept", "accept"): 1,
                               ("accept", "reject"): 1}
    assert (accuracy.accept_recall, accuracy.reject_recall, accuracy.judged) == (0.5, 0.5, 4)


def test_a_perfect_verifier_mostly_agrees_with_the_ground_truth_of_real_sessions():
    records = run_suite(world("paper", "perfect"), [0, 1], workers=1)
    accuracy = VerifierAccuracy()
    for r in records:
        accuracy.merge(r.verifier)
        assert r.finished
    assert accuracy.judged >= 12
    assert accuracy.accept_recall >= 0.8 and accuracy.reject_recall >= 0.7


def test_calibrate_prints_every_target_the_worlds_value_and_the_gap():
    result = cli("calibrate", "--seeds", "0", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "[SIMULATED]" in result.stdout and "gemini-2.5-pro-paper" in result.stdout
    for target in TARGETS:
        assert target.label in result.stdout
    assert "gap" in result.stdout and "verifier against the clips' ground truth" in result.stdout
    assert cli("calibrate", "--profile", "turbo").returncode == 2

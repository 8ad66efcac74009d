"""Rules that live beside the event types: how an attempt is named and read back, and finding every
artifact an event refers to."""

from __future__ import annotations

import pytest

from collabvr.events import Artifact, BackendLabel, attempt_target, artifacts_in, parse_attempt_target


def _artifact(n: int) -> Artifact:
    digest = f"{n:064x}"
    return Artifact(sha256=digest, path=f"images/{digest[:2]}/{digest}.png", kind="image", bytes=n)


def test_an_attempt_target_reads_back_as_its_step_and_attempt():
    assert parse_attempt_target(attempt_target(12, 3)) == (12, 3)


@pytest.mark.parametrize("text", ["session", "1/2", "step:1/attempt:", "step:1/attempt:x", " step:1/attempt:1",
                                  "step:1/attempt:1/", "step:-1/attempt:1", "step:١/attempt:1", "", None, 7])
def test_anything_else_is_refused_with_the_form_it_should_have(text):
    with pytest.raises(ValueError, match=r"pick an attempt \(like 'step:1/attempt:1'\)"):
        parse_attempt_target(text)


def test_the_artifact_walk_finds_artifacts_nested_in_models_lists_and_dicts():
    nested = {"a": [_artifact(1), (_artifact(2),)], "b": BackendLabel(name="x", simulated=True),
              "c": {"d": _artifact(3)}}
    assert [a.bytes for a in artifacts_in(nested)] == [1, 2, 3]
    assert list(artifacts_in(BackendLabel(name="x", simulated=True))) == []

"""Faults: a backend that times out, raises, answers malformed or empty; a clip of the wrong size or length;
a file that does not decode; a full disk while writing an artifact; a database locked by another process.
Each ends in a clear event (or, for the database, a clear message) and a state from which the session
goes on once the fault is gone; nothing recorded before it is lost."""

from __future__ import annotations

import errno
import sqlite3
import threading
import time

import numpy as np
import pytest

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr.backends import BackendError, MalformedOutput
from collabvr.loop import Kind
from collabvr.replay import check_history
from storage import SQLiteEventStore

from scripted import FlakyError, ScriptedVGM, ScriptedVLM, accept, plan, start_engine


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


class OddVGM(ScriptedVGM):
    """Returns whatever `shape` says for the next call (frames, height, width), then behaves."""

    def __init__(self, *shapes):
        super().__init__()
        self.shapes = list(shapes)

    def generate(self, request):
        clip = super().generate(request)
        if not self.shapes:
            return clip
        n, h, w = self.shapes.pop(0)
        return type(clip)(frames=np.zeros((n, h, w, 3), np.uint8), fps=clip.fps)


def failure_then_recovery(engine):
    """Run until the loop waits on the failure, check the event, then let a person Run again."""
    engine.run()
    failure = engine.state.failures[-1]
    command = engine.next_command()
    assert command.kind is Kind.WAIT and f"{failure.role} failed" in command.reason
    before = engine.store.read(engine.session_id)
    state = engine.run()  # the held command is tried again
    after = engine.store.read(engine.session_id)
    assert after[:len(before)] == before  # nothing recorded before the fault is lost
    assert state.finished is not None, engine.last_stop
    check_history(after)
    return failure


CASES = {
    "a model that times out (twice)": (
        lambda: (ScriptedVLM(plans=[plan("a")], verdicts=[accept()]),
                 ScriptedVGM(failures=[FlakyError("the service timed out after 600 s")] * 2)),
        ("generate", "timed out")),
    "a VLM that raises": (
        lambda: (ScriptedVLM(plans=[RuntimeError("CUDA error: device-side assert"), plan("a")], verdicts=[accept()]),
                 ScriptedVGM()),
        ("plan", "CUDA error")),
    "malformed model output": (
        lambda: (ScriptedVLM(plans=[plan("a")], verdicts=[MalformedOutput("verdict is not accept or reject"), accept()]),
                 ScriptedVGM()),
        ("verify", "not accept or reject")),
    "an empty clip": (
        lambda: (ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), OddVGM((0, 32, 64))),
        ("generate", "returned 0 frame(s); a clip needs at least 2")),
    "a one-frame clip": (
        lambda: (ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), OddVGM((1, 32, 64))),
        ("generate", "a clip needs at least 2")),
    "a backend error with advice": (
        lambda: (ScriptedVLM(plans=[plan("a")], verdicts=[accept()]),
                 ScriptedVGM(failures=[BackendError("weights not in the cache: run hf download X")])),
        ("generate", "hf download")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_backend_fault_is_an_event_and_the_session_goes_on(folder, case):
    make, (role, words) = CASES[case]
    vlm, vgm = make()
    engine = start_engine(folder, vlm, vgm, n_max=1, backend_retries=1)
    failure = failure_then_recovery(engine)
    assert failure.role == role and words in failure.message, failure.message


def test_a_clip_of_the_wrong_size_for_its_kept_prefix_is_refused_clearly(folder):
    from scripted import reject
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.5), accept()])
    engine = start_engine(folder, vlm, OddVGM(*[]), n_max=1, m=3)
    for _ in range(4):  # plan, generate, verify (reject at half way), evolve
        engine.step()
    engine.vgm.shapes = [(25, 48, 96)]  # the partial regeneration comes back at another size
    failure = failure_then_recovery(engine)
    assert failure.role == "generate" and "96x48" in failure.message and "64x32" in failure.message


def test_a_clip_file_that_does_not_decode_is_a_clear_failure(folder):
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1)
    engine.step()
    engine.step()  # the clip
    path = folder.path(engine.state.steps[0].attempts[0].generated.candidate)
    good = path.read_bytes()
    path.write_bytes(good[:200])
    engine.run()
    failure = engine.state.failures[-1]
    assert failure.role == "verify" and "cannot" in failure.message and str(path.name) in failure.message
    path.write_bytes(good)
    assert engine.run().finished is not None


def test_a_full_disk_while_writing_a_clip_fails_clearly_leaves_no_scratch_and_the_session_goes_on(folder, monkeypatch):
    real = media._encode
    calls = {"n": 0}

    def full_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(media, "_encode", full_once)
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), n_max=1)
    failure = failure_then_recovery(engine)
    assert failure.role == "generate" and "No space left on device" in failure.message
    assert list((folder.root / "tmp").iterdir()) == []


def test_a_database_locked_by_another_process_is_waited_for(tmp_path, folder):
    store = SQLiteEventStore(tmp_path / "s.sqlite")
    engine = start_engine(folder, ScriptedVLM(plans=[plan("a")], verdicts=[accept()]), store=store, n_max=1)
    other = sqlite3.connect(tmp_path / "s.sqlite", timeout=1, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.0, other.rollback)
    release.start()
    started = time.monotonic()
    state = engine.run()
    assert time.monotonic() - started >= 0.9 and state.finished is not None
    check_history(store.read(engine.session_id))


def test_a_database_locked_past_every_wait_is_a_clear_message_and_the_session_goes_on(tmp_path, monkeypatch):
    from collabvr.sim_session import NewSimSession
    from collabvr.studio import Studio
    from storage.sqlite_store import StoreBusy

    store = SQLiteEventStore(tmp_path / "s.sqlite")
    studio = Studio(store, ArtifactFolder(tmp_path / "art"))
    sid = studio.new_sim_session(NewSimSession("maze", "easy", 1))
    real = store.append
    calls = {"n": 0}

    def locked_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreBusy(f"{store.path} stayed locked by other writers through 6 waits of 10 s")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "append", locked_once)
    studio.start_step(sid)
    activity = studio.wait(sid, 30)
    assert "stayed locked by other writers" in activity.error
    assert [e.type for e in store.read(sid)] == ["SessionStarted"]
    studio.start_step(sid)  # the lock is gone: the same command runs again
    studio.wait(sid, 30)
    assert [e.type for e in store.read(sid)] == ["SessionStarted", "StepPlanned"]

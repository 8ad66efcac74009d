"""Crash and resume: kill `python -m collabvr run --db` with SIGKILL mid-phase, resume it from the CLI.

The running process is watched through the database (read-only, from this process): the type of the
session's last event tells what the process is doing now:

    StepPlanned   -> generating the step's first attempt
    ClipGenerated -> verifying that attempt
    StepAccepted  -> planning the next step

After the kill, `sessions resume` must finish the session with the events from before the kill kept as
they were (none lost, none repeated) and the interrupted work done exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from collabvr.events import event_to_json
from storage import SQLiteEventStore


ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
SEED = 11  # maze/hard/11: three steps, the first attempt of step 1 rejected, so every phase recurs
LATENCY_S = "0.3"  # each simulated model call takes this long: a wide window to kill in
PHASES = {"generation": "StepPlanned", "verification": "ClipGenerated", "planning": "StepAccepted"}
DEADLINE_S = 25.0


def _start(db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "collabvr", "run", "--family", "maze", "--difficulty", "hard", "--seed", str(SEED),
         "--db", str(db), "--sim-latency", LATENCY_S, "--json"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _first_session_id(db: Path, proc: subprocess.Popen, deadline: float) -> str:
    """Wait, reading without writing, until the running process has created its session."""
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    row = conn.execute("SELECT id FROM sessions LIMIT 1").fetchone()
                if row:
                    return row[0]
            except sqlite3.OperationalError:  # the schema is still being created
                pass
        time.sleep(0.02)
    raise AssertionError(f"the run created no session (exit {proc.poll()}): {proc.stderr.read().decode()[-2000:]}")


def _kill_during(phase: str, db: Path) -> tuple[SQLiteEventStore, str, list]:
    """Run the session and SIGKILL it while the last event says it is in `phase`. Returns the store, the
    session id and the events as the killed process left them."""
    wanted = PHASES[phase]
    for _ in range(3):  # a kill that lands just after the phase ended (a race of milliseconds) is retried
        db.unlink(missing_ok=True)
        proc = _start(db)
        try:
            deadline = time.monotonic() + DEADLINE_S
            session_id = _first_session_id(db, proc, deadline)
            store = SQLiteEventStore(db)
            seen: list = []
            while time.monotonic() < deadline and proc.poll() is None:
                seen += store.read(session_id, since=len(seen))
                # Skip the very first event: killing before anything ran would test little.
                if len(seen) > 1 and seen[-1].type == wanted:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.01)
            else:
                pytest.fail(f"the run ended or timed out before reaching {phase} (exit {proc.poll()})")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        left = store.read(session_id)
        if left[-1].type == wanted:
            assert [event_to_json(e) for e in left[:len(seen)]] == [event_to_json(e) for e in seen]
            return store, session_id, left
    pytest.fail(f"could not kill the run during {phase} in 3 tries")


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_session_killed_mid_phase_resumes_to_the_end_losing_and_repeating_nothing(phase, tmp_path):
    db = tmp_path / "crash.sqlite"
    store, session_id, before = _kill_during(phase, db)
    assert before[-1].type != "SessionFinished"

    resumed = subprocess.run([sys.executable, "-m", "collabvr", "sessions", "resume", session_id, "--db", str(db),
                              "--json"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["session_id"] == session_id and report["status"] == "finished" and report["resumed"] is True

    after = store.read(session_id)
    # Nothing appended before the kill was lost, changed or repeated.
    assert [event_to_json(e) for e in after[:len(before)]] == [event_to_json(e) for e in before]
    seqs = [seq for (seq,) in store.db.execute("SELECT seq FROM events WHERE session_id = ? ORDER BY seq",
                                               [session_id]).fetchall()]
    assert seqs == list(range(len(after)))
    types = [e.type for e in after]
    assert types[-1] == "SessionFinished" and types.count("SessionFinished") == 1
    assert store.get_session(session_id).status == "finished"
    for kind in ("ClipGenerated", "ClipVerified"):
        per_attempt = Counter((e.step, e.attempt) for e in after if e.type == kind)
        assert max(per_attempt.values()) == 1, f"an attempt has more than one {kind}: {per_attempt}"
    assert max(Counter(e.step for e in after if e.type == "StepPlanned").values()) == 1
    assert max(Counter(e.step for e in after if e.type == "StepAccepted").values()) == 1

    # The work in flight at the kill was done exactly once after it.
    last = before[-1]
    later = after[len(before):]
    if phase == "generation":
        in_flight = (last.step, 1)
        assert not any(e.type == "ClipGenerated" and (e.step, e.attempt) == in_flight for e in before)
        assert [(e.step, e.attempt) for e in later if e.type == "ClipGenerated"].count(in_flight) == 1
    elif phase == "verification":
        assert later[0].type == "ClipVerified" and (later[0].step, later[0].attempt) == (last.step, last.attempt)
    else:
        assert later[0].type == "StepPlanned" and later[0].step == last.step + 1


def test_opening_a_store_removes_only_stale_temporary_files_a_killed_process_left(tmp_path):
    db = tmp_path / "s.sqlite"
    SQLiteEventStore(db)
    scratch = tmp_path / "artifacts" / "tmp"
    scratch.mkdir(parents=True)
    stale, fresh = scratch / "tmpold.mp4", scratch / "tmpnew.mp4"
    stale.write_bytes(b"half a clip")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    listed = subprocess.run([sys.executable, "-m", "collabvr", "sessions", "list", "--db", str(db)], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert not stale.exists() and fresh.exists()

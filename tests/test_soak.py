"""Short versions of bench/bench_soak.py: a few SIGKILLs of the real app while sessions run, and a few
seconds of sessions and annotators at once. The long runs' figures are in the bench's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def soak(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "bench/bench_soak.py", *args, "--json"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


def test_killed_servers_lose_nothing_and_every_session_finishes():
    report = soak("crash", "--kills", "3", "--sessions", "2", "--seed", "1")
    assert report["kills_with_work_in_flight"] >= 2
    assert report["survived"] == 3 and report["sessions_with_lost_events"] == 0
    assert report["finished"] == report["sessions"] and not report["impossible_logs"]
    assert report["doctor_healthy"], report["doctor_errors"]


def test_sessions_and_annotators_at_once_lose_no_label():
    report = soak("load", "--sessions", "3", "--annotators", "2", "--seconds", "6")
    assert report["annotations"] > 3 and report["errors"] == []
    assert report["labels_confirmed_but_not_recorded"] == {}

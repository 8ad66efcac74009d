"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from collabvr import media


ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "collabvr", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=240)


def test_tasks_lists_every_family_and_difficulty():
    result = cli("tasks", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["family"] for r in rows} == {"maze", "blocks", "shapes"}
    assert all(r["difficulties"] == ["easy", "hard"] and r["simulated"] for r in rows)


def test_run_json_reports_the_session_and_writes_video_and_events(tmp_path):
    out = tmp_path / "run"
    result = cli("run", "--family", "maze", "--difficulty", "hard", "--seed", "11", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("success", "steps", "attempts", "vgm_seconds", "vlm_calls", "final_video", "events"):
        assert key in report
    assert report["simulated"] is True and isinstance(report["success"], bool)
    assert Path(report["final_video"]).parent == out
    lines = Path(report["events"]).read_text().splitlines()
    types = [json.loads(line)["type"] for line in lines]
    assert types[0] == "SessionStarted" and types[-1] == "SessionFinished"
    assert types.count("ClipGenerated") == report["attempts"]
    assert media.count_frames(report["final_video"]) > 0


def test_run_without_json_prints_progress_and_a_per_step_summary(tmp_path):
    result = cli("run", "--family", "shapes", "--seed", "2", "--out", str(tmp_path), "--n-max", "2", "--m", "2",
                 "--vgm-profile", "perfect", "--verifier-profile", "perfect")
    assert result.returncode == 0, result.stderr
    assert "[SIMULATED]" in result.stdout and ".. plan step 1" in result.stdout
    assert "step 1/2:" in result.stdout and "attempt 1 [attempt]" in result.stdout


def test_run_with_a_breakpoint_pauses_and_says_why(tmp_path):
    result = cli("run", "--family", "blocks", "--seed", "1", "--out", str(tmp_path), "--breakpoint", "before_generate")
    assert result.returncode == 3
    assert "breakpoint: before generation" in result.stderr


def test_unknown_family_or_profile_is_a_clear_error():
    result = cli("run", "--family", "chess", "--out", "/tmp/x")
    assert result.returncode == 2 and "unknown task family 'chess'" in result.stderr
    result = cli("run", "--family", "maze", "--verifier-profile", "oracle", "--out", "/tmp/x")
    assert result.returncode == 2 and "unknown simulated verifier profile" in result.stderr

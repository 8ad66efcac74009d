"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr.engine import Engine
from collabvr.events import BackendLabel, TaskSpec


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


# ----- the durable store: run --db and `sessions ...` -------------------------------------------------


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m collabvr ARGS` in this process (for quick commands): (exit status, stdout, stderr)."""
    from collabvr.__main__ import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_json(*args: str):
    result = cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One finished session recorded with `run --db`: (database path, the run's JSON report)."""
    db = tmp_path_factory.mktemp("db") / "sessions.sqlite"
    report = cli_json("run", "--family", "maze", "--difficulty", "hard", "--seed", "11", "--db", str(db))
    return db, report


def test_run_with_db_records_the_session_and_lists_it_as_finished(recorded):
    db, report = recorded
    assert report["session_id"] and report["status"] == "finished" and report["database"] == str(db)
    assert report["events"] is None and Path(report["final_video"]).is_file()
    assert Path(report["final_video"]).is_relative_to(db.parent / "artifacts")
    rows = cli_json("sessions", "list", "--db", str(db))
    row = next(r for r in rows if r["id"] == report["session_id"])
    assert row["status"] == "finished" and row["parent_session"] is None and row["n_events"] > 5
    running = cli_json("sessions", "list", "--db", str(db), "--status", "running")
    assert report["session_id"] not in {r["id"] for r in running} and all(r["status"] == "running" for r in running)
    assert [r["id"] for r in cli_json("sessions", "list", "--db", str(db), "--search", "maze/hard")].count(
        report["session_id"]) == 1
    assert cli_json("sessions", "list", "--db", str(db), "--search", "no such title") == []


def test_run_with_data_dir_and_out_writes_both(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    report = cli_json("run", "--family", "shapes", "--seed", "2", "--n-max", "1", "--data-dir", str(data),
                      "--out", str(out))
    assert (data / "collabvr.sqlite").is_file() and report["database"] == str(data / "collabvr.sqlite")
    assert Path(report["final_video"]) == out / "final.mp4" and (out / "events.jsonl").is_file()
    assert not (out / "artifacts").exists() and (data / "artifacts" / "videos").is_dir()
    rows = cli_json("sessions", "list", "--data-dir", str(data))
    assert [r["id"] for r in rows] == [report["session_id"]]


def test_run_needs_out_or_a_store():
    result = cli("run", "--family", "maze")
    assert result.returncode == 2 and "--out" in result.stderr and "--db" in result.stderr


def test_sessions_show_prints_the_summary_and_the_steps(recorded):
    db, report = recorded
    result = cli("sessions", "show", report["session_id"], "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert report["session_id"] in result.stdout and "finished" in result.stdout
    assert "step 1/3:" in result.stdout and "attempt 1 [attempt]" in result.stdout
    shown = cli_json("sessions", "show", report["session_id"], "--db", str(db))
    for key in ("status", "steps", "attempts", "vgm_seconds", "vlm_calls", "success", "branches"):
        assert shown[key] == report[key]
    assert shown["step_lines"][0].startswith("step 1/3:")


def test_sessions_fork_creates_a_session_whose_parent_is_the_original(recorded):
    db, report = recorded
    forked = cli_json("sessions", "fork", report["session_id"], "--at", "4", "--db", str(db))
    new_id = forked["session_id"]
    assert new_id != report["session_id"]
    row = next(r for r in cli_json("sessions", "list", "--db", str(db)) if r["id"] == new_id)
    assert row["parent_session"] == report["session_id"] and row["fork_seq"] == 4 and row["n_events"] == 4
    shown = cli_json("sessions", "show", new_id, "--db", str(db))
    assert shown["parent_session"] == report["session_id"] and shown["status"] == "running"
    result = cli("sessions", "fork", report["session_id"], "--at", "999", "--db", str(db))
    assert result.returncode == 2 and "fork point must be between 1 and" in result.stderr


def test_sessions_resume_continues_a_paused_session_and_says_when_it_has_finished(tmp_path):
    db = tmp_path / "s.sqlite"
    result = cli("run", "--family", "maze", "--difficulty", "hard", "--seed", "11", "--db", str(db),
                 "--breakpoint", "before_generate", "--json")
    assert result.returncode == 3 and "breakpoint: before generation" in result.stderr
    session_id = json.loads(result.stdout)["session_id"]
    again = cli("sessions", "resume", session_id, "--db", str(db), "--json")
    # It runs the held generation, then pauses before the next one (step 1's first attempt is rejected).
    assert again.returncode == 3, again.stderr
    assert json.loads(again.stdout)["attempts"] == 1 and "breakpoint: before generation" in again.stderr
    done = cli("sessions", "resume", session_id, "--db", str(db), "--clear-breakpoints", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert f"resuming session {session_id}" in done.stdout and (tmp_path / "o" / "final.mp4").is_file()
    assert cli_json("sessions", "show", session_id, "--db", str(db))["status"] == "finished"
    finished = cli("sessions", "resume", session_id, "--db", str(db))
    assert finished.returncode == 0 and "already finished" in finished.stdout


def test_sessions_resume_without_a_rebuildable_backend_is_a_clear_error(tmp_path):
    from storage import SQLiteEventStore

    db = tmp_path / "s.sqlite"
    store, artifacts = SQLiteEventStore(db), ArtifactFolder(tmp_path / "artifacts")
    engine = Engine.start(store, artifacts, None, None,  # type: ignore[arg-type]
                          task=TaskSpec(prompt="stack the cups", source="upload"),
                          input_image=np.zeros((16, 16, 3), np.uint8),
                          vlm_label=BackendLabel(name="Gemini", simulated=False,
                                                 spec={"kind": "gemini", "api_key_env": ["COLLABVR_NO_SUCH_KEY"]}),
                          vgm_label=BackendLabel(name="Veo", simulated=False, spec={"kind": "veo"}))
    result = cli("sessions", "resume", engine.session_id, "--db", str(db))
    assert result.returncode == 2
    assert f"cannot resume session {engine.session_id}" in result.stderr
    assert "gemini cannot run here: no API key: set COLLABVR_NO_SUCH_KEY" in result.stderr


def test_sessions_export_and_import_round_trip(recorded, tmp_path):
    db, report = recorded
    session_id = report["session_id"]
    exported = cli_json("sessions", "export", session_id, "--db", str(db), "--out", str(tmp_path / "x.zip"))
    assert exported["sessions"] == 1 and exported["attempts"] == report["attempts"]
    assert Path(exported["zip"]).is_file() and Path(exported["jsonl"]).is_file()
    fresh = tmp_path / "fresh" / "other.sqlite"
    imported = cli_json("sessions", "import", exported["zip"], "--db", str(fresh))
    assert imported["imported"] == [session_id]
    original = cli_json("sessions", "show", session_id, "--db", str(db))
    again = cli_json("sessions", "show", session_id, "--db", str(fresh))
    assert again == original
    twice = cli("sessions", "import", exported["zip"], "--db", str(fresh))
    assert twice.returncode == 2 and "already in this store" in twice.stderr
    not_zip = cli("sessions", "import", exported["jsonl"], "--db", str(fresh))
    assert not_zip.returncode == 2 and "not a readable zip" in not_zip.stderr
    both = cli("sessions", "export", session_id, "--all", "--db", str(db), "--out", str(tmp_path / "y.zip"))
    assert both.returncode == 2 and "--all" in both.stderr


def test_sessions_delete_refuses_without_yes_and_removes_unshared_artifacts(tmp_path):
    db = tmp_path / "d.sqlite"
    first = cli_json("run", "--family", "shapes", "--seed", "2", "--n-max", "1", "--db", str(db))
    second = cli_json("run", "--family", "maze", "--seed", "3", "--n-max", "1", "--db", str(db))
    files = lambda: {p for p in (tmp_path / "artifacts").rglob("*") if p.is_file() and p.parent.name != "tmp"}  # noqa: E731
    before = files()
    refused = cli("sessions", "delete", first["session_id"], "--db", str(db))
    assert refused.returncode == 2 and "without --yes" in refused.stderr
    assert {r["id"] for r in cli_json("sessions", "list", "--db", str(db))} == {first["session_id"], second["session_id"]}
    deleted = cli("sessions", "delete", first["session_id"], "--db", str(db), "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted session {first['session_id']}" in deleted.stdout
    assert [r["id"] for r in cli_json("sessions", "list", "--db", str(db))] == [second["session_id"]]
    after = files()
    assert after < before and not Path(first["final_video"]).exists() and Path(second["final_video"]).exists()
    assert cli("sessions", "show", second["session_id"], "--db", str(db)).returncode == 0


@pytest.mark.parametrize("command", [("show", "nope"), ("resume", "nope"), ("fork", "nope", "--at", "1"),
                                     ("delete", "nope", "--yes"), ("export", "nope", "--out", "/tmp/never.zip")])
def test_an_unknown_session_id_is_a_clear_error(recorded, command, capsys):
    db, _ = recorded
    code, _, err = in_process(capsys, "sessions", *command, "--db", str(db))
    assert code == 2 and "no session 'nope'" in err, err


@pytest.mark.parametrize("command", [("show", "../x"), ("resume", "a/b"), ("fork", "x" * 65, "--at", "1"),
                                     ("delete", "", "--yes"), ("export", "ok", "../x", "--out", "/tmp/never.zip")])
def test_a_malformed_session_id_is_refused_before_the_command_runs(recorded, command, capsys):
    db, _ = recorded
    code, out, err = in_process(capsys, "sessions", *command, "--db", str(db))
    assert code == 2 and "is not a valid session id" in err and out == ""
    assert not Path("/tmp/never.zip").exists()


def test_importing_an_archive_with_a_hostile_session_id_says_why_and_imports_nothing(recorded, tmp_path, capsys):
    db, report = recorded
    session_id = report["session_id"]
    code, _, err = in_process(capsys, "sessions", "export", session_id, "--db", str(db), "--out",
                              str(tmp_path / "x.zip"))
    assert code == 0, err
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(tmp_path / "x.zip") as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename.replace(session_id, "../x"),
                         src.read(info).replace(f'"{session_id}"'.encode(), b'"../x"'))
    fresh = tmp_path / "fresh" / "s.sqlite"
    code, _, err = in_process(capsys, "sessions", "import", str(hostile), "--db", str(fresh))
    assert code == 2 and "'../x' is not a valid session id" in err and "nothing was imported" in err
    code, out, _ = in_process(capsys, "sessions", "list", "--db", str(fresh))
    assert code == 0 and out.strip() == "no sessions"
    assert not any(p.is_file() for p in (fresh.parent / "artifacts").rglob("*"))


def test_a_missing_database_is_a_clear_error(tmp_path, capsys):
    code, _, err = in_process(capsys, "sessions", "list", "--db", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no database at" in err
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.parametrize("command, purpose", [
    ((), "sessions"), (("run",), "--db"), (("sessions",), "resume"), (("sessions", "list"), "list recorded sessions"),
    (("sessions", "show"), "summary"), (("sessions", "resume"), "run it to the end"),
    (("sessions", "fork"), "first SEQ events"), (("sessions", "export"), "zip archive"),
    (("sessions", "import"), "import sessions"), (("sessions", "delete"), "delete a session"),
    (("calibrate",), "paper measured of real runs"),
])
def test_every_command_has_help(command, purpose, capsys):
    code, out, err = in_process(capsys, *command, "--help")
    assert code == 0, err
    text = " ".join(out.split()).lower()
    assert purpose.lower() in text and "usage:" in text
    if command[:1] == ("sessions",) and len(command) == 2:
        assert "--db path" in text and "--data-dir dir" in text


def test_stats_counts_the_runs_that_ended_and_names_any_that_did_not():
    result = cli("stats", "--families", "maze", "--difficulty", "easy", "--seeds", "0-1", "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    maze = report["families"]["maze"]
    assert maze["runs"] == 2 and maze["finished"] == 2
    table = cli("stats", "--families", "maze", "--difficulty", "easy", "--seeds", "0", "--workers", "1")
    assert table.returncode == 0, table.stderr
    assert "ended" in table.stdout and "1/1" in table.stdout

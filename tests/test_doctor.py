"""The integrity doctor: it finds what is wrong with a data folder and removes only what is safe."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.doctor import SAFE_AGE_S, examine, fix

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "collabvr", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=240)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    data = tmp_path_factory.mktemp("doctor") / "data"
    result = cli("run", "--family", "blocks", "--n-max", "2", "--seed", "2", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture
def data(recorded, tmp_path):
    """A fresh copy of a folder holding one recorded session."""
    import shutil
    copy = tmp_path / "data"
    shutil.copytree(recorded, copy)
    return copy


def check(data, **options):
    return examine(data / "collabvr.sqlite", data / "artifacts", **options)


def findings(report, check_name):
    return [f for f in report.findings if f.check == check_name]


def test_a_folder_the_app_wrote_is_healthy_and_the_check_writes_nothing(data):
    database = data / "collabvr.sqlite"
    # SQLite may create its -shm/-wal companions even for a read-only reader; every other file is untouched.
    def files():
        return {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file() and not p.name.endswith(("-shm", "-wal"))}

    before = files()
    report = check(data)
    assert report.healthy and report.findings == [], report.findings
    assert report.sessions == 1 and report.events >= 5 and report.artifacts >= 3
    assert files() == before
    assert database.is_file()


def _one_clip(data) -> Path:
    return next((data / "artifacts" / "clips").glob("*/*.mp4"))


def test_a_missing_or_altered_artifact_is_an_error(data):
    clip = _one_clip(data)
    content = bytearray(clip.read_bytes())
    content[len(content) // 2] ^= 0xFF
    clip.write_bytes(bytes(content))
    image = next((data / "artifacts" / "images").glob("*/*.png"))
    image.unlink()
    report = check(data)
    assert not report.healthy
    assert [f.where for f in findings(report, "missing file")] == [image.relative_to(data / "artifacts").as_posix()]
    assert "altered" in findings(report, "wrong file")[0].detail
    assert findings(check(data, hashes=False), "wrong file") == []  # sizes match: only the hash tells


def _db(data):
    return sqlite3.connect(data / "collabvr.sqlite")


def test_a_gap_in_a_sessions_events_and_a_forged_event_are_errors(data):
    with _db(data) as db:
        (session_id,) = db.execute("SELECT id FROM sessions").fetchone()
        db.execute("DELETE FROM events WHERE session_id = ? AND seq = 3", (session_id,))
    report = check(data)
    assert findings(report, "sequence") and findings(report, "count")
    assert "missing [3]" in findings(report, "sequence")[0].detail
    assert findings(report, "replay"), "a log with an event missing cannot be replayed"


def test_an_engine_event_rewritten_as_a_persons_is_found_by_the_replay(data):
    with _db(data) as db:
        db.execute("UPDATE events SET payload = replace(payload, '\"actor\":\"engine\"', '\"actor\":\"mallory\"') "
                   "WHERE type = 'StepPlanned'")
    (replay,) = findings(check(data), "replay")
    assert "recorded as 'mallory'" in replay.detail


def test_fix_removes_old_orphans_and_temp_files_and_nothing_an_event_names(data):
    artifacts = data / "artifacts"
    old = time.time() - SAFE_AGE_S - 5
    orphan = artifacts / "clips" / "ab" / ("ab" + "0" * 62 + ".mp4")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"not referenced")
    os.utime(orphan, (old, old))
    young = artifacts / "images" / "cd" / ("cd" + "0" * 62 + ".png")
    young.parent.mkdir(exist_ok=True)
    young.write_bytes(b"being written")
    stale = artifacts / "tmp" / "tmpdead.mp4"
    stale.write_bytes(b"half")
    os.utime(stale, (old, old))
    cached = data / "cache" / "frames" / ("ef" * 32 + "_3.png")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"png")
    with _db(data) as db:
        db.execute("INSERT INTO artifacts (sha256, path, kind, bytes, created_at) VALUES ('77', 'clips/77/77.mp4', "
                   "'clip', 1, 0)")
    named_before = sorted(p for p in artifacts.rglob("*") if p.is_file() and p not in (orphan, young, stale))

    report = check(data)
    removable = {f.check for f in report.findings if f.severity == "fixable"}
    assert removable == {"orphan file", "stale temp file", "orphan cache", "orphan row"}
    assert [f.severity for f in findings(report, "orphan file") if f.where == str(young)] == ["warning"]
    fix(report)
    assert not orphan.exists() and not stale.exists() and not cached.exists()
    assert young.exists(), "a file younger than the safe age may be a write in progress"
    assert sorted(p for p in artifacts.rglob("*") if p.is_file() and p != young) == named_before
    with _db(data) as db:
        assert db.execute("SELECT COUNT(*) FROM artifacts WHERE sha256 = '77'").fetchone() == (0,)
    after = check(data)
    assert after.healthy and {f.check for f in after.findings} == {"orphan file"}  # only the young one


def test_the_doctor_command_reports_and_fixes(data):
    result = cli("doctor", "--data-dir", str(data))
    assert result.returncode == 0 and "healthy" in result.stdout, result.stdout + result.stderr
    _one_clip(data).unlink()
    result = cli("doctor", "--data-dir", str(data), "--json")
    assert result.returncode == 1 and '"missing file"' in result.stdout
    result = cli("doctor", "--data-dir", str(data / "nowhere"))
    assert result.returncode == 2 and "no database" in result.stderr

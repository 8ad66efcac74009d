"""What `python app.py` serves: the files a person may download (artifacts, cached frames, exports) and
nothing else from the data folder (never the database, its WAL, or the browser-state key), and the
addresses it binds to (IPv6 loopback included)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app_server import REPO, AppServer


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _file_url(server: AppServer, path: Path) -> str:
    return server.url.rstrip("/") + "/gradio_api/file=" + urllib.request.pathname2url(str(path.resolve()))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a data folder that already holds a finished session (recorded by the CLI)."""
    server = AppServer(tmp_path_factory.mktemp("serving"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    recorded = subprocess.run([sys.executable, "-m", "collabvr", "run", "--family", "maze", "--n-max", "1",
                               "--data-dir", str(server.data_dir), "--json"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert recorded.returncode == 0, recorded.stderr
    server.start()
    try:
        yield server, json.loads(recorded.stdout)
    finally:
        server.stop()


def test_the_database_its_wal_and_the_browser_key_are_refused(served):
    server, _ = served
    data = server.data_dir
    secrets = [data / "collabvr.sqlite", data / "collabvr.sqlite-wal", data / "private" / "browser-state.key"]
    for path in secrets:
        assert path.is_file(), f"precondition: {path.name} exists while the app runs"
        code, body = _get(_file_url(server, path))
        assert code == 403, f"{path.name} was served ({code})"
        assert json.loads(body)["detail"].startswith("File not allowed")
    key = secrets[-1].read_bytes().strip()
    assert key and key not in _get(_file_url(server, secrets[-1]))[1]


def test_an_artifact_clip_is_still_served(served):
    server, report = served
    clip = Path(report["final_video"])
    assert clip.is_relative_to(server.data_dir / "artifacts")
    code, body = _get(_file_url(server, clip))
    assert code == 200 and body == clip.read_bytes()


def test_a_path_that_climbs_out_of_a_served_folder_is_refused(served):
    server, _ = served
    climbing = server.data_dir / "artifacts" / ".." / "collabvr.sqlite"
    url = server.url.rstrip("/") + "/gradio_api/file=" + str(climbing)
    assert _get(url)[0] == 403


def test_the_key_lives_in_a_private_folder_only_its_owner_can_open(served):
    server, _ = served
    private = server.data_dir / "private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert stat.S_IMODE((private / "browser-state.key").stat().st_mode) == 0o600
    assert not (server.data_dir / "browser-state.key").exists()


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to bind")
def test_the_app_starts_on_the_ipv6_loopback(tmp_path):
    server = AppServer(tmp_path, host="::1").start()
    try:
        code, body = _get(server.url)
        assert code == 200 and b"CollabVR Studio" in body
    finally:
        server.stop()

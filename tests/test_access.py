"""Who may reach the app and who they are: the Host check (DNS rebinding), logins from a file or the
environment (never the command line), a slowdown after failed logins, and decisions attributed to the
logged-in user whatever name a client sends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app_server import REPO, AppServer
from storage import SQLiteEventStore
from ui.access import (
    AccessError, HostCheck, LoginGuard, Users, actor_for, allowed_hosts, hash_password, host_name,
)


# ----- pieces ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header, name", [("127.0.0.1:7860", "127.0.0.1"), ("Example.org", "example.org"),
                                          ("[::1]:7860", "::1"), ("[::1]", "::1"), ("lab.example:80", "lab.example")])
def test_host_name_drops_the_port(header, name):
    assert host_name(header) == name


def test_the_host_check_answers_only_the_apps_own_names():
    check = HostCheck(app=None, allowed=allowed_hosts("127.0.0.1", ["lab.example"]))
    for ok in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "127.0.0.2", "lab.example", "LAB.example:443"):
        assert check.allows(ok), ok
    for bad in ("attacker.example:7860", "127.0.0.1.attacker.example", "", None, "0.0.0.0:7860"):
        assert not check.allows(bad), bad
    assert HostCheck(app=None, allowed=allowed_hosts("0.0.0.0", ["*"])).allows("anything.example")


def test_users_come_from_a_file_or_the_environment_with_hashed_or_plain_passwords(tmp_path):
    users_file = tmp_path / "users"
    users_file.write_text(f"# lab\nana:{hash_password('correct horse')}\nben:plainpass\n")
    users = Users.load(str(users_file), environ={})
    assert users.check("ana", "correct horse") and not users.check("ana", "Correct horse")
    assert users.check("ben", "plainpass") and not users.check("carl", "plainpass")
    from_env = Users.load(None, environ={"COLLABVR_AUTH": "ana:pw one;ben:pw:two"})
    assert from_env.check("ana", "pw one") and from_env.check("ben", "pw:two")
    assert not Users.load(None, environ={})


@pytest.mark.parametrize("text, message", [("ana", "expected name:password"), ("ana:a\nana:b", "listed twice"),
                                           ("engine:x", "cannot be a user name"), (":x", "expected name")])
def test_a_bad_users_entry_is_refused_with_where_and_why(text, message):
    with pytest.raises(AccessError, match=message):
        Users.parse(text, "users.txt")


def test_each_failed_login_doubles_the_wait_and_a_success_clears_it():
    waits = []
    guard = LoginGuard(Users({"ana": "pw"}), base_delay_s=0.5, max_delay_s=4.0, sleep=waits.append)
    for _ in range(5):
        assert not guard("ana", "wrong")
    assert waits == [0.5, 1.0, 2.0, 4.0]  # no wait before the first try, then doubling up to the cap
    assert guard("ana", "pw")  # the right password still works, after the capped wait
    assert waits[-1] == 4.0 and guard.delay_for("ana") == 0.0
    # Guessing unknown names does not escape the wait.
    assert not guard("nobody", "x") and not guard("someone", "x")
    assert guard.delay_for("anyone-else") == 1.0


def test_with_a_login_the_logged_in_user_is_the_actor():
    class Request:
        username = "ana"

    assert actor_for(Request(), "mallory") == "ana"
    assert actor_for(None, "ben") == "ben"
    assert actor_for(type("NoLogin", (), {"username": None})(), "ben") == "ben"


def test_the_users_command_stores_hashes_and_never_takes_a_password_as_an_argument(tmp_path):
    users_file = tmp_path / "users"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def users(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "collabvr", "users", *args], input=stdin, text=True,
                              capture_output=True, env=env, cwd=REPO, timeout=60)

    added = users("add", "ana", "--file", str(users_file), "--password-stdin", stdin="a long secret\n")
    assert added.returncode == 0, added.stderr
    text = users_file.read_text()
    assert "a long secret" not in text and "ana:pbkdf2_sha256$" in text
    assert users_file.stat().st_mode & 0o077 == 0
    assert Users.load(str(users_file), environ={}).check("ana", "a long secret")
    short = users("add", "ben", "--file", str(users_file), "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    assert users("list", "--file", str(users_file)).stdout.split() == ["ana"]
    assert "--password" not in users("add", "--help").stdout.replace("--password-stdin", "")


def test_the_app_refuses_a_password_on_the_command_line():
    result = subprocess.run([sys.executable, "app.py", "--auth", "ana:pw"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "unrecognized arguments: --auth" in result.stderr


# ----- the app -----------------------------------------------------------------------------------------

def _request(server: AppServer, path: str = "/", host: str | None = None, data: bytes | None = None):
    headers = {"Host": host} if host else {}
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    server = AppServer(tmp_path_factory.mktemp("access"),
                       env={"COLLABVR_AUTH": "ana:ana-secret-1;ben:ben-secret-2"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_rebound_host_name_cannot_reach_the_app(guarded):
    code, body = _request(guarded, host=f"attacker.example:{guarded.port}")
    assert code == 421 and b"does not answer for the host" in body
    code, _ = _request(guarded, host=f"localhost:{guarded.port}")
    assert code == 200


def test_a_failed_login_is_refused_and_slows_the_next_try(guarded):
    form = lambda password: urllib.parse.urlencode({"username": "ben", "password": password}).encode()  # noqa: E731
    code, _ = _request(guarded, "/login", data=form("wrong"))
    assert code in (400, 401)
    started = time.monotonic()
    code, _ = _request(guarded, "/login", data=form("wrong again"))
    assert code in (400, 401) and time.monotonic() - started >= 0.45


def test_decisions_and_labels_are_the_logged_in_users_whatever_name_is_sent(guarded):
    from gradio_client import Client

    client = Client(guarded.url, auth=("ana", "ana-secret-1"), verbose=False)
    sid, message = client.predict("sim", "maze", "easy", 1, None, "", "sim:gemini-2.5-pro", "sim:legacy",
                                  1, 1, 2.0, 1.0, ["after_verify"], 0.0, api_name="/new_session")
    assert sid, message
    for _ in range(3):  # plan, generate, verify
        client.predict(sid, None, None, api_name="/step")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "working" in str(client.predict(sid, None, None, api_name="/refresh")[0]):
            time.sleep(0.1)
    message, _ = client.predict(sid, "step:1/attempt:1", "D2", "reject", "mallory", api_name="/annotate")
    assert message.startswith("✔"), message
    message, *_ = client.predict(sid, None, None, ["on_route"], "mallory", api_name="/set_breakpoints")
    assert message.startswith("✔"), message
    # A study's queue and labels are the logged-in user's too.
    from collabvr.study import make_spec
    from storage.study_store import StudyStore

    store = SQLiteEventStore(Path(guarded.data_dir) / "collabvr.sqlite")
    StudyStore(store).create(make_spec("pilot", [sid], "d2", per_item=1))
    item, html, message = client.predict("pilot", "mallory", "", api_name="/study_next")
    assert item and "⚠" not in message, message
    _, _, message = client.predict("pilot", "mallory", item, "accept", api_name="/study_label")
    assert "⚠" not in message, message
    people = [e for e in store.read(sid) if e.type in ("Annotated", "BreakpointsSet")]
    holders = store.db.execute("SELECT annotator FROM study_holds").fetchall()
    store.close()
    assert [(e.type, getattr(e, "study", None)) for e in people] == [
        ("Annotated", None), ("BreakpointsSet", None), ("Annotated", "pilot")]
    assert all(e.actor == "ana" for e in people)
    assert {row[0] for row in holders} <= {"ana"}

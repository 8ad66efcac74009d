"""Bad input through every entry point: uploads, prompts, actions, reasons, notes and names, searches,
unknown and deleted sessions (UI handlers, as a second tab would call them), and the command line, imports
included. Each gets a clear message (a "⚠" line in the UI; "error: ..." and exit status 2 on the command
line), never a bare "Error" or a traceback, and changes nothing stored."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from collabvr.loop import Kind
from collabvr.studio import Studio
from storage import open_data_dir
from ui import handlers
from ui.handlers import Services

REPO = Path(__file__).resolve().parents[1]
ANN = "ana"
TEN_MB = "x" * (10 * 1024 * 1024)
BINARY = bytes(range(256)).decode("latin-1") * 40
RTL = "approve \u202eevil\u202c"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One session held after its first verification (attempt 1 of step 1 is verified), and one deleted."""
    root = tmp_path_factory.mktemp("bad")
    store, artifacts = open_data_dir(root / "data")
    svc = Services.create(Studio(store, artifacts), store, root / "data")
    sid, message = handlers.new_session(svc, "sim", "maze", "easy", 1, None, "", "sim:gemini-2.5-pro",
                                        "sim:legacy", 2, 2, 2.0, 1.0, ["after_verify"], 0.0)
    assert sid, message
    for _ in range(10):
        if svc.studio.next_command(sid).kind is Kind.WAIT:
            break
        handlers.step(svc, sid)
        handlers.wait_idle(svc, sid)
    gone, _ = handlers.new_session(svc, "sim", "shapes", "easy", 2, None, "", "sim:gemini-2.5-pro", "sim:legacy",
                                   1, 1, 2.0, 1.0, [], 0.0)
    assert handlers.delete_session(svc, gone, True).startswith("✔")
    return {"svc": svc, "sid": sid, "gone": gone, "root": root}


def stored(world) -> list[tuple[str, int]]:
    store = world["svc"].store
    return [(row.id, row.n_events) for row in store.list_sessions(limit=1000)]


def refused(message: str) -> None:
    assert message.startswith("⚠"), message
    body = message[1:].strip()
    assert body and body.lower() not in ("error", "error.") and "Traceback" not in body, message
    assert len(body.split()) >= 3, f"not a clear message: {message!r}"


# ----- uploads ---------------------------------------------------------------------------------------------

def _png(size=(64, 48), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, "white").save(buf, "PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, "PNG")  # 400 Mpx, compressed to a few kB
    return buf.getvalue()


UPLOADS = {
    "truncated png": lambda: _png()[:60],
    "corrupt bytes": lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(500),
    "zero-size file": lambda: b"",
    "text named .png": lambda: b"hello, this is not a picture",
    "svg with a script": lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "decompression bomb": _bomb,
    "too small": lambda: _png((8, 8)),
    "too wide": lambda: _png((4100, 20)),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_a_bad_upload_is_refused_clearly_and_nothing_is_stored(world, tmp_path, case):
    path = tmp_path / ("upload.svg" if "svg" in case else "upload.png")
    path.write_bytes(UPLOADS[case]())
    before = stored(world)
    sid, message = handlers.new_session(world["svc"], "upload", "", "", 0, str(path), "Stack the cubes.",
                                        "gemini", "wan2.2-ti2v-5b", 2, 2, 2.0, 1.0, [], 0.0)
    assert sid == ""
    refused(message)
    assert any(word in message for word in ("image", "picture", "file", "px")), message
    assert stored(world) == before


def test_an_upload_path_that_is_gone_is_refused(world):
    sid, message = handlers.new_session(world["svc"], "upload", "", "", 0, "/nonexistent/x.png", "Go.",
                                        "gemini", "wan2.2-ti2v-5b", 2, 2, 2.0, 1.0, [], 0.0)
    assert sid == ""
    refused(message)


# ----- texts -----------------------------------------------------------------------------------------------

TEXTS = {"empty": "", "spaces": "   ", "10 MB": TEN_MB, "binary": BINARY, "NUL only": "\x00" * 50,
         "right-to-left override": RTL}


@pytest.mark.parametrize("case", list(TEXTS))
def test_a_bad_upload_prompt_is_refused(world, tmp_path, case):
    path = tmp_path / "ok.png"
    path.write_bytes(_png())
    before = stored(world)
    sid, message = handlers.new_session(world["svc"], "upload", "", "", 0, str(path), TEXTS[case],
                                        "gemini", "wan2.2-ti2v-5b", 2, 2, 2.0, 1.0, [], 0.0)
    assert sid == ""
    refused(message)
    assert stored(world) == before


@pytest.mark.parametrize("case", list(TEXTS))
def test_a_bad_action_is_refused(world, case):
    before = stored(world)
    refused(handlers.edit_action(world["svc"], world["sid"], TEXTS[case], ANN))
    assert stored(world) == before


@pytest.mark.parametrize("case", ["10 MB", "binary", "NUL only", "right-to-left override"])
def test_a_bad_reason_or_suggestion_is_refused(world, case):
    before = stored(world)
    refused(handlers.override(world["svc"], world["sid"], "step:1/attempt:1", "reject", TEXTS[case], "", ANN))
    refused(handlers.override(world["svc"], world["sid"], "step:1/attempt:1", "reject", "", TEXTS[case], ANN))
    assert stored(world) == before


@pytest.mark.parametrize("case", list(TEXTS))
def test_a_bad_note_is_refused(world, case):
    before = stored(world)
    refused(handlers.annotate(world["svc"], world["sid"], "step:1/attempt:1", "note", TEXTS[case], ANN))
    assert stored(world) == before


@pytest.mark.parametrize("name", ["", "   ", "engine", "x" * 200, "\x00\x00", RTL])
def test_a_bad_name_is_refused(world, name):
    before = stored(world)
    refused(handlers.annotate(world["svc"], world["sid"], "step:1/attempt:1", "D2", "accept", name))
    assert stored(world) == before


def test_html_in_a_note_and_a_name_is_kept_as_text(world):
    message = handlers.annotate(world["svc"], world["sid"], "step:1/attempt:1", "note",
                                "<b>bold</b> & <img src=x>", "<i>ana</i>")
    assert message.startswith("✔"), message
    timeline = handlers.session_view(world["svc"], world["sid"]).timeline
    assert "&lt;b&gt;bold&lt;/b&gt;" in timeline and "<img src=x>" not in timeline


@pytest.mark.parametrize("label, value", [("D1", "-3"), ("D1", "9999"), ("D1", "three"), ("D2", "maybe"),
                                          ("D3", "7"), ("nonsense", "1")])
def test_a_bad_label_value_is_refused(world, label, value):
    before = stored(world)
    target = "session" if label == "D1" else "step:1/attempt:1"
    refused(handlers.annotate(world["svc"], world["sid"], target, label, value, ANN))
    assert stored(world) == before


@pytest.mark.parametrize("target", ["step:99/attempt:1", "step:1/attempt:x", "../../etc", "", TEN_MB[:5000]])
def test_a_bad_target_is_refused(world, target):
    before = stored(world)
    refused(handlers.annotate(world["svc"], world["sid"], target, "D2", "accept", ANN))
    assert stored(world) == before


def test_a_search_of_a_hundred_thousand_characters_answers_quickly_with_nothing(world):
    started = time.monotonic()
    table, ids = handlers.list_sessions(world["svc"], "q" * 100_000, "all")
    assert (table, ids) == ([], []) and time.monotonic() - started < 5


# ----- sessions a second tab no longer has ----------------------------------------------------------------

@pytest.mark.parametrize("which", ["unknown", "deleted", "hostile"])
def test_every_action_on_an_unknown_or_deleted_session_is_refused(world, which):
    sid = {"unknown": "nosuchsession", "deleted": world["gone"], "hostile": "../../etc/passwd"}[which]
    svc = world["svc"]
    before = stored(world)
    for message in (handlers.step(svc, sid), handlers.run(svc, sid), handlers.pause(svc, sid),
                    handlers.stop(svc, sid), handlers.edit_action(svc, sid, "go", ANN),
                    handlers.override(svc, sid, "step:1/attempt:1", "accept", "", "", ANN),
                    handlers.annotate(svc, sid, "session", "D1", 2, ANN),
                    handlers.set_breakpoints(svc, sid, ["on_route"], ANN),
                    handlers.route_split(svc, sid, 2, ANN), handlers.route_fallback(svc, sid, ANN),
                    handlers.delete_session(svc, sid, True), handlers.export_session(svc, sid)[1],
                    handlers.fork(svc, sid, 1)[1]):
        refused(message)
    assert stored(world) == before


# ----- the command line ------------------------------------------------------------------------------------

def cli(*args: str, data: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    extra = ["--data-dir", str(data)] if data is not None else []
    return subprocess.run([sys.executable, "-m", "collabvr", *args, *extra], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def cli_refused(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "error" in result.stderr.lower(), result.stderr


@pytest.mark.parametrize("args", [
    ("run", "--family", "nope", "--out", "/tmp/x"),
    ("run", "--family", "maze", "--seed", "abc", "--out", "/tmp/x"),
    ("run", "--family", "maze", "--n-max", "0", "--out", "/tmp/x"),
    ("stats", "--seeds", "9-x"),
    ("sessions", "show", "../x"),
    ("sessions", "show", "nosuchsession"),
    ("sessions", "fork", "nosuchsession", "--at", "2"),
])
def test_bad_command_line_input_is_refused_clearly(world, args):
    cli_refused(cli(*args, data=world["root"] / "data" if args[0] == "sessions" else None))


def _archive(tmp_path: Path, name: str, members: dict[str, bytes]) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


@pytest.mark.parametrize("case", ["climbing path", "not a zip", "no manifest", "missing log", "empty file"])
def test_a_bad_archive_is_refused_by_the_command_line_and_nothing_is_imported(tmp_path, case):
    data = tmp_path / "data"
    manifest = b'{"format": "collabvr-export", "version": 1, "sessions": [{"id": "abc"}]}'
    archive = {
        "climbing path": lambda: _archive(tmp_path, "a.zip", {"manifest.json": manifest, "../../evil.txt": b"x",
                                                              "sessions/abc/events.jsonl": b""}),
        "not a zip": lambda: (tmp_path / "a.zip").write_bytes(b"PK no really") and tmp_path / "a.zip",
        "no manifest": lambda: _archive(tmp_path, "a.zip", {"sessions/abc/events.jsonl": b""}),
        "missing log": lambda: _archive(tmp_path, "a.zip", {"manifest.json": manifest}),
        "empty file": lambda: (tmp_path / "a.zip").write_bytes(b"") or tmp_path / "a.zip",
    }[case]()
    result = cli("sessions", "import", str(archive), data=data)
    cli_refused(result)
    assert not (data / "collabvr.sqlite").exists() or cli("sessions", "list", data=data).stdout.strip() in (
        "no sessions", "")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_huge_search_on_the_command_line_is_refused(world):
    cli_refused(cli("sessions", "list", "--search", "q" * 100_000, data=world["root"] / "data"))

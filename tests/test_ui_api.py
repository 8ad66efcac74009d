"""Every api_name of the app, called once through gradio_client against the Blocks launched in-process."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

API_NAMES = {
    "new_session", "step", "run", "pause", "stop", "refresh", "override", "edit_action", "route_regen",
    "route_split", "route_fallback", "annotate", "set_breakpoints", "list_sessions", "open_session", "fork",
    "delete_session", "export_session", "agreement",
}
ANN = "ana"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui_api")
    saved = {k: os.environ.get(k) for k in ("TMPDIR", "GRADIO_TEMP_DIR")}
    os.environ["TMPDIR"] = str(tmp / "tmp")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "gradio")
    (tmp / "tmp").mkdir()
    import tempfile
    tempfile.tempdir = None  # re-read TMPDIR

    from gradio_client import Client

    import ui
    from collabvr.studio import Studio
    from storage import open_data_dir

    data = tmp / "data"
    store, artifacts = open_data_dir(data)
    studio = Studio(store, artifacts)
    demo = ui.create_app(studio, store, artifacts, data_dir=data)
    demo.queue(default_concurrency_limit=8)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                            ssr_mode=False, allowed_paths=[str(data)], **ui.launch_options())
    client = Client(url, verbose=False, download_files=str(tmp / "downloads"))
    try:
        yield client, studio, url, data
    finally:
        demo.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tempfile.tempdir = None


def wait_idle(studio, sid):
    studio.wait(sid, 60)
    while studio.is_running(sid):
        time.sleep(0.02)


def new_session(client, breakpoints, seed=1):
    sid, message = client.predict("sim", "maze", "easy", seed, None, "", "sim:gemini-2.5-pro", "sim:legacy",
                                  2, 2, 2.0, 1.0, breakpoints, 0.0, api_name="/new_session")
    assert sid and message.startswith("✔"), message
    return sid


def test_every_api_name_is_exposed(app):
    client, *_ = app
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {f"/{n}" for n in API_NAMES} <= named


def test_drive_decide_and_annotate_through_the_api(app):
    client, studio, url, data = app
    sid = new_session(client, ["after_verify"])

    for _ in range(3):  # plan, generate, verify: then the breakpoint holds the loop
        message, *shown = client.predict(sid, None, None, api_name="/step")
        assert message.startswith("✔"), message
        wait_idle(studio, sid)
    # refresh sends only what changed since this client's last view (a Step's answer may show it already).
    refreshed = client.predict(sid, None, None, api_name="/refresh")
    status, timeline = (new if isinstance(new, str) else old for new, old in zip(refreshed[:2], shown[:2]))
    assert "waiting: breakpoint" in status and 'data-attempt="1"' in timeline

    # The clip is served through Gradio's file route.
    import re
    import urllib.request
    src = re.search(r'<video class="clip"[^>]*src="([^"]+)"', timeline).group(1)
    with urllib.request.urlopen(url.rstrip("/") + src) as response:
        assert response.status == 200 and response.headers["content-type"] == "video/mp4"

    message, *_ = client.predict(sid, None, None, ["after_verify", "on_reject"], ANN, api_name="/set_breakpoints")
    assert message.startswith("✔"), message
    message, timeline = client.predict(sid, "step:1/attempt:1", "reject", "drifted", "", ANN, api_name="/override")
    assert message.startswith("✔") and "overridden to <b>reject</b> by ana" in timeline
    message, *_ = client.predict(sid, None, None, "Move the red disc left to column 3.", ANN, api_name="/edit_action")
    assert message.startswith("✔"), message
    message, *_ = client.predict(sid, None, None, "step:1/attempt:1", 2, "", ANN, api_name="/route_regen")
    assert message.startswith("✔"), message
    message, *_ = client.predict(sid, None, None, 2, ANN, api_name="/route_split")
    assert message.startswith("✔"), message
    message, *_ = client.predict(sid, None, None, ANN, api_name="/route_fallback")
    assert "split into sub-steps" in message  # the step was just split: refused with a reason, not a traceback

    message, timeline = client.predict(sid, "step:1/attempt:1", "D2", "accept", ANN, api_name="/annotate")
    assert message.startswith("✔") and "D2 human verdict" in timeline
    message, table, *charts = client.predict(sid, "this session", api_name="/agreement")
    assert message.startswith("✔") and table["data"] and len(charts) == 3

    message, *_ = client.predict(sid, None, None, api_name="/run")
    assert message.startswith("✔")
    client.predict(sid, None, None, api_name="/pause")
    client.predict(sid, None, None, api_name="/stop")
    wait_idle(studio, sid)


def test_sessions_view_through_the_api(app):
    client, studio, _, _ = app
    sid = new_session(client, [], seed=2)
    client.predict(sid, None, None, api_name="/run")
    wait_idle(studio, sid)

    table, picked = client.predict("", "all", None, api_name="/list_sessions")
    assert sid in [row[0] for row in table["data"]]
    opened, message = client.predict(sid, api_name="/open_session")
    assert opened == sid and message.startswith("✔")
    forked, message = client.predict(sid, "step 1", api_name="/fork")
    assert forked and forked != sid and message.startswith("✔"), message
    files, message = client.predict(sid, api_name="/export_session")
    assert message.startswith("✔") and sorted(Path(f).suffix for f in files) == [".jsonl", ".zip"]
    message, *_ = client.predict(forked, False, sid, "", "all", api_name="/delete_session")
    assert message.startswith("⚠")
    message, table, *_ = client.predict(forked, True, sid, "", "all", api_name="/delete_session")
    assert message.startswith("✔") and forked not in [row[0] for row in table["data"]]

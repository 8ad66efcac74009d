"""The sessions view: fork from a past step, export, and a server restart in the middle of a run."""

from __future__ import annotations

import io
import json
import re
import zipfile

from playwright.sync_api import expect

from conftest import Studio


def session_rows(studio) -> dict[str, list[str]]:
    """The sessions table as the page shows it: id -> [id, title, status, updated, parent, events]."""
    studio.tab("Sessions")
    studio.click("btn-list-sessions")
    studio.page.wait_for_function("() => document.querySelectorAll('#sessions-table [role=row].virtual-row').length")
    return {row[0]: row for row in studio.table("sessions-table")}


def wait_row(studio, sid: str, column: int, pattern: str, tries: int = 20) -> list[str]:
    """Refresh the list until the session's row shows `pattern` in `column` (bounded)."""
    row: list[str] = []
    for _ in range(tries):
        row = session_rows(studio).get(sid, [])
        if row and re.search(pattern, row[column]):
            return row
        studio.page.wait_for_timeout(250)
    raise AssertionError(f"the sessions list never showed {pattern!r} for {sid}: {row}")


def test_fork_from_a_past_step(studio, page, shot):
    parent = studio.new_sim_session(family="maze", seed=0, n_max=2)
    assert "done:" in studio.run()
    assert studio.cards().count() == 2
    studio.open_accordion("fork-panel")
    studio.choose("fork-step", "step 2")
    studio.click("btn-fork")
    message = studio.message("decision-message", rf"forked {parent} at the start of step 2 into \w+; it is open now")
    child = re.search(r"into (\w+);", message).group(1)
    page.wait_for_function("(s) => document.querySelector('#session-id textarea').value === s", arg=child)
    expect(page.locator(f'#timeline .timeline-root[data-session="{child}"]')).to_be_visible()
    expect(page.locator("#timeline .fork-origin")).to_contain_text(f"forked from {parent}")
    # The fork keeps step 1 and step 2's plan; step 2 is to be generated anew.
    expect(studio.rows(1)).not_to_have_count(0)
    assert studio.rows(2).count() == 0
    assert "next: generate step 2 attempt 1" in studio.status(), studio.status()
    shot(page, "forked")

    rows = session_rows(studio)
    assert child in rows and parent in rows, rows
    # The fork names the step it was forked at, not an event number.
    assert rows[child][4] == f"{parent} (step 2)", rows[child]
    assert rows[child][1].endswith("(fork at step 2)") and "@" not in rows[child][1], rows[child]
    assert rows[parent][4] == ""
    shot(page)


def test_export_offers_jsonl_and_zip(studio, page, shot):
    sid = studio.new_sim_session(family="blocks", seed=1, n_max=1, m=1)
    assert "done:" in studio.run()
    rows = session_rows(studio)
    assert rows[sid][2] == "finished", rows[sid]
    studio.choose("session-pick", sid)
    studio.click("btn-export")
    studio.message("sessions-message", rf"exported \d+ attempt\(s\) of {sid}")
    shown = page.locator("#export-files td.filename")
    expect(shown).to_have_count(2)
    names = sorted(n.inner_text().replace("\n", "").replace(" ", "") for n in shown.all())
    assert names[0].endswith(".jsonl") and names[1].endswith(".zip"), names
    assert all(f"session-{sid}-" in name for name in names), names
    links = page.locator("#export-files a[data-testid=download-link]")
    expect(links).to_have_count(2)
    for link in links.all():
        name = link.get_attribute("download")
        response = page.request.get(link.get_attribute("href"))
        assert response.ok, (name, response.status)
        body = response.body()
        if name.endswith(".jsonl"):
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            assert lines and all(isinstance(x, dict) for x in lines), lines[:1]
        else:
            assert name.endswith(".zip"), name
            assert zipfile.ZipFile(io.BytesIO(body)).namelist()
    page.locator("#export-files").scroll_into_view_if_needed()
    shot(page)


def test_restart_mid_run_marks_interrupted_and_run_resumes(app_factory, page, shot):
    server = app_factory("restart", sim_latency=0.4)
    studio = Studio(page, server.url)
    studio.open()
    assert studio.value("sim-latency") == "0.4"  # the server's --sim-latency is the panel's default
    sid = studio.new_sim_session(family="maze", seed=4, n_max=2, m=2, latency=None)
    studio.set_annotator("Margaret Hamilton")
    studio.click("btn-run")
    # A run in flight: the worker is busy and at least one clip is in the timeline.
    studio.wait_status(r"working[\s\S]*in flight \(run\)")
    expect(page.locator("#timeline video.clip").first).to_be_visible(timeout=20_000)
    assert studio.badge() == "working" and "in flight (run)" in studio.status()
    shot(page, "in-flight")

    server.stop()  # the run is cut off mid-way
    server.start()
    studio.reload()
    # This browser's open session and name survive the restart (ui/wiring.py keeps BrowserState's key).
    page.wait_for_function("(s) => document.querySelector('#session-id textarea').value === s", arg=sid)
    assert studio.value("annotator") == "Margaret Hamilton"
    studio.wait_status(r"interrupted\s+press Run to resume")
    cut_at = studio.seq()
    row = wait_row(studio, sid, 2, r"^interrupted$")
    assert row[2] == "interrupted"
    shot(page, "interrupted")

    studio.choose("session-pick", sid)
    studio.click("btn-open")
    studio.message("sessions-message", rf"opened session {sid}")
    expect(page.locator("#btn-run")).to_be_visible()  # Open brings the Session tab forward
    status = studio.run(timeout=60_000)
    assert "done:" in status, status
    assert studio.seq() > cut_at  # it went on from where it was cut off
    expect(page.locator("#timeline .session-finished")).to_be_visible()
    wait_row(studio, sid, 2, r"^finished$")
    studio.tab("Session")
    shot(page)


def test_the_sessions_view_follows_the_open_session(studio, page, shot):
    first = studio.new_sim_session(family="maze", seed=0, n_max=1, m=1)
    second = studio.new_sim_session(family="shapes", seed=1, n_max=1, m=1)
    studio.tab("Sessions")
    # No "Refresh list": the picker already names the session on screen, and the table lists both.
    page.wait_for_function(
        "(sid) => document.querySelector('#session-pick input[role=combobox]').value === sid", arg=second)
    page.wait_for_function("() => document.querySelectorAll('#sessions-table [role=row].virtual-row').length >= 2")
    assert {first, second} <= {row[0] for row in studio.table("sessions-table")}
    shot(page)

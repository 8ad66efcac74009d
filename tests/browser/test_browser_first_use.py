"""What a new user meets first (issue 8's friction list): the upload preview, backends that cannot run said
before Start, a sessions list that keeps itself current and an Open that goes to the session, clips with a
picture before they play, a cheat sheet that hides nothing, and a phone screen with Start and the decision
panel in reach."""

from __future__ import annotations

import re

from PIL import Image
from playwright.sync_api import expect

from conftest import WAIT_MS, Studio
from test_browser_sessions import session_rows


def test_upload_mode_shows_the_uploaded_image_and_hides_the_simulated_task(studio, page, shot, tmp_path):
    maze = page.locator("#task-preview img").get_attribute("src")
    studio.radio("task-source", "Upload an image")
    expect(page.locator("#task-prompt")).to_be_hidden()  # the simulated task's prompt is not this task's
    expect(page.locator("#family")).to_be_hidden()
    expect(page.locator("#task-preview")).to_contain_text("Uploaded image")
    picture = tmp_path / "kitchen.png"
    Image.new("RGB", (96, 64), (200, 60, 30)).save(picture)
    page.locator("#upload-image input[type=file]").set_input_files(str(picture))
    page.wait_for_function(
        "(old) => { const img = document.querySelector('#task-preview img');"
        " return !!img && img.getAttribute('src') !== old && img.naturalWidth === 96; }", arg=maze)
    # The simulated backends cannot take an upload: said before Start, for both roles.
    check = studio.text("backend-check")
    assert check.count("⚠") == 2 and "VLM" in check and "VGM" in check, check
    shot(page)

    studio.radio("task-source", "Simulated task")
    expect(page.locator("#task-prompt")).to_be_visible()
    expect(page.locator("#task-preview")).to_contain_text("Input image (simulated task)")
    assert studio.text("backend-check").startswith("✔")


def test_unavailable_backends_are_marked_and_every_reason_is_named_before_start(studio, page, shot):
    def options(elem_id: str) -> list[str]:
        page.locator(f"#{elem_id} input[role=combobox]").click()
        listed = page.locator(f"#{elem_id} li[role=option]")
        expect(listed.first).to_be_visible()
        labels = [listed.nth(i).get_attribute("aria-label") for i in range(listed.count())]
        page.keyboard.press("Escape")
        return labels

    def pick(elem_id: str, label: str, index: int) -> None:
        """With the keyboard, as a person may: open the list, walk down to the option, take it."""
        page.locator(f"#{elem_id} input[role=combobox]").click()
        expect(page.locator(f"#{elem_id} li[role=option]").first).to_be_visible()
        for _ in range(index):  # the list opens on the current choice, the first
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        page.wait_for_function("([id, label]) => document.querySelector(`#${id} input`).value === label",
                               arg=[elem_id, label])

    chosen = {}
    for elem_id in ("vlm-choice", "vgm-choice"):
        labels = options(elem_id)
        unavailable = [label for label in labels if label.startswith("✘")]
        # Marked before anyone picks them, and listed after those that can run.
        assert unavailable and not labels[0].startswith("✘"), labels
        chosen[elem_id] = unavailable[0]
        pick(elem_id, unavailable[0], labels.index(unavailable[0]))
    check = studio.wait_text("backend-check", r"⚠[\s\S]*⚠")
    assert "VLM" in check and "VGM" in check and check.count("cannot run here") == 2, check
    shot(page, "picked")
    studio.click("start-session")
    said = studio.message("new-session-message", r"⚠ VLM .*; VGM ")
    assert said.count("cannot run here") == 2, said
    assert studio.sid == ""
    shot(page)


def test_open_goes_to_the_session_and_the_list_keeps_itself_current(studio, page, shot):
    first = studio.new_sim_session(family="maze", seed=0, n_max=1, m=1)
    second = studio.new_sim_session(family="blocks", seed=1, n_max=1, m=1)
    rows = session_rows(studio)
    assert rows[first][2] == "idle" and rows[first][5] == "1", rows[first]
    studio.choose("session-pick", first)
    studio.click("btn-open")
    expect(page.locator("#btn-run")).to_be_visible()  # the Session tab is in front
    page.wait_for_function("(s) => document.querySelector('#session-id textarea').value === s", arg=first)
    assert "done:" in studio.run()

    # Back in the list, without pressing anything: the finished run shows as finished.
    studio.tab("Sessions")
    page.wait_for_function(
        "(sid) => [...document.querySelectorAll('#sessions-table [role=row].virtual-row')]"
        ".some(r => r.innerText.includes(sid) && /finished/.test(r.innerText))", arg=first, timeout=WAIT_MS)
    table = {row[0]: row for row in studio.table("sessions-table")}
    assert table[first][2] == "finished" and int(table[first][5]) > 1, table[first]
    assert table[second][2] == "idle", table[second]
    shot(page)


def test_clips_show_a_poster_frame_before_they_play(studio, page, shot):
    studio.new_sim_session(family="shapes", seed=1, n_max=1, m=1)
    studio.step()
    studio.step()
    clip = studio.row(1, 1).locator("video.clip")
    poster = clip.get_attribute("poster")
    assert poster and poster.endswith("_0_full.png"), poster
    response = page.request.get(studio.url.rstrip("/") + poster)
    assert response.ok and response.body()[:8] == b"\x89PNG\r\n\x1a\n"
    shot(page)


def test_the_shortcut_sheet_leaves_accept_and_reject_uncovered(studio, page, shot):
    studio.new_sim_session(family="maze", seed=0, breakpoints=["after_verify"])
    assert "breakpoint: after verification" in studio.run()
    page.locator("#timeline .session-info").click()
    page.keyboard.press("?")
    sheet = page.locator("#shortcut-sheet")
    expect(sheet).to_be_visible()
    for button in ("btn-override-accept", "btn-override-reject", "btn-d2-accept", "btn-d2-reject"):
        # Wherever the page is scrolled: the button at the bottom edge of the screen, where a sheet would sit.
        page.locator(f"#{button}").evaluate("e => e.scrollIntoView({block: 'end'})")
        box, other = sheet.bounding_box(), page.locator(f"#{button}").bounding_box()
        apart = (box["x"] + box["width"] <= other["x"] or other["x"] + other["width"] <= box["x"]
                 or box["y"] + box["height"] <= other["y"] or other["y"] + other["height"] <= box["y"])
        assert apart, (button, box, other)
    shot(page)


def test_on_a_phone_start_and_the_decision_panel_are_within_reach(browser, app_server, shot):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        studio = Studio(page, app_server.url)
        studio.open()
        page.wait_for_timeout(1000)
        start = page.locator("#start-session").bounding_box()
        assert 0 <= start["y"] and start["y"] + start["height"] <= 844, start  # on the first screen
        shot(page, "first-screen")

        studio.new_sim_session(family="maze", seed=0, breakpoints=["after_verify"])
        assert "breakpoint: after verification" in studio.run()
        decide, timeline = page.locator("#decide-panel").bounding_box(), page.locator("#timeline").bounding_box()
        assert decide["y"] < timeline["y"], (decide, timeline)  # the decision panel comes before the timeline
        assert re.search(r"\bheld\b", studio.badge())
        shot(page, "decide")
    finally:
        context.close()

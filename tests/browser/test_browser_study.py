"""A reliability study in the browser: two annotators in two browser contexts label a blind study with the
keyboard, the adjudication view shows where they disagree, the study's figures and export; a phone can label
without scrolling sideways; and frame-accurate review, with a note anchored at a moment of a clip."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import expect

from conftest import WAIT_MS, Studio


def finished(studio, seed: int) -> str:
    sid = studio.new_sim_session(family="maze", seed=seed, n_max=2, m=2)
    status = studio.run()
    assert "done:" in status, status
    return sid


def study_page(browser, url: str, name: str, width: int = 1440) -> Studio:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
    studio = Studio(page, url)
    studio.open()
    studio.set_annotator(name)
    studio.tab("Study")
    return studio


def pick_study(studio: Studio, name: str) -> None:
    studio.click("btn-study-refresh")
    studio.page.wait_for_timeout(500)
    studio.choose("study-pick", name)
    studio.wait_text("study-progress", re.escape(name))


def key(studio: Studio, name: str) -> None:
    studio.page.locator("#study-progress").click()  # focus outside any text box: the keys are live
    studio.page.keyboard.press(name)


def shown_item(studio: Studio) -> str:
    return studio.page.locator("#study-item .study-item").get_attribute("data-item") or ""


def wait_new_message(studio: Studio, before: str) -> str:
    studio.page.wait_for_function(
        "(before) => { const e = document.querySelector('#study-message textarea');"
        " return !!e && e.value && e.value !== before; }", arg=before)
    return studio.value("study-message")


def test_two_annotators_label_a_blind_study_with_the_keyboard_then_adjudicate_and_export(studio, page, browser,
                                                                                         app_server, shot):
    sids = [finished(studio, 4), finished(studio, 0)]
    name = f"kb{int(time.time())}"
    studio.set_annotator("cy")
    studio.tab("Study")
    studio.open_accordion("study-new")
    studio.fill("study-name", name)
    studio.fill("study-sessions", ",".join(sids))
    studio.check("study-labels", ["D1", "D3"], on=False)
    studio.check("study-labels", ["D2"])
    studio.fill("study-annotators", "ana,bo")
    studio.click("btn-study-create")
    studio.message("study-create-message", rf"study {name}: \d+ item\(s\) over 2 session\(s\)")

    ana, bo = study_page(browser, app_server.url, "ana"), study_page(browser, app_server.url, "bo")
    for person in (ana, bo):
        pick_study(person, name)
    secret = [v.inner_text() for v in page.locator("#timeline .verdict .reason").all()]  # what the VLM said
    assert secret

    done = {"ana": False, "bo": False}
    given = {"ana": 0, "bo": 0}
    for _ in range(30):
        if all(done.values()):
            break
        for who, person in (("ana", ana), ("bo", bo)):
            if done[who]:
                continue
            before = person.value("study-message")
            item = shown_item(person)
            if item:
                # blind: nothing of the VLM's verdict, no failing frame, nobody else's label
                html = person.page.locator("#study-item").inner_html()
                assert "VLM:" not in html and "verdict-badge" not in html and "mark failing" not in html
                assert not any(reason in html for reason in secret)
                assert ("ana" if who == "bo" else "bo") + ":" not in html
                # bo rejects the first clip he sees; otherwise both accept
                key(person, "r" if who == "bo" and given["bo"] == 0 else "a")
                given[who] += 1
            else:
                key(person, "n")
            message = wait_new_message(person, before)
            assert "⚠" not in message, message
            if "nothing left" in message:
                done[who] = True
            elif "open with other annotators" in message:
                person.page.wait_for_timeout(400)
    assert all(done.values()), (given, ana.value("study-message"), bo.value("study-message"))
    assert given["ana"] == given["bo"] >= 3
    ana.wait_text("study-progress", rf"{2 * given['ana']} of {2 * given['ana']} labels")
    shot(ana.page, "ana-done")

    # The keys are listed on the page.
    expect(ana.page.locator("#study-shortcuts")).to_contain_text("next item")
    ana.page.keyboard.press("?")
    expect(ana.page.locator("#shortcut-sheet")).to_contain_text("Study keys")
    ana.page.keyboard.press("?")

    # The adjudication view shows their disagreement; cy records the final label with a reason.
    studio.click("btn-study-refresh")
    pick_study(studio, name)
    studio.open_accordion("study-adjudicate")
    studio.click("btn-disagreements")
    studio.message("adj-message", r"1 disagreement\(s\), 1 not adjudicated")
    rows = studio.table("study-disagreements")
    assert len(rows) == 1 and "ana: accept" in rows[0][2] and "bo: reject" in rows[0][2], rows
    studio.fill("adj-value", "reject")
    studio.fill("adj-reason", "the disc stops short of the cell")
    studio.click("btn-adjudicate")
    studio.message("adj-message", r"final label of .*: reject, by cy")
    page.wait_for_function("() => [...document.querySelectorAll('#study-disagreements [role=gridcell]')]"
                           ".some(c => c.innerText.includes('reject by cy'))")
    shot(page, "adjudication")

    # Figures (Tables 6-7, agreement with intervals, charts) and the export.
    studio.open_accordion("study-figures-panel")
    studio.click("btn-study-figures")
    studio.message("study-figures-message", rf"figures of {name}")
    expect(page.locator("#study-tables")).to_contain_text("Table 6")
    expect(page.locator("#study-tables")).to_contain_text("Table 7")
    expect(page.locator("#study-tables")).to_contain_text("Krippendorff")
    expect(page.locator("#chart-study-kappa .js-plotly-plot").first).to_be_visible()
    studio.click("btn-study-export")
    studio.message("study-figures-message", rf"exported study {name}: {given['ana']} item\(s\), "
                                            rf"{2 * given['ana']} label\(s\)")
    link = page.locator("#study-export-file a[download]").first
    assert link.get_attribute("download").endswith(".jsonl")
    rows = [json.loads(line) for line in page.request.get(link.get_attribute("href")).text().splitlines()]
    assert len(rows) == given["ana"] and all(len(r["labels"]) == 2 and r["simulated"] for r in rows)
    decided = [r for r in rows if r["adjudicated"]]
    assert len(decided) == 1 and decided[0]["adjudicated"]["adjudicator"] == "cy" and decided[0]["final"] == "reject"
    page.locator("#study-figures-panel").scroll_into_view_if_needed()
    shot(page, "figures")
    for person in (ana, bo):
        assert not person.page.errors, person.page.errors
        person.page.context.close()


def test_a_phone_labels_a_study_without_scrolling_sideways(studio, browser, app_server, shot):
    sid = finished(studio, 0)
    name = f"phone{int(time.time())}"
    studio.set_annotator("cy")
    studio.tab("Study")
    studio.open_accordion("study-new")
    studio.fill("study-name", name)
    studio.fill("study-sessions", sid)
    studio.click("btn-study-create")
    studio.message("study-create-message", rf"study {name}")
    phone = study_page(browser, app_server.url, "dee", width=390)
    pick_study(phone, name)
    key(phone, "n")
    phone.wait_text("study-message", "next item")
    kind = phone.page.locator("#study-item .study-item").get_attribute("data-kind")
    assert kind == "D1"
    expect(phone.page.locator("#btn-q-depth-2")).to_be_visible()
    width = phone.page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]")
    assert max(width[:2]) <= width[2], width
    shot(phone.page, "phone")
    phone.page.locator("#btn-q-depth-2").click()
    phone.wait_text("study-message", r"D1 = 2 recorded")
    width = phone.page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    expect(phone.page.locator("#study-buttons-d2 #btn-q-accept")).to_be_visible()  # a clip's item: accept/reject
    shot(phone.page, "phone-clip")
    phone.page.context.close()


def test_review_a_clip_frame_by_frame_and_anchor_a_note_at_a_moment(studio, page, shot):
    finished(studio, 4)
    studio.set_annotator("ana")
    studio.open_accordion("review-panel")
    page.wait_for_selector("#review-attempt input[role=combobox]")
    page.wait_for_function("() => document.querySelector('#review-attempt input[role=combobox]').value !== ''")
    studio.choose("review-attempt", "step:1/attempt:1")
    expect(page.locator('#review-compare .review-card.picked[data-attempt="1"]')).to_be_visible()
    studio.click("btn-frame-next")
    studio.wait_text("review-info", r"frame 1 of")
    studio.click("btn-frame-next")
    studio.wait_text("review-info", r"frame 2 of")
    expect(page.locator("#review-image img")).to_be_visible()
    studio.click("btn-jump-failing")
    said = studio.wait_text("review-message", r"first failing frame of step:1/attempt:1: \d+|has no failing frame")
    failing = re.search(r"failing frame of step:1/attempt:1: (\d+)", said)
    frame = (int(failing.group(1)) if failing else 2) - 1
    if failing:
        studio.wait_text("review-info", rf"frame {frame + 1} of")
    studio.click("btn-frame-prev")
    studio.wait_text("review-info", rf"frame {frame} of")
    studio.fill("review-note", "the disc starts to drift here")
    studio.click("btn-review-note")
    studio.message("review-message", rf"note recorded at frame {frame} of step:1/attempt:1 by ana")
    row = studio.row(1, 1)
    mark = row.locator(f'.clip-timeline .mark.moment-note[data-frame="{frame}"]')
    expect(mark).to_have_count(1)
    expect(row.locator(".annotation.moment")).to_contain_text(f"note at frame {frame}: the disc starts to drift here")

    # The clip's own tools: one frame on, half speed, and the note's mark seeks to its frame.
    player = row.locator(".clip-player")
    player.locator('.clip-step[data-delta="1"]').click()
    expect(player.locator(".frame-readout")).to_contain_text("frame 1 /")
    player.locator(".clip-speed").select_option("0.5")
    assert player.locator("video").evaluate("v => v.playbackRate") == 0.5
    mark.click()
    expect(player.locator(".frame-readout")).to_contain_text(f"frame {frame} /")
    row.scroll_into_view_if_needed()
    shot(page)
    assert not page.errors, page.errors

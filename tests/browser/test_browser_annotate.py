"""Annotating with the keyboard, the agreement figures, and what a page reload restores."""

from __future__ import annotations

import re

from playwright.sync_api import expect


ANNOTATOR = "Grace Hopper"


def finished_with_attempts(studio, page, seed: int = 4) -> str:
    """A finished session with several verified attempts (seed 4 of the easy maze rejects once)."""
    sid = studio.new_sim_session(family="maze", seed=seed, n_max=2, m=2)
    status = studio.run()
    assert "done:" in status, status
    assert studio.rows().count() >= 2, "the test needs at least two attempts to move between"
    return sid


def target(studio) -> str:
    return studio.value("annot-target")


def press(studio, page, key: str) -> None:
    page.locator("#timeline .session-info").click()  # focus outside any text box: shortcuts are live
    page.keyboard.press(key)


def test_annotate_with_the_keyboard_and_see_the_agreement(studio, page, shot):
    sid = finished_with_attempts(studio, page)
    studio.set_annotator(ANNOTATOR)
    attempts = [f"step:{r.get_attribute('data-step')}/attempt:{r.get_attribute('data-attempt')}"
                for r in studio.rows().all()]
    with_suggestion = [a for a, r in zip(attempts, studio.rows().all()) if r.locator(".verdict .suggestion").count()]
    without = [a for a in attempts if a not in with_suggestion]
    assert with_suggestion and without, attempts
    rated, accepted = with_suggestion[0], without[-1]

    def walk_to(wanted: str) -> None:
        """← and → until the annotation target is `wanted` (each press waits for the page to follow)."""
        for _ in range(len(attempts) + 1):
            current = target(studio)
            if current == wanted:
                return
            key = "ArrowRight" if attempts.index(current) < attempts.index(wanted) else "ArrowLeft"
            press(studio, page, key)
            page.wait_for_function("(t) => document.querySelector('#annot-target input').value !== t", arg=current)
        assert target(studio) == wanted

    walk_to(attempts[-1])
    press(studio, page, "ArrowRight")  # stays at the end
    page.wait_for_timeout(300)
    assert target(studio) == attempts[-1]

    walk_to(rated)
    press(studio, page, "r")
    studio.message("annotation-message", rf"D2 = reject recorded for {re.escape(rated)} by {ANNOTATOR}")
    press(studio, page, "2")
    studio.message("annotation-message", rf"D3 = 2 recorded for {re.escape(rated)} by {ANNOTATOR}")

    walk_to(accepted)
    press(studio, page, "a")
    studio.message("annotation-message", rf"D2 = accept recorded for {re.escape(accepted)} by {ANNOTATOR}")
    press(studio, page, "3")  # an accepted attempt has no suggestion: a clear refusal, nothing recorded
    studio.message("annotation-message", rf"⚠ {re.escape(accepted)} has no suggestion to rate")

    # Keys typed into a text box are text, not shortcuts.
    studio.field("note").fill("ar123")
    assert target(studio) == accepted

    # The timeline shows each label under its attempt, with the annotator's name.
    step, attempt = re.findall(r"\d+", rated)
    earlier = studio.row(int(step), int(attempt))
    expect(earlier.locator(".annotation.label-D2")).to_contain_text(f"human verdict: reject by {ANNOTATOR}")
    expect(earlier.locator(".annotation.label-D3")).to_contain_text(f"suggestion rating: 2 by {ANNOTATOR}")
    step, attempt = re.findall(r"\d+", accepted)
    latest = studio.row(int(step), int(attempt))
    expect(latest.locator(".annotation.label-D2")).to_contain_text(f"human verdict: accept by {ANNOTATOR}")
    assert page.locator("#timeline .annotation").count() == 3

    press(studio, page, "?")
    sheet = page.locator("#shortcut-sheet")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text("D2: accept / reject")
    shot(page, "shortcuts")
    press(studio, page, "?")
    expect(sheet).to_be_hidden()

    studio.open_accordion("agreement-panel")
    studio.click("btn-agreement")
    studio.message("agreement-message", r"agreement over 1 session\(s\), 2 D2 label\(s\)")
    expect(page.locator("#agreement-table")).to_contain_text("Cohen's kappa")
    figures = {(label, figure): value for label, figure, value in studio.table("agreement-table")}
    assert figures[("D2 human vs VLM verdict", "labels")] == "2", figures
    assert 0 <= float(figures[("D2 human vs VLM verdict", "agreement")]) <= 1, figures
    assert figures[("D3 suggestion rating", "ratings")] == "1", figures
    expect(page.locator("#chart-confusion .js-plotly-plot .main-svg").first).to_be_visible()  # drawn, not the empty icon
    assert sid in studio.status()
    page.locator("#agreement-panel").scroll_into_view_if_needed()
    shot(page)


def test_reload_restores_session_timeline_and_annotator(studio, page, shot):
    sid = finished_with_attempts(studio, page, seed=0)
    studio.set_annotator(ANNOTATOR)
    press(studio, page, "a")
    studio.message("annotation-message", rf"D2 = accept recorded for .* by {ANNOTATOR}")
    cards, rows, seq = studio.cards().count(), studio.rows().count(), studio.seq()

    studio.reload()
    page.wait_for_function("(s) => document.querySelector('#session-id textarea, #session-id input').value === s",
                           arg=sid)
    assert studio.value("annotator") == ANNOTATOR
    expect(page.locator(f'#timeline .timeline-root[data-session="{sid}"]')).to_have_attribute("data-seq", str(seq))
    assert studio.cards().count() == cards and studio.rows().count() == rows
    expect(page.locator("#timeline .annotation.label-D2")).to_contain_text(f"by {ANNOTATOR}")
    expect(page.locator("#timeline .session-finished")).to_be_visible()
    assert "done:" in studio.status() and sid in studio.status()
    # The new-session panel stays folded when a session comes back.
    expect(page.locator("#new-session > [data-testid=accordion-content]")).to_be_hidden()
    shot(page)

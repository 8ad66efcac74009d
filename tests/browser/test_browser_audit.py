"""What a person auditing a session must be able to trust (issue 8): a decision acts on the attempt the loop is
on and says so first, every decision stays visible with who made it and when, the regen frame shown is the
one chosen, typed text stays text, a suggestion is added to a prompt once, and the status badge never says
a session runs while nothing runs."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from test_browser_decisions import ANNOTATOR, start_rejected


WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def held_after_verification(studio, **options) -> str:
    sid = studio.new_sim_session(family="maze", seed=0, breakpoints=["after_verify"], **options)
    status = studio.run()
    assert "breakpoint: after verification" in status, status
    return sid


def test_the_decision_panel_follows_the_attempt_the_loop_holds_on(studio, page, shot):
    held_after_verification(studio, m=3)
    studio.set_annotator(ANNOTATOR)
    assert studio.value("decision-attempt") == "step:1/attempt:1"
    studio.fill("override-reason", "the disc stopped short")
    studio.fill("override-suggestion", "slide all the way to the marked cell")
    studio.click("btn-override-reject")
    studio.message("decision-message", r"step:1/attempt:1 overridden to reject")

    status = studio.run()  # evolve, generate attempt 2, verify: held again, now on attempt 2
    assert re.search(r"breakpoint: after verification \(holds: \w+ step 1 attempt 2", status), status
    # The panel follows the loop to attempt 2 and says so before anything is pressed.
    page.wait_for_function("() => document.querySelector('#decision-attempt input').value === 'step:1/attempt:2'")
    expect(page.locator("#decision-focus .focus-target")).to_have_text("step 1, attempt 2")
    expect(page.locator("#decision-focus")).to_contain_text("The loop is on this attempt.")
    expect(page.locator("#btn-override-reject")).to_have_text("reject step 1 · attempt 2")
    expect(page.locator("#btn-override-accept")).to_have_text("accept step 1 · attempt 2")
    shot(page, "before-deciding")
    # A person may pick another attempt: the line and the buttons follow the pick, and say it is not the
    # attempt the loop is on.
    studio.choose("decision-attempt", "step:1/attempt:1")
    expect(page.locator("#decision-focus")).to_contain_text("The loop is on step 1, attempt 2, not this one.")
    expect(page.locator("#btn-override-reject")).to_have_text("reject step 1 · attempt 1")
    studio.choose("decision-attempt", "step:1/attempt:2")
    expect(page.locator("#btn-override-reject")).to_have_text("reject step 1 · attempt 2")

    studio.fill("override-reason", "the disc drifted off the path")
    studio.click("btn-override-reject")
    studio.message("decision-message", r"step:1/attempt:2 overridden to reject")
    expect(studio.row(1, 2).locator(".human-decision")).to_have_count(1)
    expect(studio.row(1, 2).locator(".human-decision")).to_contain_text("the disc drifted off the path")
    expect(studio.row(1, 1).locator(".human-decision")).to_have_count(1)  # attempt 1 untouched
    assert re.search(r"next: evolve step 1 attempt 2", studio.status()), studio.status()
    # Once recorded, a decision's text is not sent again with the next one.
    assert studio.value("override-reason") == "" and studio.value("override-suggestion") == ""
    shot(page)


def test_a_second_override_of_an_attempt_keeps_the_first_in_view(studio, page, shot):
    held_after_verification(studio)
    studio.set_annotator(ANNOTATOR)
    studio.fill("override-reason", "first look: the disc clipped a wall")
    studio.click("btn-override-reject")
    studio.message("decision-message", r"step:1/attempt:1 overridden to reject")
    studio.fill("override-reason", "second look: it did not, the verifier was right")
    studio.click("btn-override-accept")
    studio.message("decision-message", r"step:1/attempt:1 overridden to accept")

    decisions = studio.row(1, 1).locator(".human-decision")
    expect(decisions).to_have_count(2)
    expect(decisions.nth(0)).to_contain_text(f"overridden to reject by {ANNOTATOR}")
    expect(decisions.nth(0)).to_contain_text("first look")
    expect(decisions.nth(1)).to_contain_text(f"overridden to accept by {ANNOTATOR}")
    expect(decisions.nth(1)).to_contain_text("second look")
    expect(studio.row(1, 1).locator(".verdict-badge")).to_have_class(re.compile(r"\baccept\b"))
    shot(page)


def test_routes_a_person_requested_say_who_asked_and_when(studio, page, shot):
    start_rejected(studio, page)
    studio.set_annotator(ANNOTATOR)
    studio.open_accordion("route-panel")
    studio.click("btn-regen")
    studio.message("decision-message", r"step 1 will regenerate from frame")
    studio.click("btn-fallback")
    studio.message("decision-message", r"step 1 falls back")
    studio.fill("split-steps", "2")
    studio.click("btn-split")
    studio.message("decision-message", r"step 1 will be re-planned as 2 sub-steps")

    routes = page.locator('#timeline .step-card[data-step="1"] .route.by-human')
    expect(routes).to_have_count(3)
    for index, (action, state) in enumerate((("regen", "superseded"), ("fallback", "superseded"),
                                             ("split into 2 sub-steps", "done"))):
        line = routes.nth(index)
        expect(line).to_contain_text(action)
        expect(line).to_contain_text(re.compile(rf"requested by {ANNOTATOR} at {WHEN} \({state}\)"))
        expect(line).not_to_contain_text("by a person")
    shot(page)


def test_the_regen_preview_shows_the_frame_chosen_however_it_is_chosen(studio, page, shot):
    start_rejected(studio, page)
    studio.set_annotator(ANNOTATOR)
    studio.open_accordion("route-panel")
    slider = page.locator("#regen-frame input[type=range]")
    preview = page.locator("#regen-preview img")
    expect(preview).to_be_visible()
    start = int(slider.input_value())

    def shows(frame: int) -> None:
        """The preview is that frame (its cached PNG is named after the frame index)."""
        page.wait_for_function(
            "(n) => { const img = document.querySelector('#regen-preview img');"
            " return !!img && img.getAttribute('src').includes(`_${n}_full.png`); }", arg=frame)

    def says(frame: int) -> None:
        """The preview's label and the Regen button name that frame too."""
        expect(page.locator("#regen-preview")).to_contain_text(f"frame {frame} of step:1/attempt:")
        expect(page.locator("#btn-regen")).to_have_text(f"Regen from frame {frame}")

    shows(start)
    slider.focus()  # the arrow keys move the slider, and the preview follows
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert slider.input_value() == str(start + 2)
    shows(start + 2)
    says(start + 2)
    studio.fill("regen-frame", "3")  # the slider's own number box, too
    shows(3)
    says(3)
    shot(page, "frame-3")

    studio.click("btn-regen")
    studio.message("decision-message", r"step 1 will regenerate from frame 3 of attempt \d")
    expect(page.locator('#timeline .step-card[data-step="1"] .route.by-human')).to_contain_text("from frame 3")
    shot(page)


def test_typed_text_is_shown_as_text_in_messages(studio, page, shot):
    hostile = "<img src=x onerror=window.__pwned=1>"
    studio.new_sim_session(family="maze", seed=0, n_max=1, m=1)
    assert "done:" in studio.run()
    studio.set_annotator(hostile)
    studio.fill("note", f"<b>bold?</b> {hostile}")
    studio.click("btn-note")
    said = studio.message("annotation-message", r"note = .* recorded")
    assert hostile in said and "<b>bold?</b>" in said, said
    page.locator("#timeline .session-info").click()
    page.keyboard.press("a")
    said = studio.message("annotation-message", r"D2 = accept recorded")
    assert said.endswith(f"by {hostile}"), said
    for panel in ("annotation-message", "decision-message", "control-message"):
        expect(page.locator(f"#{panel} img, #{panel} b")).to_have_count(0)
    expect(page.locator("#timeline .annotation img, #timeline .annotation b b")).to_have_count(0)
    expect(page.locator("#timeline .annotation.label-note")).to_contain_text(hostile)
    assert page.evaluate("() => window.__pwned") is None
    shot(page)


def test_an_evolved_prompt_holds_a_suggestion_once(studio, page, shot):
    suggestion = "Keep the disc in the middle of the corridor."
    start_rejected(studio, page)
    studio.set_annotator(ANNOTATOR)
    rejected = int(studio.value("decision-attempt").rsplit(":", 1)[1])
    studio.fill("override-reason", "it grazed the wall")
    studio.fill("override-suggestion", suggestion)
    studio.click("btn-override-reject")
    studio.message("decision-message", r"overridden to reject")
    status = studio.step()  # evolve with the person's suggestion
    assert "next: generate" in status, status

    # The same suggestion again, with a regen: the prompt must not hold it twice.
    studio.fill("override-suggestion", suggestion)
    studio.open_accordion("route-panel")
    studio.click("btn-regen")
    studio.message("decision-message", r"will regenerate from frame")
    studio.step()  # evolve for the regen
    studio.step()  # generate the regen
    row = studio.row(1, rejected + 1)
    expect(row).to_have_class(re.compile(r"purpose-regen"))
    prompt = studio.new_text(row.locator(".prompt-diff .text"))
    assert prompt.count(suggestion) == 1, prompt
    assert len(re.findall(r"Correction:", prompt)) <= 1 + prompt.count(suggestion), prompt
    shot(page)


def test_the_status_badge_never_says_running_while_nothing_runs(studio, page, shot):
    studio.new_sim_session(family="maze", seed=1, n_max=2, m=2, latency=0.6)

    studio.step()
    assert "running" not in studio.status().lower(), studio.status()
    assert studio.badge() == "idle", studio.status()
    studio.message("control-message", r"Step ended: ran plan step 1")
    shot(page, "after-step")

    studio.set_annotator(ANNOTATOR)
    studio.check("breakpoints", ["after_verify"])
    studio.message("control-message", r"breakpoints: after verification")
    studio.click("btn-run")
    studio.wait_status(r"^working")
    assert re.search(r"in flight \(run\): \w+", studio.status()), studio.status()
    status = studio.wait_status(r"waiting: breakpoint: after verification")
    assert studio.badge() == "held" and "running" not in status.lower(), status
    studio.message("control-message", r"Run ended: held: breakpoint: after verification")
    shot(page, "at-breakpoint")

    studio.check("breakpoints", ["after_verify"], on=False)
    studio.message("control-message", r"breakpoints: none")
    studio.click("btn-run")
    studio.wait_status(r"^working")
    studio.click("btn-stop")
    studio.wait_idle()
    status = studio.status()
    assert studio.badge() in ("idle", "finished") and "running" not in status.lower(), status
    said = studio.message("control-message", r"Run ended: (stopped by a person|finished)")
    assert "running until the end" not in said
    if studio.badge() == "idle":
        assert "stopped by a person" in status, status
    shot(page)

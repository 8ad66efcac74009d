"""People's decisions from the page: breakpoints, verdict overrides, an edited action, routes."""

from __future__ import annotations

import re

from playwright.sync_api import expect


ANNOTATOR = "Ada Lovelace"
# Seeds tried in order when a test needs step 1 rejected; the simulated "hard" VGM makes rejects likely.
REJECT_SEEDS = (3, 4, 5, 0, 6, 7, 8, 9)


def start_rejected(studio, page, *, breakpoints=("on_reject",), family="maze", **options) -> str:
    """A session held by the on-reject breakpoint: try seeds until the page shows a reject badge and
    'breakpoint: on reject' (bounded)."""
    tried = []
    for seed in REJECT_SEEDS:
        sid = studio.new_sim_session(family=family, seed=seed, vgm="Simulated VGM (hard profile)",
                                     breakpoints=list(breakpoints), **options)
        status = studio.run()
        if "breakpoint: on reject" in status:
            expect(page.locator("#timeline .verdict-badge.reject").first).to_be_visible()
            return sid
        tried.append((seed, status))
    raise AssertionError(f"no seed of {REJECT_SEEDS} was rejected: {tried}")


def clear_breakpoints(studio) -> None:
    studio.check("breakpoints", ["before_generate", "after_verify", "on_reject", "on_route"], on=False)
    studio.message("control-message", r"breakpoints: none")


def test_breakpoint_on_reject_holds_the_loop(studio, page, shot):
    sid = start_rejected(studio, page)
    status = studio.status()
    assert re.search(r"waiting: breakpoint: on reject \(holds: (evolve|route)", status), status
    row = studio.rows(1).last
    expect(row.locator(".verdict-badge.reject")).to_have_text("reject")
    expect(row.locator(".vlm-verdict.reject")).to_contain_text("VLM: reject")
    expect(row.locator(".frames img.failing")).to_have_count(1)
    # The decision panel points at the rejected attempt, and the breakpoint shows as ticked.
    assert studio.value("decision-attempt") == f"step:1/attempt:{row.get_attribute('data-attempt')}"
    expect(page.locator('#breakpoints input[name="on_reject"]')).to_be_checked()
    # It stays held: the timeline does not grow while nobody decides.
    seq = studio.seq()
    page.wait_for_timeout(1500)
    assert studio.seq() == seq and "breakpoint: on reject" in studio.status()
    assert sid in studio.status()
    shot(page)


def test_override_reject_to_accept_and_the_loop_follows(studio, page, shot):
    start_rejected(studio, page)
    studio.set_annotator(ANNOTATOR)
    target = studio.value("decision-attempt")
    step, attempt = map(int, re.findall(r"\d+", target))
    studio.fill("override-reason", "the disc reached the cell; the verifier is wrong")
    studio.click("btn-override-accept")
    studio.message("decision-message", rf"{re.escape(target)} overridden to accept")
    row = studio.row(step, attempt)
    expect(row.locator(".verdict-badge")).to_have_class(re.compile(r"\baccept\b"))
    expect(row.locator(".human-decision")).to_contain_text(f"overridden to accept by {ANNOTATOR}")
    expect(row.locator(".human-decision")).to_contain_text("the verifier is wrong")
    expect(row.locator(".vlm-verdict.reject")).to_be_visible()  # the VLM's own verdict stays visible
    assert f"next: accept step {step} attempt {attempt}" in studio.status(), studio.status()

    studio.step()  # the loop follows the person: it accepts the overridden attempt
    card = page.locator(f'#timeline .step-card[data-step="{step}"]')
    expect(card.locator(".step-status")).to_contain_text(f"accepted (attempt {attempt}, accepted by {ANNOTATOR} at ")
    assert re.search(rf"next: (plan step {step + 1}|finish)", studio.status()), studio.status()
    shot(page)


def test_override_accept_to_reject_evolves_a_new_attempt(studio, page, shot):
    sid = studio.new_sim_session(family="maze", seed=0, breakpoints=["after_verify"])
    status = studio.run()
    assert "breakpoint: after verification" in status, status
    row = studio.row(1, 1)
    expect(row.locator(".verdict-badge.accept")).to_be_visible()
    studio.set_annotator(ANNOTATOR)
    studio.fill("override-reason", "the disc clipped a wall corner")
    studio.fill("override-suggestion", "keep the disc centred in the corridor")
    studio.click("btn-override-reject")
    studio.message("decision-message", r"step:1/attempt:1 overridden to reject")
    expect(row.locator(".verdict-badge.reject")).to_be_visible()
    expect(row.locator(".human-decision")).to_contain_text(f"overridden to reject by {ANNOTATOR}")

    status = studio.step()  # evolve: the prompt is rewritten with the suggestion
    assert "next: generate step 1 attempt 2" in status, status
    pending = page.locator('#timeline .step-card[data-step="1"] > .prompt-diff.changed')
    expect(pending).to_be_visible()
    expect(pending.locator("ins").first).to_be_visible()

    studio.step()  # generate attempt 2 with the evolved prompt
    new_row = studio.row(1, 2)
    expect(new_row).to_be_visible()
    expect(new_row.locator(".prompt-diff.changed")).to_be_visible()
    assert studio.rows(1).count() == 2
    assert sid in studio.status()
    shot(page)


def test_edit_the_next_action_before_generation(studio, page, shot):
    studio.new_sim_session(family="maze", seed=2, breakpoints=["before_generate"])
    studio.step()  # plan
    status = studio.status()
    assert "waiting: breakpoint: before generation (holds: generate step 1 attempt 1)" in status, status
    studio.set_annotator(ANNOTATOR)
    edited = "Slide the red disc one cell to the right, then stop."
    studio.fill("next-action", edited)
    studio.click("btn-save-action")
    studio.message("decision-message", r"the next generation of step 1 will use the edited action")
    edit = page.locator('#timeline .step-card[data-step="1"] .human-decision.edit')
    expect(edit).to_contain_text(f"action edited by {ANNOTATOR}")
    expect(edit.locator(".prompt-diff.changed ins").first).to_be_visible()
    assert studio.new_text(edit.locator(".prompt-diff .text")) == edited

    studio.step()  # the held generation runs: a person asked for it
    prompt = studio.row(1, 1).locator(".prompt-diff .text")
    expect(prompt).to_be_visible()
    assert studio.new_text(prompt) == edited
    shot(page)


def test_regen_from_a_chosen_frame(studio, page, shot):
    start_rejected(studio, page)
    studio.set_annotator(ANNOTATOR)
    target = studio.value("decision-attempt")
    _, attempt = map(int, re.findall(r"\d+", target))
    studio.open_accordion("route-panel")
    slider = page.locator("#regen-frame input[type=range]")
    expect(slider).to_have_attribute("max", "16")  # 2 s at 8 fps: frames 0..16
    studio.fill("regen-frame", "5")
    slider.dispatch_event("pointerup")
    expect(page.locator("#regen-preview img")).to_be_visible()
    studio.click("btn-regen")
    studio.message("decision-message", rf"step 1 will regenerate from frame 5 of attempt {attempt}")
    route = page.locator('#timeline .step-card[data-step="1"] .route.by-human')
    expect(route).to_contain_text(f"regen of attempt {attempt} from frame 5")
    expect(route).to_contain_text(f"requested by {ANNOTATOR} at ")
    expect(route).to_contain_text("(pending)")

    status = studio.step()
    assert "verify step 1" in status, status
    row = studio.row(1, attempt + 1)
    expect(row.locator(".attempt-title")).to_contain_text(f"regen, from frame 5 of attempt {attempt}")
    expect(row).to_have_class(re.compile(r"purpose-regen"))
    shot(page)


def test_split_into_sub_steps(studio, page, shot):
    start_rejected(studio, page, n_max=2)
    studio.set_annotator(ANNOTATOR)
    studio.open_accordion("route-panel")
    studio.fill("split-steps", "2")
    studio.click("btn-split")
    studio.message("decision-message", r"step 1 will be re-planned as 2 sub-steps")
    expect(page.locator('#timeline .step-card[data-step="1"] .step-status')).to_have_text("split")
    clear_breakpoints(studio)
    status = studio.run()
    assert "done:" in status, status
    subs = page.locator("#timeline .step-card").filter(has_text=re.compile(r"sub-step \d/2 of step 1"))
    expect(subs.first).to_be_visible()
    assert subs.count() >= 1
    expect(page.locator("#timeline .session-finished")).to_be_visible()
    shot(page)


def test_fallback_finishes_the_session(studio, page, shot):
    start_rejected(studio, page)
    studio.set_annotator(ANNOTATOR)
    studio.open_accordion("route-panel")
    studio.click("btn-fallback")
    studio.message("decision-message", r"step 1 falls back to generating the whole remaining task")
    clear_breakpoints(studio)
    status = studio.run()
    assert "done:" in status, status
    fallback = page.locator("#timeline .attempt-row.purpose-fallback")
    expect(fallback).to_have_count(1)
    expect(fallback.locator(".verdict-badge")).to_have_count(1)
    finished = page.locator("#timeline .session-finished")
    expect(finished).to_be_visible()
    expect(finished).to_contain_text("fallback generated the whole remaining task")
    shot(page)

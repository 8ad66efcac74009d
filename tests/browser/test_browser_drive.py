"""Starting a simulated session and driving it from the page: Step, Run, the timeline, the final video."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_start_and_step_a_simulated_session(studio, page, shot):
    # The preview follows the family, difficulty and seed a person picks.
    def preview_changes(action) -> str:
        before = (studio.value("task-prompt"), page.locator("#task-preview img").get_attribute("src"))
        action()
        page.wait_for_function(
            "([p, src]) => document.querySelector('#task-prompt textarea').value !== p"
            " || document.querySelector('#task-preview img').getAttribute('src') !== src", arg=list(before))
        return studio.value("task-prompt")

    shapes = preview_changes(lambda: studio.choose("family", "shapes"))
    maze = preview_changes(lambda: studio.choose("family", "maze"))
    assert shapes != maze, (shapes, maze)
    preview_changes(lambda: studio.radio("difficulty", "hard"))
    preview_changes(lambda: studio.radio("difficulty", "easy"))
    preview_changes(lambda: studio.fill("seed", "2"))
    prompt = studio.value("task-prompt")
    assert "maze" in prompt.lower(), prompt
    expect(page.locator('#difficulty input[value="easy"]')).to_be_checked()
    expect(page.locator("#task-preview img")).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=page.locator("#task-preview img").element_handle())
    shot(page, "preview")

    sid = studio.new_sim_session(family="maze", seed=2, n_max=2, m=2)
    assert re.fullmatch(r"[\w-]+", sid), sid
    root = page.locator("#timeline .timeline-root")
    expect(root).to_have_attribute("data-session", sid)
    expect(page.locator("#timeline .simulated-label")).to_be_visible()
    expect(page.locator("#timeline .task-prompt")).to_contain_text(prompt)
    assert "next: plan step 1" in studio.status()
    assert studio.cards().count() == 0

    status = studio.step()  # plan
    assert "next: generate step 1 attempt 1" in status, status
    card = page.locator('#timeline .step-card[data-step="1"]')
    expect(card).to_be_visible()
    instruction = card.locator(".instruction").text_content().strip()
    assert instruction.startswith("Instruction") and len(instruction) > len("Instruction ") + 5, instruction
    instruction = instruction.removeprefix("Instruction").strip()
    # The instruction is also what the next clip will use, and it is editable in the sidebar.
    assert studio.value("next-action") == instruction

    status = studio.step()  # generate
    assert "next: verify step 1 attempt 1" in status, status
    clip = studio.row(1, 1).locator("video.clip")
    expect(clip).to_have_count(1)
    clip.scroll_into_view_if_needed()
    page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=clip.element_handle(), timeout=20_000)
    expect(studio.row(1, 1).locator(".verdict-pending")).to_have_text("not verified yet")

    status = studio.step()  # verify
    badge = studio.row(1, 1).locator(".verdict-badge")
    expect(badge).to_have_count(1)
    assert badge.text_content().strip() in ("accept", "reject")
    assert studio.row(1, 1).locator(".frames img").count() >= 2
    assert re.search(r"next: (accept|evolve)", status), status
    shot(page)
    assert not page.errors, page.errors


def test_run_to_the_end_shows_finished_and_the_final_video(studio, page, shot):
    sid = studio.new_sim_session(family="maze", seed=0, n_max=2, m=2)
    status = studio.run()
    assert "done:" in status and "finished" in status, status
    finished = page.locator("#timeline .session-finished")
    expect(finished).to_be_visible()
    expect(finished).to_contain_text("Finished")
    cards = studio.cards()
    assert cards.count() >= 1
    for i in range(cards.count()):
        card = cards.nth(i)
        if "planner: task complete" in card.locator(".step-status").inner_text():
            continue
        assert card.locator(".attempt-row").count() >= 1
        for j in range(card.locator(".attempt-row").count()):
            expect(card.locator(".attempt-row").nth(j).locator(".verdict-badge")).to_have_count(1)
    # The step cards carry a verdict badge each; accepted steps say so.
    assert page.locator("#timeline .verdict-badge.accept").count() >= 1
    shot(page, "timeline")

    # The final video is on the Session tab, above the timeline, where the finished run is looked at.
    video = page.locator("#final-video video")
    expect(video).to_have_count(1)
    page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle())
    box, timeline = page.locator("#final-video").bounding_box(), page.locator("#timeline").bounding_box()
    assert box["y"] < timeline["y"], (box, timeline)
    assert sid in studio.value("session-id")
    page.locator("#final-video").scroll_into_view_if_needed()
    shot(page)

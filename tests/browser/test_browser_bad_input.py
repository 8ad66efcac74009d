"""Bad input in the page gets a clear message, and the page keeps working afterwards."""

from __future__ import annotations

from PIL import Image
from playwright.sync_api import expect


def test_bad_uploads_and_prompts_get_clear_messages(studio, page, shot, tmp_path):
    studio.radio("task-source", "Upload an image")
    expect(page.locator("#upload-prompt")).to_be_visible()
    expect(page.locator("#family")).to_be_hidden()

    # Nothing chosen at all.
    studio.click("start-session")
    studio.message("new-session-message", r"⚠ choose an image file to upload")

    # A text file passed off as an image.
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture\n" * 20)
    page.locator("#upload-image input[type=file]").set_input_files(str(fake))
    expect(page.locator("#upload-image")).to_contain_text("notes")
    studio.fill("upload-prompt", "Move the cup to the left.")
    studio.click("start-session")
    studio.message("new-session-message", r"⚠ notes\.png is not an image this app can read \(PNG or JPEG\)")
    shot(page, "not-an-image")

    # A real but tiny picture.
    page.locator("#upload-image button[aria-label='Clear']").first.click()
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8), "red").save(tiny)
    page.locator("#upload-image input[type=file]").set_input_files(str(tiny))
    expect(page.locator("#upload-image")).to_contain_text("tiny")
    studio.click("start-session")
    studio.message("new-session-message", r"⚠ the image is 8x8; each side must be at least 16 px")

    # A good picture with an empty (blank) prompt.
    page.locator("#upload-image button[aria-label='Clear']").first.click()
    good = tmp_path / "room.png"
    Image.new("RGB", (64, 48), (40, 120, 200)).save(good)
    page.locator("#upload-image input[type=file]").set_input_files(str(good))
    expect(page.locator("#upload-image")).to_contain_text("room")
    studio.fill("upload-prompt", "   ")
    studio.click("start-session")
    studio.message("new-session-message", r"⚠ the task prompt is empty")

    # A very long prompt: the box states its limit and cuts nothing; the server refuses it with the limit named.
    expect(page.locator("#upload-prompt")).to_contain_text("at most 4,000 characters")
    studio.field("upload-prompt").fill("slide the cup left " * 400)
    assert len(studio.value("upload-prompt")) == 7600
    studio.click("start-session")
    studio.message("new-session-message", r"⚠ the task prompt has 7599 characters; at most 4000 are allowed")
    # Within the limit, the simulated backends say why they cannot take an uploaded image.
    studio.field("upload-prompt").fill("slide the cup left " * 200)
    studio.click("start-session")
    studio.message("new-session-message", r"⚠ .*only understands the simulated world's own tasks")
    assert studio.value("session-id") == ""  # nothing was started
    expect(page.locator("#timeline .timeline-root.empty")).to_be_visible()
    shot(page)

    # Nothing broke: back to a simulated task, a session starts and steps.
    studio.radio("task-source", "Simulated task")
    expect(page.locator("#family")).to_be_visible()
    sid = studio.new_sim_session(family="blocks", seed=1, n_max=1, m=1)
    assert "next: generate step 1 attempt 1" in studio.step()
    assert sid in studio.status()
    assert not page.errors, page.errors


def test_decisions_without_a_session_or_name_are_refused_clearly(studio, page, shot):
    studio.click("btn-step")
    studio.message("control-message", r"⚠ no session is open")
    studio.new_sim_session(family="maze", seed=0, breakpoints=["after_verify"])
    assert "breakpoint: after verification" in studio.run()
    assert studio.value("decision-attempt") == "step:1/attempt:1"
    studio.click("btn-override-reject")  # no annotator name yet
    studio.message("decision-message", r"⚠ enter your name in the Annotator box first")

    # Over-long texts are refused with their limit named, not cut, and nothing is recorded.
    studio.fill("annotator", "x" * 200)
    assert len(studio.value("annotator")) == 200
    studio.click("btn-override-reject")
    studio.message("decision-message", r"⚠ the name has 200 characters; at most 80 are allowed")
    studio.fill("annotator", "ana")
    expect(page.locator("#override-reason")).to_contain_text("at most 4,000 characters")
    studio.fill("override-reason", "r" * 5000)
    studio.click("btn-override-reject")
    studio.message("decision-message", r"⚠ the reason has 5000 characters; at most 4000 are allowed")
    assert studio.value("override-reason") == "r" * 5000  # kept for the person to shorten
    expect(page.locator("#timeline .human-decision")).to_have_count(0)

    studio.click("btn-run")  # goes on to the next breakpoint; nothing broke
    studio.wait_idle()
    shot(page)
    assert not page.errors, page.errors

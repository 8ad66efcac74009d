"""An uploaded image and prompt run on real backends in the app: a tiny random-weight Wan 2.2 (the real
diffusers pipeline, loaded from a folder) and Gemini through the real SDK, pointed at a loopback server that
answers the REST protocol. Both are registered the way a person registers their own checkpoints
($COLLABVR_BACKENDS); the app runs in its own process, as `python app.py`."""

from __future__ import annotations

import json

from PIL import Image
from playwright.sync_api import expect

import tiny_models
from conftest import Studio
from fake_google import FakeGoogleAPI, answer

KEY = "AIzaBROWSER-test-key-1"
PLAN = {"observation": "a grey square on white", "remaining_goal": "the square must turn red", "task_complete": False,
        "instruction": "the grey square slowly turns red", "target_state": "a red square", "estimated_steps_remaining": 0}
ACCEPT = {"verdict": "accept", "action_executed": True, "progress": "complete", "confidence": 0.85,
          "reason": "the square turned red", "suggestion": "", "good_fraction": None, "error_type": None}


def test_an_uploaded_image_runs_plan_generate_and_verify_on_registered_real_backends(app_factory, page, shot,
                                                                                     tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    wan = tiny_models.save_pipeline("wan2.2-ti2v-5b", folder / "tiny-wan")
    fake = FakeGoogleAPI()
    fake.generate += [answer(PLAN), answer(ACCEPT)]
    backends = folder / "backends.json"
    backends.write_text(json.dumps([
        {"role": "vgm", "key": "tiny-wan", "label": "Tiny Wan 2.2 (random weights)",
         "spec": {"kind": "diffusers", "model": "wan2.2-ti2v-5b", "path": str(wan), "device": "cpu", "steps": 2,
                  "size": [32, 32]}},
        {"role": "vlm", "key": "gemini-loopback", "label": "Gemini (loopback server)",
         "spec": {"kind": "gemini", "model": "gemini-2.5-pro", "base_url": fake.url, "jitter_s": 0}}]))
    server = app_factory("real", env={"COLLABVR_BACKENDS": str(backends), "GEMINI_API_KEY": KEY})
    try:
        studio = Studio(page, server.url)
        studio.open()
        studio.open_accordion("new-session")
        studio.radio("task-source", "Upload an image")
        picture = folder / "square.png"
        image = Image.new("RGB", (64, 48), "white")
        image.paste((128, 128, 128), (20, 12, 44, 36))
        image.save(picture)
        page.locator("#upload-image input[type=file]").set_input_files(str(picture))
        expect(page.locator("#upload-image")).to_contain_text("square")
        studio.fill("upload-prompt", "Turn the grey square red.")
        studio.choose("vlm-choice", "Gemini (loopback server)")
        studio.choose("vgm-choice", "Tiny Wan 2.2 (random weights)")
        for elem_id, number in (("n-max", 1), ("m", 1), ("first-seconds", 0.5)):
            studio.fill(elem_id, str(number))
        studio.click("start-session")
        studio.message("new-session-message", r"session \w+ started")
        sid = studio.sid
        page.wait_for_selector(f'#timeline .timeline-root[data-session="{sid}"]')

        studio.step(timeout=60_000)  # plan: Gemini (the loopback server) answers
        expect(page.locator("#timeline .step-card .instruction")).to_contain_text("the grey square slowly turns red")
        studio.step(timeout=120_000)  # generate: the tiny Wan loads from its folder and renders the clip
        expect(page.locator("#timeline .attempt-row video.clip")).to_have_count(1)
        studio.step(timeout=60_000)  # verify: Gemini gets the mp4
        expect(page.locator("#timeline .attempt-row .verdict-badge")).to_have_text("accept")
        shot(page)

        calls = fake.generate_calls()
        assert len(calls) == 2 and calls[0].headers["x-goog-api-key"] == KEY
        videos = [p for c in calls[1].json()["contents"] for p in c["parts"]
                  if p.get("inlineData", {}).get("mime_type") == "video/mp4"]
        assert len(videos) == 1  # the verifier saw the generated clip itself
        assert KEY not in page.content()
        assert not page.errors, page.errors
    finally:
        fake.close()

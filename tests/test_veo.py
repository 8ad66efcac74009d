"""Veo as the VGM: submission (the REST body the Gemini API takes), polling and download through the real
google-genai SDK against a loopback server; clip-length rules; Stop while polling; failures with reasons."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
import pytest

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends import BackendCancelled, BackendError, GenerateRequest, veo
from collabvr.registry import BackendUnavailable
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import MemoryEventStore

from fake_google import FakeGoogleAPI, error
from scripted import ScriptedVLM, accept, plan

KEY = "AIzaVEO-test-key-987"
IMAGE = np.full((36, 64, 3), 120, np.uint8)


@pytest.fixture
def fake():
    server = FakeGoogleAPI()
    yield server
    server.close()


@pytest.fixture
def video(tmp_path) -> bytes:
    frames = np.stack([np.full((36, 64, 3), 8 * i, np.uint8) for i in range(24)])
    return media.write_mp4(frames, 24.0, tmp_path / "veo.mp4").read_bytes()


def spec(fake, **extra) -> dict:
    return {"kind": "veo", "base_url": fake.url, "poll_s": 0.01, "initial_delay_s": 0.01, **extra}


@pytest.fixture
def vgm(fake, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    return veo.build(spec(fake))


def test_submission_polling_and_download(fake, vgm, video):
    fake.veo_done(video)
    progress: list[tuple[int, int]] = []
    clip = vgm.generate(GenerateRequest(image=IMAGE, prompt="the cup slides left", seconds=3.0, seed=7,
                                        progress=lambda d, t: progress.append((d, t))))
    assert clip.frames.shape == (24, 36, 64, 3) and clip.frames.dtype == np.uint8 and clip.fps == 24.0
    assert clip.info["seconds_requested_from_veo"] == 4 and clip.info["aspect_ratio"] == "16:9"
    submit = next(r for r in fake.requests if r.path.endswith(":predictLongRunning"))
    assert submit.path == "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"
    assert submit.headers["x-goog-api-key"] == KEY
    body = submit.json()
    assert body["instances"][0]["prompt"] == "the cup slides left"
    png = base64.b64decode(body["instances"][0]["image"]["bytesBase64Encoded"])
    assert np.array_equal(media.load_image(png), IMAGE)
    assert body["parameters"] == {"sampleCount": 1, "durationSeconds": 4, "aspectRatio": "16:9", "resolution": "720p"}
    polls = [p for p in fake.paths("GET") if "/operations/" in p]
    assert polls == ["/v1beta/models/veo-3.1-fast-generate-preview/operations/op1"] * 2  # the name submit returned
    assert any(p.endswith(":download?alt=media") for p in fake.paths("GET"))
    assert progress[-1][0] == progress[-1][1]


def test_veo_in_an_engine_run_records_its_clip_and_the_nominal_cost(fake, vgm, video, tmp_path):
    fake.veo_done(video)
    vlm = ScriptedVLM(plans=[plan("slide the cup left")], verdicts=[accept()])
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(tmp_path / "a"), vlm, vgm,
                          task=TaskSpec(prompt="Slide the cup left.", source="upload"), input_image=IMAGE,
                          config=LoopConfig(n_max=1, m=1, first_step_seconds=6.0),
                          vgm_label=registry.label(vgm, spec(fake)))
    state = engine.run()
    assert state.finished is not None
    generated = next(e for e in engine.store.read(engine.session_id) if e.type == "ClipGenerated")
    assert (generated.n_frames, generated.fps, generated.seconds) == (24, 24.0, 6.0)
    assert fake.requests[0].json()["parameters"]["durationSeconds"] == 6


def test_clip_lengths_follow_veo_31s_rules():
    assert [veo.clip_seconds(s) for s in (1, 3, 4, 5, 6.5, 8, 12)] == [4, 4, 4, 6, 8, 8, 8]
    assert veo.clip_seconds(3, "1080p") == 8
    assert veo.aspect_ratio((720, 1280)) == "16:9" and veo.aspect_ratio((1280, 720)) == "9:16"


def test_a_rate_limited_submission_is_tried_again(fake, vgm, video):
    fake.submit.append(error(429, "slow down"))
    fake.veo_done(video)
    assert len(vgm.generate(GenerateRequest(image=IMAGE, prompt="p", seconds=4, seed=1)).frames) == 24
    assert sum(p.endswith(":predictLongRunning") for p in fake.paths("POST")) == 2


def test_a_refused_submission_says_why_and_hides_the_key(fake, vgm):
    fake.submit.append(error(400, f"image too small for {KEY}"))
    with pytest.raises(BackendError) as raised:
        vgm.generate(GenerateRequest(image=IMAGE, prompt="p", seconds=4, seed=1))
    assert "image too small" in str(raised.value) and KEY not in str(raised.value) and not raised.value.retryable


def test_stop_while_polling_ends_the_wait_at_once(fake, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    vgm = veo.build(spec(fake, poll_s=5.0))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.perf_counter()
    with pytest.raises(BackendCancelled, match="may still finish remotely"):
        vgm.generate(GenerateRequest(image=IMAGE, prompt="p", seconds=4, seed=1, cancel=cancel))
    assert time.perf_counter() - started < 2.0


def test_a_failed_or_filtered_operation_is_a_clear_failure(fake, vgm):
    fake.polls.append((200, {"name": "models/veo/operations/op1", "done": True,
                             "error": {"code": 3, "message": "the prompt could not be processed"}}))
    with pytest.raises(BackendError, match="the prompt could not be processed"):
        vgm.generate(GenerateRequest(image=IMAGE, prompt="p", seconds=4, seed=1))
    fake.polls.append((200, {"name": "models/veo/operations/op1", "done": True, "response": {
        "generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["people in the image"]}}}))
    with pytest.raises(BackendError, match="safety filter removed it: people in the image"):
        vgm.generate(GenerateRequest(image=IMAGE, prompt="p", seconds=4, seed=1))


def test_a_missing_key_is_reported_before_any_call(fake, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert "no API key" in registry.unavailable("vgm", spec(fake))
    with pytest.raises(BackendUnavailable, match="no API key"):
        registry.build_vgm(spec(fake))
    assert fake.requests == []

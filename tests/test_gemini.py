"""Gemini as the VLM: the real google-genai SDK against a loopback server that answers the REST protocol (no
network). Every role round-trips; the clip goes inline or through the Files API; rate limits and server
errors are retried; a malformed answer is repaired once and otherwise becomes a BackendFailed event; a
missing key is reported before any call; the key never shows up in events or messages."""

from __future__ import annotations

import base64
import json
import logging

import numpy as np
import pytest
from fake_google import FakeGoogleAPI, answer, error
from scripted import ScriptedVGM

from collabvr import media, registry
from collabvr.artifacts import ArtifactFolder
from collabvr.backends import (
    BackendError,
    ClipView,
    HistoryItem,
    JudgeRequest,
    PlanRequest,
    RouteRequest,
    SelectRequest,
    VerifyRequest,
    gemini,
)
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec, event_to_json
from collabvr.registry import BackendUnavailable
from collabvr.store import MemoryEventStore

KEY = "AIzaTEST-key-0123456789"
PLAN = {"observation": "a red cup on the left", "remaining_goal": "move the cup right", "task_complete": False,
        "instruction": "slide the red cup to the right edge", "target_state": "the cup at the right edge",
        "estimated_steps_remaining": 0}
ACCEPT = {"verdict": "accept", "action_executed": True, "progress": "complete", "confidence": 0.9,
          "reason": "the cup moved right", "suggestion": "", "good_fraction": None, "error_type": None}
FRAME = np.full((32, 48, 3), 90, np.uint8)


@pytest.fixture
def fake():
    server = FakeGoogleAPI()
    yield server
    server.close()


@pytest.fixture
def vlm(fake, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    return gemini.build(spec(fake))


def spec(fake: FakeGoogleAPI, **extra) -> dict:
    return {"kind": "gemini", "model": "gemini-2.5-pro", "base_url": fake.url, "initial_delay_s": 0.01,
            "max_delay_s": 0.02, "jitter_s": 0.0, **extra}


@pytest.fixture
def clip(tmp_path) -> ClipView:
    frames = np.stack([np.full((32, 48, 3), 10 * i, np.uint8) for i in range(17)])
    path = media.write_mp4(frames, 8.0, tmp_path / "clip.mp4")
    indices = media.sample_indices(17, 8.0)
    return ClipView(frames=[frames[i] for i in indices], indices=indices, n_frames=17, fps=8.0, path=path)


def plan_request(**extra) -> PlanRequest:
    return PlanRequest(task_prompt="Move the red cup to the right.", input_image=FRAME, current_frame=FRAME,
                       history=[HistoryItem(step=1, instruction="lift the cup", outcome="accepted")], step=2,
                       max_steps=3, seed=11, **extra)


def parts(recorded) -> list[dict]:
    return [p for content in recorded.json()["contents"] for p in content["parts"]]


def test_planner_round_trip_sends_images_schema_and_temperature(fake, vlm):
    fake.generate.append(answer(PLAN))
    reply = vlm.plan(plan_request())
    assert reply.value.instruction == PLAN["instruction"]
    assert (reply.usage.calls, reply.usage.input_tokens, reply.usage.output_tokens) == (1, 100, 25)  # thoughts count
    sent = fake.generate_calls()[0]
    assert sent.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    body = sent.json()
    config = body["generationConfig"]
    assert config["temperature"] == 0.2 and config["responseMimeType"] == "application/json" and config["seed"] == 11
    assert set(config["responseJsonSchema"]["properties"]) >= {"observation", "instruction", "task_complete"}
    assert "plan the NEXT action only" in body["systemInstruction"]["parts"][0]["text"]
    sent_parts = parts(sent)
    assert sum("inlineData" in p for p in sent_parts) == 2  # the input image and the current frame
    text = " ".join(p.get("text", "") for p in sent_parts)
    assert "step 2 of at most 3" in text and "Step 1: lift the cup -> accepted" in text


def test_verifier_gets_the_mp4_inline_with_instruction_target_and_both_frames(fake, vlm, clip):
    fake.generate.append(answer(ACCEPT))
    request = VerifyRequest(task_prompt="Move the cup.", input_image=FRAME, instruction="slide the cup right",
                            target_state="cup at the right edge", clip=clip, seed=3, current_frame=FRAME)
    assert vlm.verify(request).value.verdict == "accept"
    sent_parts = parts(fake.generate_calls()[0])
    videos = [p["inlineData"] for p in sent_parts if p.get("inlineData", {}).get("mime_type") == "video/mp4"]
    assert len(videos) == 1 and base64.urlsafe_b64decode(videos[0]["data"]) == clip.path.read_bytes()
    assert sum(p.get("inlineData", {}).get("mime_type") == "image/png" for p in sent_parts) == 2
    text = " ".join(p.get("text", "") for p in sent_parts)
    assert "slide the cup right" in text and "cup at the right edge" in text


def test_a_clip_above_the_inline_limit_goes_through_the_files_api(fake, monkeypatch, clip):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    vlm = gemini.build(spec(fake, inline_limit_mb=0.000001))
    monkeypatch.setattr(gemini, "FILE_POLL_S", 0.01)
    fake.generate.append(answer(ACCEPT))
    request = VerifyRequest(task_prompt="Move the cup.", input_image=FRAME, instruction="slide right",
                            target_state="right", clip=clip, seed=3)
    assert vlm.verify(request).value.verdict == "accept"
    assert list(fake.uploaded.values()) == [clip.path.read_bytes()]
    assert any(p.startswith("/v1beta/files/") for p in fake.paths("GET"))  # waited for ACTIVE
    file_parts = [p["fileData"] for p in parts(fake.generate_calls()[0]) if "fileData" in p]
    assert file_parts and (file_parts[0].get("fileUri") or file_parts[0].get("file_uri")).endswith("/v1beta/files/" + next(iter(fake.uploaded)))


def test_router_and_selector_round_trips(fake, vlm, clip):
    fake.generate += [answer({"action": "split", "estimated_steps": 3, "suggestion": "one block at a time",
                              "reason": "several moves"}),
                      answer({"best_index": 1, "reason": "clip 1 ends with the cup on the right"})]
    route = vlm.route(RouteRequest(task_prompt="Sort the blocks.", input_image=FRAME, instruction="sort them all",
                                   clip=clip, reason="wrong order", suggestion="red first", good_fraction=0.1,
                                   step=1, max_steps=3, seed=4))
    assert route.value.action == "split" and route.value.estimated_steps == 3
    assert "good_fraction (share of the clip that was right before the error): 0.10" in " ".join(
        p.get("text", "") for p in parts(fake.generate_calls()[0]))
    chosen = vlm.select(SelectRequest(task_prompt="Sort the blocks.", input_image=FRAME, clips=[clip, clip], seed=5))
    assert chosen.value.best_index == 1
    videos = [p for p in parts(fake.generate_calls()[1]) if p.get("inlineData", {}).get("mime_type") == "video/mp4"]
    assert len(videos) == 2


def test_rubric_judge_scores_each_criterion(fake, vlm, clip):
    fake.generate.append(answer({"criteria": [
        {"criterion": "path validity", "score": 1, "max_score": 1, "reason": "never crosses a wall"},
        {"criterion": "task completion", "score": 0, "max_score": 1, "reason": "stops short"}],
        "summary": "valid path, goal missed"}))
    reply = vlm.judge(JudgeRequest(task_prompt="Solve the maze.", rubric="1. Path validity\n2. Task completion",
                                   input_image=FRAME, clip=clip, seed=1))
    assert reply.value.normalized_score == 0.5
    assert "Rubric:\n1. Path validity" in " ".join(p.get("text", "") for p in parts(fake.generate_calls()[0]))


def test_rate_limit_then_server_error_then_success_is_retried_by_the_sdk(fake, vlm):
    fake.generate += [error(429, "quota"), error(500, "boom"), answer(PLAN)]
    assert vlm.plan(plan_request()).value.instruction == PLAN["instruction"]
    assert len(fake.generate_calls()) == 3


def test_an_error_that_persists_is_retryable_and_says_what_happened(fake, vlm):
    fake.generate += [error(503, "overloaded")] * 4
    with pytest.raises(BackendError) as raised:
        vlm.plan(plan_request())
    assert raised.value.retryable and "503" in str(raised.value) and "overloaded" in str(raised.value)
    assert len(fake.generate_calls()) == 4  # attempts=4 by default


def test_a_refused_request_is_not_retried_and_the_key_is_scrubbed_from_the_message(fake, vlm):
    fake.generate.append(error(400, f"bad request for key {KEY}"))
    with pytest.raises(BackendError) as raised:
        vlm.plan(plan_request())
    assert not raised.value.retryable and KEY not in str(raised.value) and "[api key]" in str(raised.value)
    assert len(fake.generate_calls()) == 1


def test_malformed_json_is_repaired_once_quoting_the_error(fake, vlm):
    fake.generate += [answer('Sure! {"observation": "a cup", "task_complete": "maybe"'), answer(PLAN)]
    reply = vlm.plan(plan_request())
    assert reply.value.instruction == PLAN["instruction"]
    assert (reply.usage.calls, reply.usage.input_tokens, reply.usage.output_tokens) == (2, 200, 50)
    second = fake.generate_calls()[1].json()["contents"]
    assert [c["role"] for c in second] == ["user", "model", "user"]
    assert second[1]["parts"][0]["text"].startswith("Sure!")
    assert "not closed" in second[2]["parts"][0]["text"]


def test_an_answer_that_breaks_the_schema_is_quoted_back_field_by_field(fake, vlm, clip):
    bad = dict(ACCEPT, verdict="reject", good_fraction=None)  # a reject must give good_fraction
    fake.generate += [answer(bad), answer(dict(ACCEPT, verdict="reject", good_fraction=0.4, suggestion="go left"))]
    request = VerifyRequest(task_prompt="t", input_image=FRAME, instruction="i", target_state="s", clip=clip, seed=1)
    assert vlm.verify(request).value.good_fraction == 0.4
    repair = fake.generate_calls()[1].json()["contents"][2]["parts"][0]["text"]
    assert "a reject must give good_fraction" in repair


def test_malformed_twice_becomes_a_backend_failed_event_never_an_accept(fake, vlm, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    fake.generate += [answer(PLAN), answer("I think it worked."), answer('{"verdict": "accept"}')]
    store = MemoryEventStore()
    engine = Engine.start(store, ArtifactFolder(tmp_path / "a"), vlm, ScriptedVGM(),
                          task=TaskSpec(prompt="Move the red cup to the right.", source="upload"),
                          input_image=FRAME, config=LoopConfig(n_max=1, m=1), seed=1,
                          vlm_label=registry.label(vlm, spec(fake)))
    engine.run()
    events = store.read(engine.session_id)
    kinds = [e.type for e in events]
    assert "ClipVerified" not in kinds and "StepAccepted" not in kinds
    failed = [e for e in events if e.type == "BackendFailed"][-1]
    assert failed.role == "verify" and failed.error == "MalformedOutput" and not failed.retryable
    assert failed.usage.calls == 2 and failed.usage.input_tokens == 200
    assert "does not fit its schema twice" in failed.message
    everything = "\n".join(event_to_json(e) for e in events) + caplog.text
    assert KEY not in everything


def test_a_missing_key_is_reported_before_any_call(fake, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    reason = registry.unavailable("vlm", spec(fake))
    assert reason.startswith("no API key: set GEMINI_API_KEY or GOOGLE_API_KEY")
    with pytest.raises(BackendUnavailable, match="cannot run here: no API key"):
        registry.build_vlm(spec(fake))
    choice = next(c for c in registry.choices() if c.key == "gemini")
    assert not choice.available and "GEMINI_API_KEY" in choice.why_not
    assert fake.requests == []


def test_the_spec_recorded_in_a_session_holds_no_key(fake, vlm, tmp_path):
    fake.generate += [answer(PLAN)]
    store = MemoryEventStore()
    engine = Engine.start(store, ArtifactFolder(tmp_path / "a"), vlm, ScriptedVGM(),
                          task=TaskSpec(prompt="Move the cup.", source="upload"), input_image=FRAME,
                          config=LoopConfig(n_max=1), vlm_label=registry.label(vlm, spec(fake)))
    engine.step()
    dumped = json.dumps([json.loads(event_to_json(e)) for e in store.read(engine.session_id)])
    assert KEY not in dumped and "gemini-2.5-pro" in dumped


def test_the_key_is_in_no_event_database_export_or_log(fake, vlm, tmp_path, caplog):
    """Keys are never in events, the database, exports or logs: a session with a failed and a good call,
    stored in SQLite and exported, is searched byte for byte for the key."""
    from storage import SQLiteEventStore
    from storage.export import export_sessions

    caplog.set_level(logging.DEBUG)
    fake.generate += [error(500, "INTERNAL"), answer(PLAN), answer(ACCEPT)]
    db = tmp_path / "collabvr.sqlite"
    store = SQLiteEventStore(db)
    artifacts = ArtifactFolder(tmp_path / "a")
    engine = Engine.start(store, artifacts, vlm, ScriptedVGM(),
                          task=TaskSpec(prompt="Move the red cup to the right.", source="upload"),
                          input_image=FRAME, config=LoopConfig(n_max=1, m=1), seed=1,
                          vlm_label=registry.label(vlm, spec(fake)))
    engine.run()
    assert fake.generate_calls()[0].headers["x-goog-api-key"] == KEY  # the key was used
    export_sessions(store, artifacts, [engine.session_id], tmp_path / "out.zip")
    store.close()
    found = [p.name for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert found == []
    assert KEY not in caplog.text

"""Real backends as the app and the command line see them: the honest availability list (`backends --json`
and registry.choices), backends registered in a file, a real session from an uploaded image and prompt
(recorded so it resumes elsewhere), a real VLM judging a simulated task, lazy heavy imports, the gpucheck,
and the Hugging Face Space wiring."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest

from cli import main
from cli.gpucheck import measure
from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends import zerogpu
from collabvr.registry import BackendUnavailable
from collabvr.config import LoopConfig
from collabvr.studio import NewSimSession, Studio
from storage import SQLiteEventStore

import tiny_models
from fake_google import FakeGoogleAPI, answer

ROOT = Path(__file__).resolve().parents[1]
KEY = "AIzaREGISTRY-test-key-42"
PLAN = {"observation": "a grey square", "remaining_goal": "turn it red", "task_complete": False,
        "instruction": "the square turns red", "target_state": "a red square", "estimated_steps_remaining": 0}


@pytest.fixture
def fake():
    server = FakeGoogleAPI()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tiny_wan(tmp_path_factory) -> str:
    return str(tiny_models.save_pipeline("wan2.2-ti2v-5b", tmp_path_factory.mktemp("wan")))


@pytest.fixture
def registered(fake, tiny_wan, tmp_path, monkeypatch):
    """A tiny local video model and a Gemini pointed at the loopback server, registered as a person would."""
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    entries = [
        {"role": "vgm", "key": "tiny-wan", "label": "Tiny Wan (random weights)",
         "spec": {"kind": "diffusers", "model": "wan2.2-ti2v-5b", "path": tiny_wan, "device": "cpu", "steps": 2,
                  "size": [32, 32]}},
        {"role": "vlm", "key": "gemini-local", "label": "Gemini (loopback)",
         "spec": {"kind": "gemini", "model": "gemini-2.5-pro", "base_url": fake.url, "jitter_s": 0}},
    ]
    file = tmp_path / "backends.json"
    file.write_text(json.dumps(entries))
    monkeypatch.setenv(registry.BACKENDS_FILE_ENV, str(file))
    return entries


@pytest.fixture
def studio(tmp_path):
    return Studio(SQLiteEventStore(tmp_path / "s.sqlite"), ArtifactFolder(tmp_path / "art"))


def test_backends_json_lists_every_backend_with_a_reason_when_it_cannot_run(capsys, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert main(["backends", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {(r["role"], r["key"]) for r in rows}
    assert {("vlm", "gemini"), ("vlm", "qwen2.5-vl-7b"), ("vlm", "qwen3-vl-8b"), ("vgm", "wan2.2-ti2v-5b"),
            ("vgm", "wan2.2-i2v-a14b"), ("vgm", "vbvr-wan2.2"), ("vgm", "wan2.1-i2v-14b-480p"), ("vgm", "ltx-video"),
            ("vgm", "cogvideox-5b-i2v"), ("vgm", "cosmos-predict2.5-2b"), ("vgm", "veo-3.1-fast")} <= keys
    by_key = {(r["role"], r["key"]): r for r in rows}
    for row in rows:
        assert row["available"] == ("reason" not in row)
    assert "GEMINI_API_KEY" in by_key[("vlm", "gemini")]["reason"]
    assert "hf download Wan-AI/Wan2.2-TI2V-5B-Diffusers" in by_key[("vgm", "wan2.2-ti2v-5b")]["reason"]
    assert "no CUDA device" in by_key[("vgm", "ltx-video")]["reason"]  # this machine has none
    assert "torchvision" in by_key[("vgm", "cosmos-predict2.5-2b")]["reason"]
    assert all(r["available"] for r in rows if r["simulated"])
    shown = {(c.role, c.key): c.available for c in registry.choices()}
    assert shown == {(r["role"], r["key"]): r["available"] for r in rows}  # the app's pickers say the same


def test_backends_text_says_what_to_do(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "[no ] wan2.2-ti2v-5b" in out and "hf download" in out


def test_registered_backends_appear_and_a_bad_file_is_reported(registered, tmp_path, monkeypatch):
    listed = {c.key: c for c in registry.choices()}
    assert listed["tiny-wan"].available and listed["gemini-local"].available
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv(registry.BACKENDS_FILE_ENV, str(bad))
    problem = next(c for c in registry.choices() if c.key == "registered")
    assert not problem.available and "could not be read" in problem.why_not


def test_an_uploaded_image_and_prompt_start_a_real_session_that_resumes_elsewhere(registered, fake, studio, tmp_path):
    fake.generate += [answer(PLAN), answer({"verdict": "accept", "action_executed": True, "progress": "complete",
                                            "confidence": 0.8, "reason": "it turned red"})]
    image = np.full((40, 40, 3), 128, np.uint8)
    sid = studio.new_upload_session(image, "Turn the square red.", "gemini-local", "tiny-wan",
                                    LoopConfig(n_max=1, m=1, first_step_seconds=0.25))
    started = studio.state(sid).started
    assert started.task.source == "upload" and started.vgm.spec["path"] == registered[0]["spec"]["path"]
    assert started.vlm.spec["kind"] == "gemini" and KEY not in json.dumps(started.vlm.spec)
    studio.start_step(sid)  # plan
    assert studio.wait(sid, 60).error == ""
    # Another process (a fresh Studio on the same store) rebuilds the backends from the recorded specs.
    again = Studio(studio.store, studio.artifacts)
    again.start_step(sid)  # generate with the tiny Wan
    assert again.wait(sid, 120).error == ""
    state = again.state(sid)
    attempt = state.steps[0].attempts[0]
    assert attempt.generated.n_frames == 5 and attempt.generated.fps == 24.0  # 0.25 s x 24 fps -> 4k+1


def test_a_real_vlm_plans_and_verifies_a_simulated_task(registered, fake, studio):
    fake.generate += [answer(PLAN)]
    gemini_spec = registry.spec_for("vlm", "gemini-local").spec
    sid = studio.new_sim_session(NewSimSession("shapes", "easy", 1, vlm_spec=gemini_spec,
                                               config=LoopConfig(n_max=1, m=1)))
    studio.start_step(sid)
    assert studio.wait(sid, 60).error == ""
    state = studio.state(sid)
    assert state.started.vlm.name == "gemini/gemini-2.5-pro" and not state.started.vlm.simulated
    assert state.started.vgm.simulated and state.started.task.source == "sim"
    assert state.steps[0].plan.instruction == PLAN["instruction"]
    assert len(fake.generate_calls()) == 1


def test_a_backend_that_cannot_run_is_refused_with_its_reason(studio, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(BackendUnavailable, match="cannot run here: no API key"):
        studio.new_upload_session(image, "do it", "gemini", "veo-3.1-fast")
    with pytest.raises(BackendUnavailable, match="cannot run here: .*hf download"):
        studio.new_upload_session(image, "do it", "qwen2.5-vl-7b", "ltx-video")


def test_listing_backends_imports_no_model_library():
    code = ("import sys; from collabvr import registry; import collabvr.studio; registry.choices(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'google.genai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_gpucheck_without_cuda_says_so_and_exits_0(capsys):
    assert main(["gpucheck"]) == 0
    assert "nothing measured: no CUDA device" in capsys.readouterr().out


def test_gpucheck_measures_default_and_fast_runs_and_the_loops_overhead():
    # The same measuring code as on a GPU, on CPU with the tiny pipeline (real sizes need CUDA).
    fast = {"cache": "first_block", "attention_backend": "_native_math"}  # compiling on 2 CPU cores is too slow here
    result = measure("wan2.2-ti2v-5b", lambda device: tiny_models.build_wan_ti2v(), device="cpu", steps=2,
                     seconds=0.5, native=(32, 32), fast=fast)
    assert (result["frames"], result["fps"], result["size"]) == (13, 24.0, [32, 32])
    assert result["default_s_per_video_s"] > 0 and result["fast_s_per_video_s"] > 0 and result["speedup"] > 0
    assert 0 < result["loop_overhead_share"] and result["default_peak_gib"] is None
    assert result["fast_options"] == fast


def test_the_fast_options_are_the_ones_a_gpu_user_expects():
    from collabvr.backends import video_models

    wan = video_models.fast_options(video_models.MODELS["wan2.2-ti2v-5b"])
    assert wan["cache"] == "taylorseer" and wan["compile"] is True and wan["attention_backend"]
    assert "attention_backend" not in video_models.fast_options(video_models.MODELS["cogvideox-5b-i2v"])
    assert video_models.fast_options(video_models.MODELS["cosmos-predict2.5-2b"]).get("cache") is None


def test_generation_is_wrapped_for_zerogpu_only_when_spaces_is_installed(monkeypatch):
    def work() -> str:
        return "done"

    assert zerogpu.gpu(work) is work
    calls = []
    fake_spaces = types.ModuleType("spaces")
    fake_spaces.__spec__ = ModuleSpec("spaces", None)
    fake_spaces.GPU = lambda duration: (calls.append(duration), lambda f: f)[1]
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces)
    assert zerogpu.gpu(work, 120)() == "done" and calls == [120]


def test_the_readme_is_a_gradio_space_front_matter_with_app_py():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    front = text.split("---\n")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    assert (ROOT / "app.py").is_file()

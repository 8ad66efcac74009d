"""The diffusers video backend: each model family of the table, built as a tiny random-weight pipeline, saved
to a folder, loaded by the production code from that folder (as a downloaded model is), and run for one
short clip inside a real engine run; Stop during denoising; the frame-count and size rules; speed options.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends import BackendCancelled, GenerateRequest, video_models
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import MemoryEventStore

import tiny_models
from scripted import ScriptedVLM, accept, plan

TASK = TaskSpec(prompt="Slide the red cup to the left.", source="upload")
IMAGE = np.zeros((32, 32, 3), np.uint8)
IMAGE[8:24, 8:24, 0] = 220

# model -> (frames of a 0.5 s clip, fps, (width, height)) under the table's rules and the tiny configs.
EXPECTED = {
    "wan2.2-ti2v-5b": (13, 24.0, (32, 32)),  # 0.5 s x 24 fps = 12 -> 4k+1 = 13
    "wan2.2-i2v-a14b": (9, 16.0, (32, 32)),  # 8 -> 9
    "wan2.1-i2v-14b-480p": (9, 16.0, (32, 32)),
    "ltx-video": (9, 24.0, (32, 32)),  # 12 -> 8k+1 = 9
    "cogvideox-5b-i2v": (9, 8.0, (16, 16)),  # fixed: the length and size its tiny transformer was built for
    "cosmos-predict2.5-2b": (9, 16.0, (32, 32)),
}


@pytest.fixture(scope="session")
def saved_pipeline(tmp_path_factory):
    """Each tiny pipeline is built and saved once for the whole run."""
    saved: dict[str, str] = {}

    def get(model: str) -> str:
        if model not in saved:
            saved[model] = str(tiny_models.save_pipeline(model, tmp_path_factory.mktemp(model.replace(".", "_"))))
        return saved[model]

    return get


def spec_for(model: str, path: str, **extra) -> dict:
    return {"kind": "diffusers", "model": model, "path": path, "device": "cpu", "steps": 2, "size": [32, 32], **extra}


def backend(model: str, path: str, **extra):
    spec = spec_for(model, path, **extra)
    if model == "cosmos-predict2.5-2b":  # NVIDIA's guardrail is a separate download; a pass-through stands in
        return video_models.build(spec, components={"safety_checker": tiny_models.TinySafetyChecker()}), spec
    return registry.build_vgm(spec), spec


@pytest.mark.parametrize("model", list(EXPECTED))
def test_each_family_loads_from_its_folder_and_renders_a_clip_in_an_engine_run(model, saved_pipeline, tmp_path):
    vgm, spec = backend(model, saved_pipeline(model))
    folder = ArtifactFolder(tmp_path / "artifacts")
    vlm = ScriptedVLM(plans=[plan("slide the red cup to the left")], verdicts=[accept()])
    engine = Engine.start(MemoryEventStore(), folder, vlm, vgm, task=TASK, input_image=IMAGE,
                          config=LoopConfig(n_max=1, m=1, first_step_seconds=0.5), seed=5,
                          vgm_label=registry.label(vgm, spec))
    seen: list[tuple[int, int]] = []
    state = engine.run(progress=lambda what, done, total: seen.append((done, total)) if "generate" in what else None)

    assert state.finished is not None, engine.last_stop
    generated = [e for e in engine.store.read(engine.session_id) if e.type == "ClipGenerated"]
    assert len(generated) == 1
    clip = generated[0]
    frames, fps, size = EXPECTED[model]
    assert (clip.n_frames, clip.fps) == (frames, fps)
    info = media.probe(folder.path(clip.clip))
    assert (info.n_frames, info.width, info.height) == (frames, *size)
    assert clip.info["model"] == model and clip.info["steps"] == 2
    assert (2, 2) in seen  # the step callback reached the engine's progress
    verify = vlm.requests("verify")[0]
    assert verify.clip.n_frames == frames and verify.clip.frames[-1].shape == (size[1], size[0], 3)
    assert engine.store.read(engine.session_id)[0].vgm.spec["path"] == spec["path"]  # resumable from its spec


def test_stop_during_denoising_ends_the_call_before_the_decode(saved_pipeline):
    vgm, _ = backend("wan2.2-ti2v-5b", saved_pipeline("wan2.2-ti2v-5b"), steps=4)
    vgm.generate(GenerateRequest(image=IMAGE, prompt="warm", seconds=0.2, seed=1))  # load first
    decodes = []
    decode = vgm._pipe.vae.decode
    vgm._pipe.vae.decode = lambda *a, **k: decodes.append(1) or decode(*a, **k)
    cancel = threading.Event()
    steps: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        steps.append((done, total))
        if done == 1:
            cancel.set()  # a person presses Stop during the first step

    with pytest.raises(BackendCancelled, match="step 2 of 4"):
        vgm.generate(GenerateRequest(image=IMAGE, prompt="slide left", seconds=0.5, seed=2, progress=progress,
                                     cancel=cancel))
    assert steps == [(1, 4)] and decodes == []
    clip = vgm.generate(GenerateRequest(image=IMAGE, prompt="slide left", seconds=0.5, seed=2))
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (13, 32, 32, 3)  # still usable afterwards
    assert decodes == [1]


def test_stop_in_an_engine_run_is_a_retryable_failed_generation(saved_pipeline, tmp_path):
    vgm, spec = backend("ltx-video", saved_pipeline("ltx-video"), steps=3)
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(tmp_path / "a"),
                          ScriptedVLM(plans=[plan("slide left")], verdicts=[accept()]), vgm, task=TASK,
                          input_image=IMAGE, config=LoopConfig(n_max=1, m=1, first_step_seconds=0.5),
                          vgm_label=registry.label(vgm, spec))
    engine.step()  # plan

    def progress(what: str, done: int, total: int) -> None:
        if "generate" in what and done >= 1 and total == 3:
            engine.stop()

    engine.step(progress)
    failed = engine.state.failures[-1]
    assert failed.role == "generate" and failed.error == "BackendCancelled" and failed.retryable
    assert "denoising step 2 of 3" in failed.message
    assert failed.vgm_seconds == 0.5  # a stopped generation still counts, as the paper counts cost


def test_step_caches_run_on_both_experts_of_wan_a14b(saved_pipeline):
    vgm, _ = backend("wan2.2-i2v-a14b", saved_pipeline("wan2.2-i2v-a14b"), options={"cache": "taylorseer"})
    clip = vgm.generate(GenerateRequest(image=IMAGE, prompt="slide left", seconds=0.5, seed=2))
    assert clip.frames.shape == (9, 32, 32, 3) and clip.info["options"]["cache"] == "taylorseer"
    assert vgm._pipe.transformer.is_cache_enabled and vgm._pipe.transformer_2.is_cache_enabled


def test_a_folder_that_does_not_load_is_a_failed_generation_saying_why(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "WanImageToVideoPipeline", "vae": ["diffusers", "AutoencoderKLWan"]}')
    vgm, spec = backend("wan2.2-ti2v-5b", str(broken))
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(tmp_path / "a"),
                          ScriptedVLM(plans=[plan("slide left")], verdicts=[accept()]), vgm, task=TASK,
                          input_image=IMAGE, config=LoopConfig(n_max=1, m=1, first_step_seconds=0.5))
    engine.step()
    engine.step()
    failed = engine.state.failures[-1]
    assert failed.role == "generate" and failed.error == "BackendError" and not failed.retryable
    assert failed.message.startswith(f"could not load Wan 2.2 TI2V-5B (diffusers) from {broken}")


def test_speed_options_a_model_cannot_take_are_refused_with_the_reason(saved_pipeline):
    path = saved_pipeline("ltx-video")
    assert "no first_block step cache" in registry.unavailable("vgm", spec_for("cosmos-predict2.5-2b", path,
                                                                               options={"cache": "first_block"}))
    assert "does not declare" in registry.unavailable("vgm", spec_for("cogvideox-5b-i2v", path,
                                                                      options={"compile": True}))
    assert "ignores attention backends" in registry.unavailable("vgm", spec_for("cogvideox-5b-i2v", path,
                                                                                options={"attention_backend": "flash"}))
    assert "needs the flash_attn package" in registry.unavailable("vgm", spec_for("ltx-video", path,
                                                                                  options={"attention_backend": "flash"}))
    assert "unknown speed option" in registry.unavailable("vgm", spec_for("ltx-video", path, options={"turbo": 1}))
    assert "cannot be compiled" in registry.unavailable("vgm", spec_for("ltx-video", path, options={
        "cache": "first_block", "compile": True}))
    assert registry.unavailable("vgm", spec_for("ltx-video", path, options={"cache": "first_block",
                                                                            "vae_tiling": True})) == ""


def test_frame_counts_follow_each_models_rule():
    wan, ltx, cog = (video_models.MODELS[k] for k in ("vbvr-wan2.2", "ltx-video", "cogvideox-5b-i2v"))
    assert video_models.frame_count(wan, 6.0, 16.0) == 97  # the paper's 6 s clip at 16 fps
    assert video_models.frame_count(wan, 3.0, 16.0) == 49
    assert video_models.frame_count(ltx, 3.0, 24.0) == 73  # 8k+1
    assert video_models.frame_count(ltx, 0.1, 24.0) == 9  # at least one step
    assert [video_models.frame_count(cog, s, 8.0) for s in (1.0, 6.0, 12.0)] == [49, 49, 49]  # one length only


def test_clip_size_keeps_the_inputs_aspect_within_the_native_area():
    assert video_models.clip_size((480, 640), (1280, 704), 32, "area") == (1088, 800)  # 4:3 in 1280x704's area
    assert video_models.clip_size((720, 1280), (832, 480), 16, "area") == (832, 464)
    assert video_models.clip_size((100, 100), (720, 480), 8, "fixed") == (720, 480)
    fitted = video_models.fit_image(np.zeros((480, 640, 3), np.uint8), (320, 320))
    assert fitted.shape == (320, 320, 3)


def test_missing_weights_say_where_and_how_to_fetch_them(tmp_path):
    reason = registry.unavailable("vgm", {"kind": "diffusers", "model": "wan2.2-ti2v-5b", "device": "cpu"})
    assert "not in the Hugging Face cache" in reason and "hf download Wan-AI/Wan2.2-TI2V-5B-Diffusers" in reason
    reason = registry.unavailable("vgm", {"kind": "diffusers", "model": "ltx-video", "device": "cpu",
                                          "path": str(tmp_path / "nowhere")})
    assert "no model folder at" in reason
    (tmp_path / "empty").mkdir()
    reason = registry.unavailable("vgm", {"kind": "diffusers", "model": "ltx-video", "device": "cpu",
                                          "path": str(tmp_path / "empty")})
    assert "has no model_index.json" in reason


def _cuda_problem() -> str:
    from collabvr.backends import availability

    return availability.cuda_problem()


@pytest.mark.skipif(bool(_cuda_problem()), reason=f"needs a CUDA GPU ({_cuda_problem()})")
def test_on_a_gpu_the_backend_runs_in_bf16_behind_the_gpu_gate_with_offload_and_a_cache(saved_pipeline, tmp_path):
    from collabvr.backends.gate import GPUGate

    spec = spec_for("wan2.2-ti2v-5b", saved_pipeline("wan2.2-ti2v-5b"), device="cuda",
                    options={"cache": "first_block", "offload": "model", "vae_tiling": True})
    vgm = registry.build_vgm(spec)
    assert vgm.info.uses_gpu
    gate = GPUGate(1)
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(tmp_path / "a"),
                          ScriptedVLM(plans=[plan("slide left")], verdicts=[accept()]), vgm, task=TASK,
                          input_image=IMAGE, config=LoopConfig(n_max=1, m=1, first_step_seconds=0.5), gate=gate)
    assert engine.run().finished is not None
    assert str(vgm._pipe.transformer.dtype) == "torch.bfloat16" and str(vgm._pipe.vae.dtype) == "torch.float32"

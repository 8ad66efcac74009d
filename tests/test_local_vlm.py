"""The local transformers VLM: a tiny random-weight Qwen2.5-VL saved as a checkpoint is, loaded by the
production code (AutoModelForImageTextToText and the image-only processor, no torchvision). Its answers are
garbage, which is the point: they go through the one repair and end in a clear MalformedOutput, recorded by
the engine as a BackendFailed event with the cost of both calls."""

from __future__ import annotations

import numpy as np
import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends import ClipView, MalformedOutput, VerifyRequest, local_vlm
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.store import MemoryEventStore

import tiny_models
from scripted import ScriptedVGM

FRAME = np.full((48, 64, 3), 100, np.uint8)


@pytest.fixture(scope="session")
def qwen_folder(tmp_path_factory) -> str:
    return str(tiny_models.save_qwen25_vl(tmp_path_factory.mktemp("qwen25vl")))


def spec(folder: str, **extra) -> dict:
    return {"kind": "transformers", "model": "qwen2.5-vl-7b", "path": folder, "device": "cpu", "max_new_tokens": 16,
            **extra}


def recording(vlm) -> list[list[dict]]:
    """Every conversation the model is given, as the processor receives it."""
    seen: list[list[dict]] = []
    generate = vlm.model._generate

    def record(messages, extra, seed):
        seen.append(messages)
        return generate(messages, extra, seed)

    vlm.model._generate = record
    return seen


def test_garbage_output_is_repaired_once_then_fails_clearly_with_both_calls_counted(qwen_folder):
    vlm = registry.build_vlm(spec(qwen_folder))
    assert vlm is registry.build_vlm(spec(qwen_folder))  # one model per process
    seen = recording(vlm)
    frames = [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(4)]
    request = VerifyRequest(task_prompt="Move the cup.", input_image=FRAME, instruction="slide the cup right",
                            target_state="cup on the right", seed=1, current_frame=FRAME,
                            clip=ClipView(frames=frames, indices=[0, 8, 16, 20], n_frames=21, fps=8.0))
    with pytest.raises(MalformedOutput) as raised:
        vlm.verify(request)
    failure = raised.value
    assert "does not fit its schema twice" in str(failure) and not failure.retryable
    assert failure.usage.calls == 2 and failure.usage.input_tokens > 0 and failure.usage.output_tokens > 0
    first, second = seen
    images = [c for m in first for c in m["content"] if c["type"] == "image"]
    assert len(images) == 2 + 4  # the input image, the current frame, the clip's frames at 1 fps and its last
    captions = [c["text"] for m in first for c in m["content"] if c["type"] == "text"]
    assert "(frame 9 of 21, t = 1.0 s)" in captions and "(last frame, t = 2.5 s)" in captions
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert "could not be used" in second[-1]["content"][0]["text"]


def test_a_malformed_plan_in_an_engine_run_is_a_backend_failure(qwen_folder, tmp_path):
    vlm = registry.build_vlm(spec(qwen_folder))
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(tmp_path / "a"), vlm, ScriptedVGM(),
                          task=TaskSpec(prompt="Move the cup.", source="upload"), input_image=FRAME,
                          config=LoopConfig(n_max=1), vlm_label=registry.label(vlm, spec(qwen_folder)))
    engine.step()
    failed = engine.state.failures[-1]
    assert (failed.role, failed.error, failed.retryable) == ("plan", "MalformedOutput", False)
    assert failed.usage.calls == 2 and failed.usage.output_tokens > 0
    assert engine.state.steps == []  # nothing was made up in place of the plan


def test_the_image_only_processor_loads_without_torchvision(qwen_folder):
    import transformers

    processor = local_vlm.image_only_processor(transformers.Qwen2_5_VLProcessor).from_pretrained(qwen_folder)
    inputs = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": FRAME},
                                      {"type": "text", "text": "hi"}]}],
        tokenize=True, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    assert inputs["image_grid_thw"].shape == (1, 3)


def test_availability_names_what_is_missing(qwen_folder, tmp_path):
    assert registry.unavailable("vlm", spec(qwen_folder)) == ""
    assert "needs torchvision" in registry.unavailable("vlm", spec(qwen_folder, video="native"))
    assert "has no config.json" in registry.unavailable("vlm", spec(str(tmp_path)))
    hub = registry.unavailable("vlm", {"kind": "transformers", "model": "qwen3-vl-8b"})
    assert "hf download Qwen/Qwen3-VL-8B-Instruct" in hub and "CUDA" in hub


def test_large_frames_are_scaled_down_to_bound_the_tokens():
    big = np.zeros((1080, 1920, 3), np.uint8)
    small = local_vlm.shrink(big, 200_000)
    assert small.shape[0] * small.shape[1] <= 200_000 and abs(small.shape[1] / small.shape[0] - 16 / 9) < 0.02

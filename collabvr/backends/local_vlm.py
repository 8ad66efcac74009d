"""A local VLM through transformers 5 (AutoModelForImageTextToText): Qwen2.5-VL-7B-Instruct by default,
Qwen3-VL as an option, or any saved Qwen-VL checkpoint named by `path`. Every role of
collabvr.backends.prompted; the answer is free text, so the repair-once loop there catches what does not fit.

Clips reach the model as frames (the engine samples them at the verifier's rate, 1 fps, plus the last
frame), each captioned with its time: the image-only processor path, which works without torchvision.
With torchvision installed and `video: "native"` in the spec, the frames go through the model's own video
processor instead (temporal positions, fewer tokens). bf16 on CUDA; loaded on the first call and kept for
the process (the registry builds one backend per spec); on CUDA every call waits for the GPU gate.

Spec: {"kind": "transformers", "model": "qwen2.5-vl-7b", "path": optional local folder, "device":
"cuda"|"cpu", "max_new_tokens": 1024, "max_image_pixels": 602112, "video": "frames"|"native"}.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collabvr.backends import availability, zerogpu
from collabvr.backends.prompted import ChatReply, ChatRequest, PromptedVLM
from collabvr.backends.prompts import Clip, Image, Part, Text, frame_caption
from collabvr.backends.protocols import BackendError, BackendInfo, Usage

TEMPERATURE = 0.2
MAX_IMAGE_PIXELS = 768 * 28 * 28  # at most about 768 visual tokens per image for Qwen2.5-VL


@dataclass(frozen=True)
class LocalVLMModel:
    key: str
    label: str
    hub_id: str


MODELS: dict[str, LocalVLMModel] = {m.key: m for m in (
    LocalVLMModel("qwen2.5-vl-7b", "Qwen2.5-VL-7B-Instruct (transformers)", "Qwen/Qwen2.5-VL-7B-Instruct"),
    LocalVLMModel("qwen3-vl-8b", "Qwen3-VL-8B-Instruct (transformers)", "Qwen/Qwen3-VL-8B-Instruct"),
)}
DEFAULT_MODEL = "qwen2.5-vl-7b"

# Which processor class reads a checkpoint of each model type (used to build the image-only variant).
_PROCESSORS = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor",
               "qwen3_vl_moe": "Qwen3VLProcessor"}


def model_of(spec: dict[str, Any]) -> LocalVLMModel:
    key = spec.get("model") or DEFAULT_MODEL
    if key not in MODELS:
        raise ValueError(f"unknown local VLM {key!r}; known: {', '.join(MODELS)}")
    return MODELS[key]


def unavailable(spec: dict[str, Any]) -> str:
    """Why this local VLM cannot run here ("" when it can), naming everything to fix."""
    try:
        model = model_of(spec)
    except ValueError as exc:
        return str(exc)
    path = spec.get("path")
    weights = (availability.folder_problem(path, "config.json") if path
               else availability.hub_cache_problem(model.hub_id, "config.json"))
    device = str(spec.get("device") or "cuda")
    native = spec.get("video") == "native"
    return availability.join(availability.packages_problem("torch", "transformers", "accelerate"),
                             availability.cuda_problem() if device.startswith("cuda") else "", weights,
                             availability.torchvision_problem() if native else "")


def build(spec: dict[str, Any]) -> PromptedVLM:
    problem = unavailable(spec)
    if problem:
        raise BackendError(f"{spec.get('model') or DEFAULT_MODEL} cannot run here: {problem}")
    chat = LocalChat(spec, model_of(spec))
    return PromptedVLM(chat, BackendInfo(name=f"transformers/{chat.key}", role="vlm", simulated=False,
                                         uses_gpu=chat.device.startswith("cuda")))


def image_only_processor(base: type) -> type:
    """A processor class that loads only the image processor and the tokenizer: every Qwen-VL video
    processor needs torchvision, and the stock class refuses to build without one."""

    class ImageOnly(base):  # type: ignore[misc, valid-type]
        @classmethod
        def get_attributes(cls) -> list[str]:
            return ["image_processor", "tokenizer"]

    ImageOnly.__name__ = f"{base.__name__}ImageOnly"
    return ImageOnly


def shrink(frame: np.ndarray, max_pixels: int) -> np.ndarray:
    """The frame scaled down (aspect kept) to at most `max_pixels` pixels: bounds the visual tokens."""
    height, width = frame.shape[:2]
    if height * width <= max_pixels:
        return frame
    from PIL import Image as PILImage

    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(28, int(width * scale)), max(28, int(height * scale)))
    return np.asarray(PILImage.fromarray(np.ascontiguousarray(frame)).resize(size, PILImage.Resampling.BICUBIC))


class LocalChat:
    """A ChatModel on a local transformers model. Calls take turns on the model (generate is not re-entrant
    with a shared seed)."""

    def __init__(self, spec: dict[str, Any], model: LocalVLMModel) -> None:
        self.key = model.key if not spec.get("path") else f"{model.key}@{Path(spec['path']).name}"
        self.name = model.label if not spec.get("path") else f"local VLM at {spec['path']}"
        self.source = str(spec.get("path") or model.hub_id)
        self.device = str(spec.get("device") or "cuda")
        self.max_new_tokens = int(spec.get("max_new_tokens", 1024))
        self.max_pixels = int(spec.get("max_image_pixels", MAX_IMAGE_PIXELS))
        self.native_video = spec.get("video") == "native"
        self._model: Any = None
        self._processor: Any = None
        self._model_type = ""
        self._lock = threading.Lock()
        self._generate = zerogpu.gpu(self._run, int(spec.get("zerogpu_duration_s", 120)))

    # ----- loading -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        import torch
        import transformers

        on_gpu = self.device.startswith("cuda")
        try:
            config = transformers.AutoConfig.from_pretrained(self.source, local_files_only=True)
            self._model_type = config.model_type
            self._processor = self._load_processor(transformers)
            self._model = transformers.AutoModelForImageTextToText.from_pretrained(
                self.source, dtype=torch.bfloat16 if on_gpu else torch.float32,
                device_map=self.device if on_gpu else None, local_files_only=True).eval()
        except Exception as exc:
            raise BackendError(f"could not load {self.name} from {self.source}: {type(exc).__name__}: {exc}") from None

    def _load_processor(self, transformers: Any) -> Any:
        if availability.torchvision_problem() == "" or self._model_type not in _PROCESSORS:
            return transformers.AutoProcessor.from_pretrained(self.source, local_files_only=True)
        base = getattr(transformers, _PROCESSORS[self._model_type])
        return image_only_processor(base).from_pretrained(self.source, local_files_only=True)

    # ----- ChatModel -------------------------------------------------------------------------------------------
    def complete(self, request: ChatRequest) -> ChatReply:
        with self._lock:
            if self._model is None:
                self._load()
            started = time.perf_counter()
            messages, extra = self._messages(request)
            try:
                text, n_in, n_out = self._generate(messages, extra, request.seed)
            except BackendError:
                raise
            except Exception as exc:
                if type(exc).__name__ == "OutOfMemoryError":
                    raise BackendError(f"{self.name} ran out of GPU memory; lower max_image_pixels in its spec") from None
                raise BackendError(f"{self.name} failed on the {request.role} call: {type(exc).__name__}: {exc}") from None
        return ChatReply(text, Usage(calls=1, input_tokens=n_in, output_tokens=n_out,
                                     latency_s=round(time.perf_counter() - started, 4)))

    def _run(self, messages: list[dict], extra: dict[str, Any], seed: int) -> tuple[str, int, int]:
        import torch

        inputs = self._processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                     return_dict=True, return_tensors="pt", **extra)
        inputs = inputs.to(self._model.device)
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=True,
                                          temperature=TEMPERATURE)
        new = output[:, inputs["input_ids"].shape[1]:]
        text = self._processor.batch_decode(new, skip_special_tokens=True)[0]
        return text, int(inputs["input_ids"].shape[1]), int(new.shape[1])

    def _messages(self, request: ChatRequest) -> tuple[list[dict], dict[str, Any]]:
        messages: list[dict] = [{"role": "system", "content": [{"type": "text", "text": request.system}]}]
        metadata: list[dict] = []
        for turn in request.turns:
            content: list[dict] = []
            for part in turn.parts:
                content += self._content(part, metadata)
            messages.append({"role": "user" if turn.role == "user" else "assistant", "content": content})
        extra: dict[str, Any] = {}
        if metadata:
            extra["processor_kwargs"] = {"do_sample_frames": False, "video_metadata": metadata}
        return messages, extra

    def _content(self, part: Part, metadata: list[dict]) -> list[dict]:
        if isinstance(part, Text):
            return [{"type": "text", "text": part.text}]
        if isinstance(part, Image):
            return [{"type": "text", "text": part.caption}, {"type": "image", "image": self._picture(part.frame)}]
        if isinstance(part, Clip):
            return [{"type": "text", "text": part.caption}] + self._clip(part, metadata)
        raise TypeError(f"unknown prompt part {type(part).__name__}")

    def _clip(self, part: Clip, metadata: list[dict]) -> list[dict]:
        view = part.view
        if self.native_video:
            frames = np.stack([shrink(f, self.max_pixels) for f in view.frames])
            rate = len(view.frames) / max(view.n_frames / view.fps, 1e-6)
            metadata.append({"fps": rate, "total_num_frames": len(frames), "frames_indices": list(range(len(frames)))})
            return [{"type": "video", "video": frames}]
        content: list[dict] = []
        for position, (index, frame) in enumerate(zip(view.indices, view.frames)):
            caption = frame_caption(index, view.n_frames, view.fps, last=position == len(view.frames) - 1)
            content += [{"type": "text", "text": f"({caption})"}, {"type": "image", "image": self._picture(frame)}]
        return content

    def _picture(self, frame: np.ndarray) -> Any:
        from PIL import Image as PILImage

        return PILImage.fromarray(np.ascontiguousarray(shrink(np.asarray(frame, dtype=np.uint8), self.max_pixels)))


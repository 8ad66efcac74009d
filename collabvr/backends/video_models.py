"""Image-to-video models through diffusers: one table of models (`MODELS`) and one backend class that runs
any of them.

The table says, per model: the diffusers pipeline class, the hub id, the native size and fps, the
frame-count rule (frames = step * k + 1: 4k+1 for Wan, CogVideoX and Cosmos, 8k+1 for LTX), how the size is
chosen (the input's aspect within the native area, or a fixed size), dtypes, the default steps and
guidance, and which speed options apply. Weights come from the Hugging Face cache or a local folder named
in the spec (`path`); nothing is downloaded at run time (`local_files_only`). The pipeline loads on the
first generation (so listing and starting sessions stay fast) and then stays loaded for the process.

Progress comes from the pipeline's step callback; Stop (request.cancel) raises from that callback, which
aborts the denoising loop at the next step and skips the VAE decode. Frames leave as uint8.

Speed options, all off by default (the ones that change pixels must be asked for): `attention_backend`
(e.g. "flash", "_flash_3_hub", "sage_hub", "_native_cudnn"), `cache` ("first_block" or "taylorseer" where
the model supports it), `compile` (regional torch.compile of the repeated transformer blocks), `offload`
("model": model CPU offload, for small cards) and `vae_tiling`.

Spec: {"kind": "diffusers", "model": "wan2.2-ti2v-5b", "path": optional local folder, "device": "cuda"|"cpu",
"steps", "guidance", "fps", "size": [w, h] (replaces the native size), "negative_prompt",
"options": {...}, "zerogpu_duration_s": 300}.
"""

from __future__ import annotations

import json
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from collabvr.backends import availability, zerogpu
from collabvr.backends.protocols import BackendCancelled, BackendError, BackendInfo, GeneratedClip, GenerateRequest

Family = Literal["wan", "ltx", "cogvideox", "cosmos"]

NEGATIVE_PROMPT = ("blurry, distorted, deformed, low quality, flickering, jump cut, camera shake, objects appearing "
                   "or disappearing, text, watermark")


@dataclass(frozen=True)
class VideoModel:
    """One row of the table of video models."""

    key: str
    label: str
    family: Family
    pipeline: str  # the diffusers class that runs it
    hub_id: str
    native: tuple[int, int]  # (width, height)
    fps: float
    frame_step: int  # frames = frame_step * k + 1
    steps: int
    guidance: float
    size_rule: Literal["area", "fixed"] = "area"  # area: the input's aspect within the native area
    size_multiple: int = 16  # width and height are rounded down to a multiple of this (or what the pipeline needs)
    max_frames: int | None = None  # the longest clip the model takes; longer requests are cut (and said so)
    fixed_frames: bool = False  # always max_frames (the clip length the model was trained on; it is unreliable
    # at other lengths), whatever was asked; the nominal seconds asked are still what the cost counts
    guidance_2: float | None = None  # Wan 2.2 A14B: guidance of the low-noise expert
    revision: str | None = None
    dtype: str = "bfloat16"
    vae_float32: bool = False  # keep the VAE in float32 (Wan: recommended; bf16 decodes with artefacts)
    caches: tuple[str, ...] = ()  # step caches diffusers 0.42 supports for this transformer
    compile_blocks: bool = False  # has _repeated_blocks, so regional torch.compile applies
    attention_backends: bool = True  # set_attention_backend has an effect
    packages: tuple[str, ...] = ()  # extra import names the pipeline needs
    needs_torchvision: bool = False
    needs_guardrail: bool = False
    notes: str = ""


MODELS: dict[str, VideoModel] = {m.key: m for m in (
    VideoModel("wan2.2-ti2v-5b", "Wan 2.2 TI2V-5B (diffusers)", "wan", "WanImageToVideoPipeline",
               "Wan-AI/Wan2.2-TI2V-5B-Diffusers", native=(1280, 704), fps=24.0, frame_step=4, steps=50,
               guidance=5.0, size_multiple=32, vae_float32=True, caches=("first_block", "taylorseer"),
               compile_blocks=True, packages=("ftfy",),
               notes="121 frames (5 s) at 24 fps is its training length; fits a 24 GB card with offload"),
    VideoModel("wan2.2-i2v-a14b", "Wan 2.2 I2V-A14B, both experts (diffusers)", "wan", "WanImageToVideoPipeline",
               "Wan-AI/Wan2.2-I2V-A14B-Diffusers", native=(832, 480), fps=16.0, frame_step=4, steps=40,
               guidance=3.5, guidance_2=3.5, vae_float32=True, caches=("first_block", "taylorseer"),
               compile_blocks=True, packages=("ftfy",),
               notes="two 14B experts: high noise first, low noise after boundary_ratio; caches apply to both"),
    VideoModel("vbvr-wan2.2", "VBVR-Wan2.2 (the paper's VGM; diffusers)", "wan", "WanImageToVideoPipeline",
               "Video-Reason/VBVR-Wan2.2", native=(832, 480), fps=16.0, frame_step=4, steps=20, guidance=5.0,
               guidance_2=5.0, vae_float32=True, caches=("first_block", "taylorseer"), compile_blocks=True,
               packages=("ftfy",), notes="the paper's settings: area <= 832x480, 16 fps, 20 steps, CFG 5.0"),
    VideoModel("wan2.1-i2v-14b-480p", "Wan 2.1 I2V-14B 480P (diffusers)", "wan", "WanImageToVideoPipeline",
               "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", native=(832, 480), fps=16.0, frame_step=4, steps=40,
               guidance=5.0, vae_float32=True, caches=("first_block", "taylorseer"), compile_blocks=True,
               packages=("ftfy",), notes="slow: minutes per clip on an H100"),
    VideoModel("ltx-video", "LTX-Video 0.9 (diffusers)", "ltx", "LTXImageToVideoPipeline", "Lightricks/LTX-Video",
               native=(704, 512), fps=24.0, frame_step=8, steps=50, guidance=3.0, size_multiple=32, max_frames=257,
               caches=("first_block", "taylorseer"), compile_blocks=True),
    VideoModel("cogvideox-5b-i2v", "CogVideoX-5B I2V (diffusers)", "cogvideox", "CogVideoXImageToVideoPipeline",
               "THUDM/CogVideoX-5b-I2V", native=(720, 480), fps=8.0, frame_step=4, steps=50, guidance=6.0,
               size_rule="fixed", size_multiple=8, max_frames=49, fixed_frames=True,
               caches=("first_block", "taylorseer"), attention_backends=False,
               notes="720x480 and 49 frames (6 s at 8 fps) only"),
    VideoModel("cosmos-predict2.5-2b", "Cosmos-Predict 2.5 2B (diffusers)", "cosmos", "Cosmos2_5_PredictBasePipeline",
               "nvidia/Cosmos-Predict2.5-2B", revision="diffusers/base/post-trained", native=(1280, 704),
               fps=16.0, frame_step=4, steps=36, guidance=7.0, max_frames=93, needs_torchvision=True,
               needs_guardrail=True, notes="no step cache in diffusers 0.42; NVIDIA's guardrail is required"),
)}
DEFAULT_MODEL = "wan2.2-ti2v-5b"

CACHES = ("first_block", "taylorseer")
OFFLOADS = ("none", "model")
# What an attention backend needs installed (diffusers raises at run time otherwise).
_BACKEND_PACKAGES = {"flash": "flash_attn", "flash_varlen": "flash_attn", "_flash_3": "flash_attn_interface",
                     "_flash_varlen_3": "flash_attn_interface", "sage": "sageattention",
                     "sage_varlen": "sageattention", "xformers": "xformers"}


@dataclass(frozen=True)
class SpeedOptions:
    attention_backend: str | None = None
    cache: str | None = None
    compile: bool = False
    offload: str = "none"
    vae_tiling: bool = False

    @classmethod
    def of(cls, spec: dict[str, Any]) -> "SpeedOptions":
        options = dict(spec.get("options") or {})
        unknown = set(options) - {"attention_backend", "cache", "compile", "offload", "vae_tiling"}
        if unknown:
            raise ValueError(f"unknown speed option(s) {', '.join(sorted(unknown))}; known: attention_backend, "
                             "cache, compile, offload, vae_tiling")
        return cls(attention_backend=options.get("attention_backend") or None, cache=options.get("cache") or None,
                   compile=bool(options.get("compile", False)), offload=str(options.get("offload") or "none"),
                   vae_tiling=bool(options.get("vae_tiling", False)))

    def as_dict(self) -> dict[str, Any]:
        return {"attention_backend": self.attention_backend, "cache": self.cache, "compile": self.compile,
                "offload": self.offload, "vae_tiling": self.vae_tiling}


def fast_options(model: VideoModel) -> dict[str, Any]:
    """The speed options a GPU user would switch on for this model (the gpucheck's "fast" run)."""
    options: dict[str, Any] = {}
    if model.caches:
        # TaylorSeer, not FirstBlockCache: the latter's hooks break torch.compile's full graph (checked on the
        # tiny Wan: "Unsupported hasattr call"), and compile is the larger gain.
        options["cache"] = "taylorseer"
    if model.compile_blocks:
        options["compile"] = True
    if model.attention_backends:
        options["attention_backend"] = "flash" if not availability.missing_packages("flash_attn") else "_native_cudnn"
    return options


# ----- availability ---------------------------------------------------------------------------------------

def model_of(spec: dict[str, Any]) -> VideoModel:
    key = spec.get("model") or DEFAULT_MODEL
    if key not in MODELS:
        raise ValueError(f"unknown video model {key!r}; known: {', '.join(MODELS)}")
    return MODELS[key]


def options_problem(model: VideoModel, options: SpeedOptions) -> str:
    problems = []
    if options.cache and options.cache not in CACHES:
        problems.append(f"unknown cache {options.cache!r} (known: {', '.join(CACHES)})")
    elif options.cache and options.cache not in model.caches:
        have = ", ".join(model.caches) or "none"
        problems.append(f"{model.label} has no {options.cache} step cache in diffusers 0.42 (supported: {have})")
    if options.compile and options.cache == "first_block":
        problems.append("the first_block cache cannot be compiled (its hooks break torch.compile's full graph); "
                        "use cache=taylorseer with compile, or leave compile off")
    if options.compile and not model.compile_blocks:
        problems.append(f"regional compile needs repeated transformer blocks, which {model.label} does not declare")
    if options.attention_backend and not model.attention_backends:
        problems.append(f"{model.label} ignores attention backends (its attention processor does not dispatch)")
    if options.attention_backend:
        backend = options.attention_backend
        needed = "kernels" if backend.endswith("_hub") else _BACKEND_PACKAGES.get(backend)
        if needed and availability.missing_packages(needed):
            problems.append(f"attention backend {backend!r} needs the {needed} package")
    if options.offload not in OFFLOADS:
        problems.append(f"offload must be one of {', '.join(OFFLOADS)}, not {options.offload!r}")
    return "; ".join(problems)


def _config_of(source: str, model: VideoModel, name: str) -> dict[str, Any] | None:
    """A component's config.json (e.g. transformer/config.json) from the folder or the HF cache, if there."""
    folder = Path(source).expanduser()
    file = folder / name if folder.is_dir() else availability.cached_file(source, name, model.revision)
    if file is None or not file.is_file():
        return None
    return json.loads(file.read_text())


def unavailable(spec: dict[str, Any], has_checker: bool = False) -> str:
    """Why this video model cannot run here ("" when it can), naming everything to fix."""
    try:
        model = model_of(spec)
        options = SpeedOptions.of(spec)
    except ValueError as exc:
        return str(exc)
    path = spec.get("path")
    weights = (availability.folder_problem(path, "model_index.json") if path
               else availability.hub_cache_problem(model.hub_id, "model_index.json", model.revision))
    device = spec.get("device") or "cuda"
    problems = [availability.packages_problem("torch", "diffusers", "transformers", "accelerate", *model.packages),
                availability.cuda_problem() if device.startswith("cuda") else "", weights, options_problem(model, options)]
    if model.needs_torchvision:
        transformer = _config_of(str(path or model.hub_id), model, "transformer/config.json")
        if transformer is None or transformer.get("concat_padding_mask", True):
            problems.append(availability.torchvision_problem())
    if model.needs_guardrail and not has_checker:
        problems.append(availability.packages_problem("cosmos_guardrail"))
    return availability.join(*problems)


def build(spec: dict[str, Any], components: dict[str, Any] | None = None) -> "DiffusersVGM":
    """The backend of a spec (loading waits for the first generation). `components` replaces pipeline
    components at load time (e.g. a Cosmos safety checker). Raises BackendError when it cannot run here."""
    problem = unavailable(spec, has_checker="safety_checker" in (components or {}))
    if problem:
        raise BackendError(f"{spec.get('model') or DEFAULT_MODEL} cannot run here: {problem}")
    return DiffusersVGM(spec, model_of(spec), components)


# ----- clip geometry ------------------------------------------------------------------------------------------

def frame_count(model: VideoModel, seconds: float, fps: float, max_frames: int | None = None) -> int:
    """Frames for a clip of `seconds`: step * k + 1 with step * k = round(seconds * fps) rounded down (the
    paper's rule for Wan: 6 s at 16 fps -> 97), at least one step, at most the model's longest clip; a
    fixed-length model (CogVideoX-5B I2V) always makes its one length."""
    step = model.frame_step
    wanted = max(step, (int(round(seconds * fps)) // step) * step) + 1
    limit = min(x for x in (max_frames, model.max_frames, 10_000) if x)
    if model.fixed_frames:
        wanted = limit
    if wanted > limit:
        wanted = ((limit - 1) // step) * step + 1
    return wanted


def clip_size(image_hw: tuple[int, int], native: tuple[int, int], multiple: int,
              rule: Literal["area", "fixed"]) -> tuple[int, int]:
    """(width, height) of the clip: the native size for a fixed-size model, else the input's aspect ratio
    within the native area, each side rounded down to `multiple`."""
    if rule == "fixed":
        return native[0] // multiple * multiple, native[1] // multiple * multiple
    height, width = image_hw
    area = native[0] * native[1]
    aspect = width / height
    w = math.sqrt(area * aspect)
    h = w / aspect
    return max(multiple, int(w) // multiple * multiple), max(multiple, int(h) // multiple * multiple)


def fit_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The image cropped to the clip's aspect ratio (centred) and resized to `size` (width, height)."""
    from PIL import Image as PILImage

    height, width = image.shape[:2]
    target = size[0] / size[1]
    if width / height > target:
        crop = int(round(height * target))
        left = (width - crop) // 2
        image = image[:, left:left + crop]
    elif width / height < target:
        crop = int(round(width / target))
        top = (height - crop) // 2
        image = image[top:top + crop]
    resized = PILImage.fromarray(np.ascontiguousarray(image)).resize(size, PILImage.Resampling.LANCZOS)
    return np.asarray(resized)


def to_uint8(frames: Any) -> np.ndarray:
    """Pipeline output (floats in [0, 1], or PIL images) as (n, H, W, 3) uint8."""
    if isinstance(frames, list) and frames and not isinstance(frames[0], np.ndarray):
        return np.stack([np.asarray(f.convert("RGB")) for f in frames])
    array = np.asarray(frames)
    if array.dtype == np.uint8:
        return array
    return (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)


# ----- the backend ---------------------------------------------------------------------------------------------

class _Stop(Exception):
    """Raised from the step callback: aborts the denoising loop at once, before the VAE decode."""

    def __init__(self, step: int, total: int) -> None:
        super().__init__(f"stopped by a person at denoising step {step} of {total}")
        self.step = step
        self.total = total


@dataclass
class _Geometry:
    multiple: int
    fixed: tuple[int, int] | None = None  # a size the transformer was built for (learned position embeddings)
    max_frames: int | None = None


class DiffusersVGM:
    """A VGM (collabvr.backends.VGM) running one table model. One pipeline per process (the registry caches
    the backend); calls take turns on it (a diffusers pipeline holds per-call state)."""

    def __init__(self, spec: dict[str, Any], model: VideoModel, components: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.model = model
        self.source = str(spec.get("path") or model.hub_id)
        self.device = str(spec.get("device") or "cuda")
        self.fps = float(spec.get("fps") or model.fps)
        self.native = tuple(spec.get("size") or model.native)  # type: ignore[assignment]
        self.steps = int(spec.get("steps") or model.steps)
        self.guidance = float(spec.get("guidance") if spec.get("guidance") is not None else model.guidance)
        self.negative_prompt = str(spec.get("negative_prompt", NEGATIVE_PROMPT))
        self.options = SpeedOptions.of(spec)
        self.info = BackendInfo(name=f"diffusers/{model.key}", role="vgm", simulated=False,
                                uses_gpu=self.device.startswith("cuda"))
        self._components = dict(components or {})
        self._pipe: Any = None
        self._geometry: _Geometry | None = None
        self._lock = threading.Lock()
        self._denoise = zerogpu.gpu(self._call_pipeline, int(spec.get("zerogpu_duration_s", 300)))

    # ----- loading ------------------------------------------------------------------------------------------
    def _load(self) -> Any:
        import diffusers
        import torch

        on_gpu = self.device.startswith("cuda")
        dtype = getattr(torch, self.spec.get("dtype") or self.model.dtype) if on_gpu else torch.float32
        dtypes: dict[str, Any] = {"default": dtype}
        if self.model.vae_float32:
            dtypes["vae"] = torch.float32
        options: dict[str, Any] = {"dtype": dtypes, "local_files_only": True}
        if self.model.revision and not Path(self.source).expanduser().is_dir():
            options["revision"] = self.model.revision
        pipeline_class = getattr(diffusers, self.model.pipeline)
        try:
            if self.model.needs_guardrail and "safety_checker" not in self._components:
                from cosmos_guardrail import CosmosSafetyChecker  # NVIDIA's licence requires it for Cosmos

                self._components["safety_checker"] = CosmosSafetyChecker()
            pipe = pipeline_class.from_pretrained(self.source, **options, **self._components)
        except Exception as exc:
            raise BackendError(f"could not load {self.model.label} from {self.source}: {type(exc).__name__}: {exc}") from None
        pipe.set_progress_bar_config(disable=True)
        try:
            self._apply_options(pipe)
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":
                raise BackendError(f"{self.model.label} does not fit in GPU memory; try options offload=model") from None
            raise BackendError(f"{self.model.label}: the speed options {self.options.as_dict()} could not be applied: "
                               f"{type(exc).__name__}: {exc}") from None
        return pipe

    def adopt(self, pipe: Any) -> None:
        """Run an already built pipeline (e.g. the gpucheck's real-size random-weight ones) instead of
        loading one: the spec's speed options are applied to it as to a loaded one."""
        pipe.set_progress_bar_config(disable=True)
        self._apply_options(pipe)
        with self._lock:
            self._pipe = pipe
            self._geometry = self._measure(pipe)

    def _transformers(self, pipe: Any) -> list[Any]:
        return [m for m in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)) if m is not None]

    def _apply_options(self, pipe: Any) -> None:
        options = self.options
        for transformer in self._transformers(pipe):
            if options.attention_backend:
                transformer.set_attention_backend(options.attention_backend)
            if options.cache:
                from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

                config = FirstBlockCacheConfig(threshold=0.05) if options.cache == "first_block" else TaylorSeerCacheConfig()
                transformer.enable_cache(config)  # on both experts of Wan 2.2 A14B
            if options.compile:
                transformer.compile_repeated_blocks(fullgraph=True)
        if options.offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if options.vae_tiling:
            pipe.vae.enable_tiling()

    def _measure(self, pipe: Any) -> _Geometry:
        family = self.model.family
        if family == "wan":
            return _Geometry(max(self.model.size_multiple,
                                 pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]))
        if family == "ltx":
            return _Geometry(max(32, pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size))
        if family == "cogvideox":
            config = pipe.transformer.config
            if config.use_learned_positional_embeddings:
                scale = pipe.vae_scale_factor_spatial
                return _Geometry(8, fixed=(config.sample_width * scale, config.sample_height * scale),
                                 max_frames=config.sample_frames)
            return _Geometry(16)
        latent_frames = pipe.transformer.config.max_size[0]
        return _Geometry(16, max_frames=(latent_frames - 1) * pipe.vae_scale_factor_temporal + 1)

    @contextmanager
    def _turn(self, cancel: threading.Event | None) -> Iterator[None]:
        """Take the pipeline; a Stop while another session's call holds it gives up waiting."""
        while not self._lock.acquire(timeout=0.05):
            if cancel is not None and cancel.is_set():
                raise BackendCancelled("stopped while waiting for the video model (another session was using it)")
        try:
            yield
        finally:
            self._lock.release()

    # ----- generating ---------------------------------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> GeneratedClip:
        cancel = request.cancel
        with self._turn(cancel):
            if cancel is not None and cancel.is_set():
                raise BackendCancelled("stopped before the generation started")
            load_s = 0.0
            if self._pipe is None:
                if request.progress:
                    request.progress(0, self.steps)
                started = time.perf_counter()
                self._pipe = self._load()
                self._geometry = self._measure(self._pipe)
                load_s = time.perf_counter() - started
            return self._generate(request, load_s)

    def _generate(self, request: GenerateRequest, load_s: float) -> GeneratedClip:
        import torch

        pipe, geometry = self._pipe, self._geometry
        assert geometry is not None
        size = geometry.fixed or clip_size(request.image.shape[:2], self.native, geometry.multiple,
                                           self.model.size_rule)
        n_frames = frame_count(self.model, request.seconds, self.fps, geometry.max_frames)
        image = fit_image(np.asarray(request.image, dtype=np.uint8), size)
        generator = torch.Generator("cpu" if self.options.offload == "model" else self.device).manual_seed(request.seed)
        call = self._call_arguments(pipe, image, request.prompt, size, n_frames, generator)

        def on_step(pipeline: Any, index: int, timestep: Any, tensors: dict) -> dict:
            total = pipeline.num_timesteps
            if request.cancel is not None and request.cancel.is_set():
                raise _Stop(index + 1, total)
            if request.progress:
                request.progress(index + 1, total)
            return tensors

        started = time.perf_counter()
        try:
            frames = self._denoise(pipe, call, on_step)
        except _Stop as stop:
            self._after_abort()
            raise BackendCancelled(str(stop)) from None
        except BackendError:
            raise
        except Exception as exc:
            self._after_abort()
            raise self._failure(exc, size, n_frames) from None
        compute_s = time.perf_counter() - started
        frames = to_uint8(frames)
        info = {"model": self.model.key, "source": self.source, "size": list(size), "frames": int(len(frames)),
                "frames_asked": int(round(request.seconds * self.fps)) + 1, "steps": self.steps,
                "guidance": self.guidance, "device": self.device, "options": self.options.as_dict(),
                "compute_s": round(compute_s, 3)}
        if load_s:
            info["load_s"] = round(load_s, 3)
        return GeneratedClip(frames=frames, fps=self.fps, info=info)

    def _call_arguments(self, pipe: Any, image: np.ndarray, prompt: str, size: tuple[int, int], n_frames: int,
                        generator: Any) -> dict[str, Any]:
        from PIL import Image as PILImage

        picture = PILImage.fromarray(image)
        call: dict[str, Any] = dict(prompt=prompt, negative_prompt=self.negative_prompt, width=size[0], height=size[1],
                                    num_frames=n_frames, num_inference_steps=self.steps, guidance_scale=self.guidance,
                                    generator=generator, output_type="np",
                                    callback_on_step_end_tensor_inputs=["latents"])
        family = self.model.family
        if family == "cosmos":
            # A one-frame "video" conditions the first latent frame, as image= does, without torchvision.
            call.update(video=[picture], num_latent_conditional_frames=1)
        else:
            call["image"] = picture
        if family == "wan" and getattr(pipe.config, "boundary_ratio", None) is not None:
            call["guidance_scale_2"] = float(self.spec.get("guidance_2") or self.model.guidance_2 or self.guidance)
        if family == "ltx":
            call["frame_rate"] = self.fps
            if getattr(pipe.vae.config, "timestep_conditioning", False):
                call.update(decode_timestep=0.05, decode_noise_scale=0.025)
        if family == "cogvideox":
            call.update(use_dynamic_cfg=True, max_sequence_length=pipe.transformer.config.max_text_seq_length)
        return call

    @staticmethod
    def _call_pipeline(pipe: Any, call: dict[str, Any], on_step: Any) -> Any:
        return pipe(**call, callback_on_step_end=on_step).frames[0]

    def _after_abort(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _failure(self, exc: Exception, size: tuple[int, int], n_frames: int) -> BackendError:
        if type(exc).__name__ == "OutOfMemoryError":
            return BackendError(f"{self.model.label} ran out of GPU memory at {size[0]}x{size[1]}, {n_frames} frames; "
                                "try options offload=model and vae_tiling, a shorter clip, or a smaller size")
        return BackendError(f"{self.model.label} failed: {type(exc).__name__}: {exc}")

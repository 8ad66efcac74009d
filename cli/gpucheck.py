"""`python -m collabvr gpucheck`: how fast the real video models run on this machine's GPU, without
downloading anything.

It builds Wan 2.2 TI2V-5B and LTX-Video at their real sizes from configs written here, with random weights
(the speed of a network does not depend on its weights), then, for each, through the production backend
(collabvr.backends.video_models):
- one clip at the native size with the default options, inside a real engine run (plan, generate, verify,
  accept, finish with an instant scripted VLM), which also gives the loop's own overhead per attempt;
- the same clip with the fast options (step cache, regional torch.compile, a fused attention backend).
It prints seconds of compute per second of video, peak GPU memory, the fast options' speed-up and the
loop's overhead as a share of generation time. Each timed run follows a short warm-up run of the same
shape (so compilation and kernel selection are not timed). The text encoders are real-size too, with a
small in-memory vocabulary (the embedding lookup is not what costs). Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cli.common import SubParsers

MODELS = ("wan2.2-ti2v-5b", "ltx-video")

# Wan 2.2 TI2V-5B: transformer/config.json and vae/config.json of Wan-AI/Wan2.2-TI2V-5B-Diffusers (the VAE's
# latents_mean/std replaced by 0/1: they only rescale latents).
WAN_TI2V_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48,
                            out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30,
                            cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
WAN_TI2V_VAE = dict(base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                    attn_scales=[], temperal_downsample=[False, True, True], dropout=0.0, in_channels=12,
                    out_channels=12, is_residual=True, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
                    latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
UMT5_XXL_ENCODER = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                        relative_attention_num_buckets=32, feed_forward_proj="gated-gelu", is_encoder_decoder=False)
T5_XXL_ENCODER = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                      relative_attention_num_buckets=32, feed_forward_proj="gated-gelu")
# LTX-Video 0.9: diffusers' LTXVideoTransformer3DModel and AutoencoderKLLTXVideo defaults are the 2B model's.


def register(sub: SubParsers) -> None:
    p = sub.add_parser("gpucheck", help="measure the real video models' speed on this GPU (random weights, no download)",
                       description="Build Wan 2.2 TI2V-5B and LTX-Video at real size with random weights and measure "
                                   "a clip at native size with default and fast options. Needs CUDA; without it, "
                                   "says so and exits 0.")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: each model's own)")
    p.add_argument("--seconds", type=float, default=None,
                   help="clip length (default: each model's training length: 5 s for Wan TI2V-5B, 161 frames for LTX)")
    p.add_argument("--no-fast", action="store_true", help="skip the run with the fast options")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_gpucheck)


def cmd_gpucheck(args: argparse.Namespace) -> int:
    from collabvr.backends import availability

    problem = availability.cuda_problem()
    if problem:
        print(f"gpucheck: nothing measured: {problem}.")
        return 0
    chosen = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
        return 2
    results = []
    for key in chosen:
        results.append(measure(key, REAL_BUILDERS[key], device="cuda", steps=args.steps, seconds=args.seconds,
                               fast=not args.no_fast))
        if not args.json:
            print(report_line(results[-1]), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


# ----- building real-size pipelines with random weights ------------------------------------------------------

def _tokenizer() -> Any:
    from transformers import T5Tokenizer

    words = "a the red blue green cup ball block moves slides left right up down camera still scene".split()
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)] + [("\u2581" + w, -5.0) for w in words]
    vocab += [(c, -8.0) for c in "abcdefghijklmnopqrstuvwxyz.,"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def build_wan_ti2v(device: str) -> Any:
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tok = _tokenizer()
    with torch.device(device):
        transformer = WanTransformer3DModel(**WAN_TI2V_TRANSFORMER).to(torch.bfloat16)
        vae = AutoencoderKLWan(**WAN_TI2V_VAE).to(torch.float32)
        encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), **UMT5_XXL_ENCODER)).to(torch.bfloat16).eval()
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0,
                                        num_train_timesteps=1000)
    return WanImageToVideoPipeline(tokenizer=tok, text_encoder=encoder, vae=vae, scheduler=scheduler,
                                   transformer=transformer, image_encoder=None, image_processor=None,
                                   transformer_2=None, boundary_ratio=None, expand_timesteps=True)


def build_ltx(device: str) -> Any:
    import torch
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline,
                           LTXVideoTransformer3DModel)
    from transformers import T5Config, T5EncoderModel

    tok = _tokenizer()
    with torch.device(device):
        transformer = LTXVideoTransformer3DModel().to(torch.bfloat16)
        vae = AutoencoderKLLTXVideo().to(torch.bfloat16)
        encoder = T5EncoderModel(T5Config(vocab_size=len(tok), **T5_XXL_ENCODER)).to(torch.bfloat16).eval()
    return LTXImageToVideoPipeline(tokenizer=tok, text_encoder=encoder, vae=vae,
                                   scheduler=FlowMatchEulerDiscreteScheduler(), transformer=transformer)


REAL_BUILDERS: dict[str, Callable[[str], Any]] = {"wan2.2-ti2v-5b": build_wan_ti2v, "ltx-video": build_ltx}
NATIVE_SECONDS = {"wan2.2-ti2v-5b": 5.0, "ltx-video": 160 / 24}


# ----- measuring ---------------------------------------------------------------------------------------------

class _InstantVLM:
    """Plans one step and accepts its clip at once: the engine run then times the loop, not a VLM."""

    def __init__(self) -> None:
        from collabvr.backends import BackendInfo

        self.info = BackendInfo(name="gpucheck/instant", role="vlm", simulated=True)

    def plan(self, request: Any) -> Any:
        from collabvr.backends import Plan, VLMReply

        return VLMReply(Plan(observation="a scene", remaining_goal="the task", task_complete=False,
                             instruction=request.task_prompt, target_state="done", estimated_steps_remaining=0))

    def verify(self, request: Any) -> Any:
        from collabvr.backends import Verdict, VLMReply

        return VLMReply(Verdict(verdict="accept", action_executed=True, progress="complete", confidence=1.0,
                                reason="gpucheck accepts every clip"))

    def route(self, request: Any) -> Any:
        raise NotImplementedError("gpucheck never routes")

    def select(self, request: Any) -> Any:
        raise NotImplementedError("gpucheck never selects")


@dataclass
class _Run:
    compute_s: float
    frames: int
    fps: float
    peak_gib: float | None


def _peak(device: str, reset: bool = False) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    if reset:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def _backend(key: str, pipe: Any, device: str, steps: int | None, options: dict[str, Any],
             size: tuple[int, int] | None) -> Any:
    from collabvr.backends import video_models

    spec: dict[str, Any] = {"kind": "diffusers", "model": key, "device": device, "options": options}
    if steps:
        spec["steps"] = steps
    if size:
        spec["size"] = list(size)
    vgm = video_models.DiffusersVGM(spec, video_models.MODELS[key])
    vgm.adopt(pipe)
    return vgm


def _warm_up(vgm: Any, image: np.ndarray, seconds: float) -> None:
    """One short run of the timed shape: compilation, autotuning and allocator growth happen here."""
    from collabvr.backends import GenerateRequest

    steps, vgm.steps = vgm.steps, 2
    try:
        vgm.generate(GenerateRequest(image=image, prompt="warm up", seconds=seconds, seed=1))
    finally:
        vgm.steps = steps


def _timed(vgm: Any, image: np.ndarray, seconds: float, device: str) -> _Run:
    from collabvr.backends import GenerateRequest

    _peak(device, reset=True)
    clip = vgm.generate(GenerateRequest(image=image, prompt="the red cup slides to the left", seconds=seconds, seed=3))
    return _Run(clip.info["compute_s"], len(clip.frames), clip.fps, _peak(device))


def _engine_run(vgm: Any, image: np.ndarray, seconds: float, device: str, folder: Path) -> tuple[_Run, float, float]:
    """One attempt through a real engine: returns the generation, the loop's own time for the attempt (all
    commands' wall time minus the generation's compute), and the attempt's whole wall time."""
    from collabvr.artifacts import ArtifactFolder
    from collabvr.config import LoopConfig
    from collabvr.engine import Engine
    from collabvr.events import TaskSpec
    from collabvr.store import MemoryEventStore

    engine = Engine.start(MemoryEventStore(), ArtifactFolder(folder), _InstantVLM(), vgm,
                          task=TaskSpec(prompt="the red cup slides to the left", source="upload"), input_image=image,
                          config=LoopConfig(n_max=1, m=1, first_step_seconds=seconds), seed=3)
    _peak(device, reset=True)
    wall = 0.0
    compute = 0.0
    frames, fps = 0, vgm.fps
    while engine.state.finished is None:
        started = time.perf_counter()
        result = engine.step()
        wall += time.perf_counter() - started
        for event in result.events:
            if event.type == "ClipGenerated":
                compute = float(event.info["compute_s"])  # type: ignore[union-attr]
                frames, fps = event.n_frames, event.fps  # type: ignore[union-attr]
            if event.type == "BackendFailed":
                raise RuntimeError(f"the engine run failed: {event.message}")  # type: ignore[union-attr]
    return _Run(compute, frames, fps, _peak(device)), wall - compute, wall


def measure(key: str, builder: Callable[[str], Any], *, device: str, steps: int | None = None,
            seconds: float | None = None, fast: bool | dict[str, Any] = True,
            native: tuple[int, int] | None = None) -> dict[str, Any]:
    """Build, warm up and time one model with the default options (in an engine run) and the fast ones (the
    model's fast_options, or the options given)."""
    from collabvr.backends import video_models

    model = video_models.MODELS[key]
    width, height = native or model.native
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    seconds = seconds or NATIVE_SECONDS[key]
    result: dict[str, Any] = {"model": key, "device": device, "size": [width, height]}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        vgm = _backend(key, builder(device), device, steps, {}, native)
        result["build_s"] = round(time.perf_counter() - started, 1)
        _warm_up(vgm, image, seconds)
        default, overhead_s, attempt_s = _engine_run(vgm, image, seconds, device, Path(folder))
        video_s = default.frames / default.fps
        result.update(steps=vgm.steps, frames=default.frames, fps=default.fps, video_s=round(video_s, 3),
                      default_compute_s=round(default.compute_s, 2),
                      default_s_per_video_s=round(default.compute_s / video_s, 2),
                      default_peak_gib=default.peak_gib, loop_overhead_s=round(overhead_s, 3),
                      loop_overhead_share=round(overhead_s / default.compute_s, 4),
                      attempt_wall_s=round(attempt_s, 2))
        del vgm
        _free(device)
        if fast:
            options = fast if isinstance(fast, dict) else video_models.fast_options(model)
            vgm = _backend(key, builder(device), device, steps, options, native)
            _warm_up(vgm, image, seconds)
            quick = _timed(vgm, image, seconds, device)
            result.update(fast_options=options, fast_compute_s=round(quick.compute_s, 2),
                          fast_s_per_video_s=round(quick.compute_s / video_s, 2), fast_peak_gib=quick.peak_gib,
                          speedup=round(default.compute_s / quick.compute_s, 2))
            del vgm
            _free(device)
    return result


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def report_line(r: dict[str, Any]) -> str:
    lines = [f"{r['model']}: {r['size'][0]}x{r['size'][1]}, {r['frames']} frames at {r['fps']:g} fps "
             f"({r['video_s']:.2f} s of video), {r['steps']} steps, on {r['device']}",
             f"  default: {r['default_compute_s']:.1f} s of compute = {r['default_s_per_video_s']:.1f} s per second "
             f"of video; peak GPU memory {r['default_peak_gib']} GiB (includes the text encoder and the VAE)",
             f"  loop overhead per attempt: {r['loop_overhead_s']:.2f} s = {100 * r['loop_overhead_share']:.2f}% "
             f"of the generation (mp4 writing, SSIM, frames for the verifier, events)"]
    if "speedup" in r:
        lines.append(f"  fast ({', '.join(f'{k}={v}' for k, v in r['fast_options'].items())}): "
                     f"{r['fast_compute_s']:.1f} s = {r['fast_s_per_video_s']:.1f} s per second of video; "
                     f"peak {r['fast_peak_gib']} GiB; speed-up x{r['speedup']:.2f}")
    return "\n".join(lines)

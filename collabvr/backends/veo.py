"""Veo as the VGM, through google-genai: image-to-video, `veo-3.1-fast-generate-preview` by default.

google-genai 3.6.1 submits video generation only on Vertex AI; with a Gemini API key its generate_videos
raises. So with a key the request is POSTed to the REST method `:predictLongRunning` directly (the body the
2.x SDK sent), and the returned operation is polled and the video downloaded with the SDK
(`operations.get` and `files.download` still speak the Gemini API). With Vertex AI (project and location)
the SDK's own generate_videos is used.

Clip lengths follow the model: Veo 3.1 makes 4, 6 or 8 second clips at 24 fps (1080p and 4k only 8 s), so
a request is rounded up to the next allowed length (at most 8 s); what was asked and made is in the clip's
info. Polling waits on the request's cancel event, so Stop ends the wait at once (the remote job may still
finish and be billed; the Gemini API has no way to cancel it). The API takes no seed: a retry differs.

Spec: {"kind": "veo", "model": "veo-3.1-fast-generate-preview", "resolution": "720p", "base_url": optional,
"poll_s": 10, "timeout_s": 600, "negative_prompt": optional, "vertex": false, "project": ..., "location": ...,
"api_key_env": [...], "attempts": 3, "initial_delay_s": 2.0}.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from collabvr import media
from collabvr.backends import availability
from collabvr.backends.gemini import RETRYABLE_CODES, key_names, map_error
from collabvr.backends.protocols import BackendCancelled, BackendError, BackendInfo, GeneratedClip, GenerateRequest

DEFAULT_MODEL = "veo-3.1-fast-generate-preview"
API_VERSION = "v1beta"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DURATIONS = (4, 6, 8)
FPS = 24.0
EXPECTED_S = 90.0  # a typical Veo 3.1 fast job, for the progress bar only


def clip_seconds(seconds: float, resolution: str = "720p") -> int:
    """The clip length Veo is asked for: the shortest allowed length >= `seconds` (8 at most; 1080p and 4k
    take 8 only)."""
    if resolution != "720p":
        return 8
    return next((d for d in DURATIONS if d >= seconds - 1e-9), DURATIONS[-1])


def aspect_ratio(image_hw: tuple[int, int]) -> str:
    height, width = image_hw
    return "16:9" if width >= height else "9:16"


def _vertex(spec: dict[str, Any]) -> bool:
    if "vertex" in spec:
        return bool(spec["vertex"])
    return os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true")


def unavailable(spec: dict[str, Any]) -> str:
    """Why Veo cannot run here ("" when it can): google-genai missing, no key, or no Vertex project."""
    packages = availability.packages_problem("google.genai", "httpx")
    if _vertex(spec):
        project = spec.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT")
        location = spec.get("location") or os.environ.get("GOOGLE_CLOUD_LOCATION")
        missing = "" if project and location else \
            "Vertex AI needs a project and a location (GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION)"
        return availability.join(packages, missing)
    return availability.join(packages, availability.api_key_problem(key_names(spec)))


def build(spec: dict[str, Any]) -> "VeoVGM":
    problem = unavailable(spec)
    if problem:
        raise BackendError(f"Veo cannot run here: {problem}")
    return VeoVGM(spec)


class VeoVGM:
    """A VGM (collabvr.backends.VGM) on Veo. Thread-safe: each call has its own operation."""

    fps = FPS

    def __init__(self, spec: dict[str, Any]) -> None:
        from google import genai
        from google.genai import types

        self._types = types
        self.model = str(spec.get("model") or DEFAULT_MODEL)
        self.resolution = str(spec.get("resolution") or "720p")
        self.poll_s = float(spec.get("poll_s", 10.0))
        self.timeout_s = float(spec.get("timeout_s", 600.0))
        self.negative_prompt = spec.get("negative_prompt")
        self.attempts = int(spec.get("attempts", 3))
        self.initial_delay_s = float(spec.get("initial_delay_s", 2.0))
        self.vertex = _vertex(spec)
        self.base_url = str(spec.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self._key = "" if self.vertex else (availability.api_key(key_names(spec)) or "")
        options = types.HttpOptions(base_url=spec.get("base_url") or None,
                                    api_version=None if self.vertex else API_VERSION)
        if self.vertex:
            self._client = genai.Client(vertexai=True, http_options=options,
                                        project=spec.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT"),
                                        location=spec.get("location") or os.environ.get("GOOGLE_CLOUD_LOCATION"))
        else:
            self._client = genai.Client(api_key=self._key, http_options=options)
        self.info = BackendInfo(name=f"veo/{self.model}", role="vgm", simulated=False)

    def redact(self, text: str) -> str:
        return text.replace(self._key, "[api key]") if self._key else text

    # ----- generating ---------------------------------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> GeneratedClip:
        if request.cancel is not None and request.cancel.is_set():
            raise BackendCancelled("stopped before the Veo job was submitted")
        seconds = clip_seconds(request.seconds, self.resolution)
        ratio = aspect_ratio(request.image.shape[:2])
        png = media.encode_png(request.image)
        started = time.perf_counter()
        operation = (self._submit_vertex(request.prompt, png, seconds, ratio, request.seed) if self.vertex
                     else self._submit(request.prompt, png, seconds, ratio))
        operation = self._wait(operation, request, started)
        video = self._video(operation)
        try:
            data = self._client.files.download(file=video) if not getattr(video, "video_bytes", None) else video.video_bytes
        except Exception as exc:
            raise map_error(exc, f"Veo ({self.model}), downloading the video", self.redact) from None
        frames, fps = _decode(data)
        info = {"model": self.model, "seconds_asked": request.seconds, "seconds_requested_from_veo": seconds,
                "aspect_ratio": ratio, "resolution": self.resolution, "operation": operation.name,
                "frames": int(len(frames)), "wall_s": round(time.perf_counter() - started, 3),
                "seed": "not supported by the Gemini API: a retry differs" if not self.vertex else request.seed,
                "audio": "Veo 3.1 adds audio; the loop keeps the frames only"}
        return GeneratedClip(frames=frames, fps=fps, info=info)

    def _submit(self, prompt: str, png: bytes, seconds: int, ratio: str) -> Any:
        """POST :predictLongRunning with the API key (the SDK 3.x refuses to submit on the Gemini API)."""
        import httpx

        parameters: dict[str, Any] = {"sampleCount": 1, "durationSeconds": seconds, "aspectRatio": ratio,
                                      "resolution": self.resolution}
        if self.negative_prompt:
            parameters["negativePrompt"] = self.negative_prompt
        body = {"instances": [{"prompt": prompt, "image": {"bytesBase64Encoded": base64.b64encode(png).decode(),
                                                          "mimeType": "image/png"}}],
                "parameters": parameters}
        url = f"{self.base_url}/{API_VERSION}/models/{self.model}:predictLongRunning"
        delay = self.initial_delay_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = httpx.post(url, json=body, headers={"x-goog-api-key": self._key}, timeout=120.0)
            except httpx.TimeoutException:
                problem, retryable = "the submission timed out", True
            except httpx.TransportError as exc:
                problem, retryable = f"could not reach the service ({type(exc).__name__})", True
            else:
                if response.status_code == 200:
                    name = response.json().get("name")
                    if not name:
                        raise BackendError(f"Veo ({self.model}) accepted the job but returned no operation name")
                    return self._types.GenerateVideosOperation(name=name)
                problem = f"{response.status_code}: {self.redact(_error_text(response))}"
                retryable = response.status_code in RETRYABLE_CODES
                if response.status_code in (401, 403):
                    raise BackendError(f"Veo ({self.model}): the API key was refused ({problem}); check GEMINI_API_KEY")
            if not retryable:
                raise BackendError(f"Veo ({self.model}) refused the job ({problem})")
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        raise BackendError(f"Veo ({self.model}) could not take the job after {self.attempts} tries ({problem})",
                           retryable=True)

    def _submit_vertex(self, prompt: str, png: bytes, seconds: int, ratio: str, seed: int) -> Any:
        types = self._types
        try:
            return self._client.models.generate_videos(
                model=self.model,
                source=types.GenerateVideosSource(prompt=prompt, image=types.Image(image_bytes=png, mime_type="image/png")),
                config=types.GenerateVideosConfig(number_of_videos=1, duration_seconds=seconds, aspect_ratio=ratio,
                                                  resolution=self.resolution, seed=seed,
                                                  negative_prompt=self.negative_prompt))
        except Exception as exc:
            raise map_error(exc, f"Veo ({self.model}) on Vertex AI, submitting") from None

    def _wait(self, operation: Any, request: GenerateRequest, started: float) -> Any:
        """Poll until done; Stop ends the wait at once, a time-out is retryable."""
        failures = 0
        while not operation.done:
            elapsed = time.perf_counter() - started
            if request.progress:
                request.progress(int(min(elapsed, EXPECTED_S - 1)), int(EXPECTED_S))
            if elapsed > self.timeout_s:
                raise BackendError(f"Veo ({self.model}) did not finish within {self.timeout_s:.0f} s "
                                   f"(operation {operation.name})", retryable=True)
            if request.cancel is not None and request.cancel.wait(self.poll_s):
                raise BackendCancelled(f"stopped while Veo was generating (operation {operation.name} may still "
                                       "finish remotely and be billed)")
            if request.cancel is None:
                time.sleep(self.poll_s)
            try:
                operation = self._client.operations.get(operation)
                failures = 0
            except Exception as exc:
                failure = map_error(exc, f"Veo ({self.model}), polling", self.redact)
                failures += 1
                if not failure.retryable or failures >= 3:
                    raise failure from None
        if request.progress:
            request.progress(int(EXPECTED_S), int(EXPECTED_S))
        return operation

    def _video(self, operation: Any) -> Any:
        if operation.error:
            error = operation.error if isinstance(operation.error, dict) else {"message": str(operation.error)}
            code = int(error.get("code") or 0)
            raise BackendError(f"Veo ({self.model}) failed: {self.redact(str(error.get('message', error)))}"
                               + (f" ({code})" if code else ""), retryable=code in RETRYABLE_CODES)
        response = operation.response or operation.result
        videos = list(getattr(response, "generated_videos", None) or [])
        if not videos or videos[0].video is None:
            reasons = getattr(response, "rai_media_filtered_reasons", None)
            why = f"its safety filter removed it: {'; '.join(reasons)}" if reasons else "the response held no video"
            raise BackendError(f"Veo ({self.model}) returned no video ({why}); rephrase the instruction or change the image")
        return videos[0].video


def _error_text(response: Any) -> str:
    try:
        return str(response.json().get("error", {}).get("message") or response.text[:300])
    except ValueError:
        return response.text[:300]


def _decode(data: bytes) -> tuple[Any, float]:
    """The mp4's frames (uint8) and fps."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "veo.mp4"
        path.write_bytes(data)
        try:
            fps = media.probe(path).fps
            frames = media.read_frames(path)
        except Exception as exc:
            raise BackendError(f"Veo's video could not be read ({type(exc).__name__}: {exc})") from None
    return frames, float(fps)

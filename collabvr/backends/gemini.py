"""Gemini as the VLM, through google-genai: every role of collabvr.backends.prompted, with structured output
(the role's JSON schema), temperature 0.2, the clip as an mp4 (inline under `inline_limit_mb`, through the
Files API above it), retries with backoff on 429, 5xx and time-outs (the SDK's HttpRetryOptions), and token
usage in every reply.

The key comes from GEMINI_API_KEY or GOOGLE_API_KEY when the backend is built; it lives only in this
process's memory: never in a spec, an event, an export, a log line or an error message (messages are
scrubbed of it).

Spec: {"kind": "gemini", "model": "gemini-2.5-pro", "base_url": optional (a proxy, or a test server),
"attempts": 4, "initial_delay_s": 1.0, "max_delay_s": 30.0, "jitter_s": 1.0, "timeout_s": 300, "inline_limit_mb": 20,
"api_key_env": ["GEMINI_API_KEY", "GOOGLE_API_KEY"]}.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from collabvr import media
from collabvr.backends import availability
from collabvr.backends.prompted import ChatReply, ChatRequest, PromptedVLM, schema_json
from collabvr.backends.prompts import Clip, Image, Part, Text
from collabvr.backends.protocols import BackendError, BackendInfo, Usage

DEFAULT_MODEL = "gemini-2.5-pro"
API_VERSION = "v1beta"
TEMPERATURE = 0.2
RETRYABLE_CODES = (408, 429, 500, 502, 503, 504)
FILE_POLL_S = 1.0
FILE_WAIT_S = 300.0


def key_names(spec: dict[str, Any]) -> tuple[str, ...]:
    names = spec.get("api_key_env") or availability.API_KEY_ENV
    return (names,) if isinstance(names, str) else tuple(names)


def unavailable(spec: dict[str, Any]) -> str:
    """Why a Gemini VLM cannot run here ("" when it can): no key, or google-genai missing."""
    return availability.join(availability.packages_problem("google.genai"),
                             availability.api_key_problem(key_names(spec)))


def build(spec: dict[str, Any]) -> PromptedVLM:
    """The Gemini VLM of a spec; raises BackendError (before any network call) when it cannot run."""
    problem = unavailable(spec)
    if problem:
        raise BackendError(f"Gemini cannot run here: {problem}")
    chat = GeminiChat(spec, availability.api_key(key_names(spec)) or "")
    info = BackendInfo(name=f"gemini/{chat.model}", role="vlm", simulated=False)
    return PromptedVLM(chat, info)


class GeminiChat:
    """A ChatModel on the Gemini API (google-genai). Thread-safe: the SDK client is."""

    def __init__(self, spec: dict[str, Any], key: str) -> None:
        from google import genai
        from google.genai import types

        self._types = types
        self._key = key
        self.model = str(spec.get("model") or DEFAULT_MODEL)
        self.name = f"Gemini ({self.model})"
        self.inline_limit = int(float(spec.get("inline_limit_mb", 20)) * 1024 * 1024)
        retry = types.HttpRetryOptions(attempts=int(spec.get("attempts", 4)),
                                       initial_delay=float(spec.get("initial_delay_s", 1.0)),
                                       max_delay=float(spec.get("max_delay_s", 30.0)),
                                       jitter=float(spec.get("jitter_s", 1.0)),
                                       http_status_codes=list(RETRYABLE_CODES))
        options = types.HttpOptions(api_version=API_VERSION, timeout=int(float(spec.get("timeout_s", 300)) * 1000),
                                    retry_options=retry, base_url=spec.get("base_url") or None)
        self._client = genai.Client(api_key=key, http_options=options)
        self._uploads: dict[tuple[str, int], Any] = {}  # (path, size) -> uploaded file, reused by a repair
        self._uploads_lock = threading.Lock()

    # ----- ChatModel ---------------------------------------------------------------------------------------
    def complete(self, request: ChatRequest) -> ChatReply:
        types = self._types
        contents = [types.Content(role=turn.role, parts=[p for part in turn.parts for p in self._parts(part)])
                    for turn in request.turns]
        config = types.GenerateContentConfig(
            system_instruction=request.system, temperature=TEMPERATURE, seed=request.seed,
            response_mime_type="application/json", response_json_schema=schema_json(request.schema))
        started = time.perf_counter()
        try:
            response = self._client.models.generate_content(model=self.model, contents=contents, config=config)
        except Exception as exc:
            raise self._error(exc, f"the {request.role} call") from None
        latency = round(time.perf_counter() - started, 4)
        usage = _usage(response, latency)
        text = response.text
        if not text:
            raise BackendError(f"{self.name} gave no answer to the {request.role} call ({_why_empty(response)})",
                               usage=usage)
        return ChatReply(text, usage)

    # ----- parts -----------------------------------------------------------------------------------------
    def _parts(self, part: Part) -> list[Any]:
        types = self._types
        if isinstance(part, Text):
            return [types.Part.from_text(text=part.text)]
        if isinstance(part, Image):
            return [types.Part.from_text(text=part.caption),
                    types.Part.from_bytes(data=media.encode_png(part.frame), mime_type="image/png")]
        if isinstance(part, Clip):
            return [types.Part.from_text(text=part.caption), self._video(part)]
        raise TypeError(f"unknown prompt part {type(part).__name__}")

    def _video(self, part: Clip) -> Any:
        """The clip as Gemini takes it: the mp4 itself (Gemini samples it at 1 fps), inline if small."""
        types = self._types
        path = part.view.path
        if path is None or not Path(path).is_file():
            raise BackendError(f"the clip file {path} is missing; Gemini needs the mp4 to judge it")
        size = Path(path).stat().st_size
        if size <= self.inline_limit:
            return types.Part(inline_data=types.Blob(data=Path(path).read_bytes(), mime_type="video/mp4"))
        uploaded = self._upload(Path(path), size)
        return types.Part.from_uri(file_uri=uploaded.uri, mime_type="video/mp4")

    def _upload(self, path: Path, size: int) -> Any:
        """Upload through the Files API and wait until Gemini has processed it (ACTIVE)."""
        types = self._types
        key = (str(path), size)
        with self._uploads_lock:
            if key in self._uploads:
                return self._uploads[key]
        try:
            uploaded = self._client.files.upload(
                file=str(path), config=types.UploadFileConfig(mime_type="video/mp4", display_name=path.name))
            deadline = time.monotonic() + FILE_WAIT_S
            while str(getattr(uploaded.state, "name", uploaded.state)) == "PROCESSING":
                if time.monotonic() > deadline:
                    raise BackendError(f"Gemini did not finish processing the uploaded clip within {FILE_WAIT_S:.0f} s",
                                       retryable=True)
                time.sleep(FILE_POLL_S)
                uploaded = self._client.files.get(name=uploaded.name)
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, "uploading the clip") from None
        if str(getattr(uploaded.state, "name", uploaded.state)) != "ACTIVE":
            raise BackendError(f"Gemini could not process the uploaded clip (state {uploaded.state})")
        with self._uploads_lock:
            self._uploads[key] = uploaded
        return uploaded

    # ----- errors ------------------------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        return text.replace(self._key, "[api key]") if self._key else text

    def _error(self, exc: Exception, what: str) -> BackendError:
        return map_error(exc, f"{self.name}, {what}", self.redact)


def map_error(exc: Exception, what: str, redact=lambda text: text) -> BackendError:
    """A google-genai or transport error as a BackendError a person can act on; retryable when trying again
    later may help (the SDK has already retried it with backoff)."""
    from google.genai import errors

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, errors.APIError):
        code = exc.code or 0
        detail = redact(str(exc.message or exc.status or "")).strip()
        if code == 429:
            return BackendError(f"{what}: rate limit or quota exceeded (429 {exc.status}); tried again with backoff "
                                f"and it persisted; wait, or check the quota of the key: {detail}", retryable=True)
        if code in RETRYABLE_CODES:
            return BackendError(f"{what}: the service failed ({code} {exc.status}) even after retries: {detail}",
                                retryable=True)
        if code in (401, 403):
            return BackendError(f"{what}: the API key was refused ({code} {exc.status}); check GEMINI_API_KEY: {detail}")
        if code == 404:
            return BackendError(f"{what}: not found (404); check the model name: {detail}")
        return BackendError(f"{what}: the request was refused ({code} {exc.status}): {detail}")
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names:
        return BackendError(f"{what}: timed out even after retries", retryable=True)
    if "TransportError" in names or isinstance(exc, (ConnectionError, TimeoutError)):
        return BackendError(f"{what}: could not reach the service ({type(exc).__name__}: {redact(str(exc))})",
                            retryable=True)
    return BackendError(f"{what}: {type(exc).__name__}: {redact(str(exc))}")


def _usage(response: Any, latency: float) -> Usage:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return Usage(calls=1, latency_s=latency)
    output = None
    if meta.candidates_token_count is not None or meta.thoughts_token_count is not None:
        # Thinking tokens are billed as output.
        output = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return Usage(calls=1, input_tokens=meta.prompt_token_count, output_tokens=output, latency_s=latency)


def _why_empty(response: Any) -> str:
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and getattr(feedback, "block_reason", None):
        return f"the prompt was blocked: {feedback.block_reason}"
    candidates = getattr(response, "candidates", None) or []
    if candidates and getattr(candidates[0], "finish_reason", None):
        return f"finish reason {candidates[0].finish_reason}"
    return "the response had no text"

"""Video and frame utilities: encode, decode, count, sample, compare.

Frames are always RGB ``uint8`` arrays, HxWx3 each, stacked as (n, H, W, 3).

Encoding goes through moviepy's ffmpeg writer (the static ffmpeg shipped by
imageio-ffmpeg, with libx264); decoding goes through PyAV. Both are chosen for
exact frame counts: moviepy's clip-level routes (``ImageSequenceClip`` timing,
``VideoFileClip`` re-reads, ``concatenate_videoclips``) round time to frames
and lose a frame for many (fps, n) pairs, so this module never uses them.
"""

from __future__ import annotations

import io
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter
from PIL import Image
from skimage.metrics import structural_similarity

PathLike = str | os.PathLike[str]
FramesLike = np.ndarray | Sequence[np.ndarray]

_FLOAT_ADVICE = "convert with (f * 255).round().astype(np.uint8)"

# Visually lossless H.264 (x264's constant-quality scale: 0 is lossless, 23 its default, about 17-18 is
# usually called visually lossless); a partial regeneration starts from a decoded frame, so losses would
# add up over attempts. "veryfast" keeps encoding cheap on a CPU.
CRF = 15
PRESET = "veryfast"


class MediaError(ValueError):
    """Bad frames, bad arguments, or a file that cannot be read as media."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` reports; ``seconds`` is ``n_frames / fps``."""

    n_frames: int
    fps: float
    seconds: float
    width: int
    height: int


# --- frame validation -------------------------------------------------------


def _check_frame(frame: object, what: str = "frame") -> np.ndarray:
    """One HxWx3 uint8 frame, or MediaError saying what is wrong with it."""
    arr = np.asarray(frame)
    if np.issubdtype(arr.dtype, np.floating):
        raise MediaError(
            f"{what} has float dtype {arr.dtype}; frames must be uint8 0-255, "
            f"{_FLOAT_ADVICE}"
        )
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise MediaError(
            f"{what} has shape {arr.shape}; expected HxWx3 RGB "
            "(grayscale HxW and RGBA HxWx4 are not accepted)"
        )
    if arr.dtype != np.uint8:
        raise MediaError(f"{what} has dtype {arr.dtype}; expected uint8")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MediaError(f"{what} has an empty size {arr.shape}")
    return arr


def _check_frames(frames: FramesLike, allow_empty: bool) -> np.ndarray:
    if isinstance(frames, np.ndarray):
        if np.issubdtype(frames.dtype, np.floating):
            raise MediaError(
                f"frames have float dtype {frames.dtype}; frames must be uint8 "
                f"0-255, {_FLOAT_ADVICE}"
            )
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise MediaError(
                f"frames array has shape {frames.shape}; expected (n, H, W, 3) "
                "RGB (grayscale and RGBA are not accepted; for a single frame "
                "pass [frame])"
            )
        if frames.dtype != np.uint8:
            raise MediaError(f"frames have dtype {frames.dtype}; expected uint8")
        if frames.shape[1] == 0 or frames.shape[2] == 0:
            raise MediaError(f"frames have an empty size {frames.shape}")
        if frames.shape[0] == 0 and not allow_empty:
            raise MediaError("frame list is empty")
        return np.ascontiguousarray(frames)

    checked = [_check_frame(f, f"frame {i}") for i, f in enumerate(frames)]
    if not checked:
        # An empty list carries no H and W, so it cannot become (0, H, W, 3).
        raise MediaError("frame list is empty")
    size = checked[0].shape
    for i, f in enumerate(checked):
        if f.shape != size:
            raise MediaError(
                f"frame {i} has shape {f.shape} but frame 0 has {size}; "
                "all frames must share a size"
            )
    return np.ascontiguousarray(np.stack(checked))


def as_uint8_frames(frames: FramesLike) -> np.ndarray:
    """Validate frames and return them as one contiguous (n, H, W, 3) uint8 array.

    Accepts a list of HxWx3 uint8 frames or an (n, H, W, 3) uint8 array; an
    array that is already valid and contiguous is returned as is (no copy).
    Raises MediaError for float frames (they are not rescaled for you), any
    other non-uint8 dtype, grayscale, RGBA, mixed sizes, or no frames at all.
    """
    return _check_frames(frames, allow_empty=False)


# --- writing ----------------------------------------------------------------


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_fps(fps: float) -> float:
    # moviepy passes fps to ffmpeg as "%.02f", so anything that rounds to 0 is
    # unusable even though it is positive.
    if not (_is_real(fps) and math.isfinite(fps) and round(fps, 2) > 0):
        raise MediaError(f"fps must be a finite number >= 0.01, got {fps!r}")
    return float(fps)


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) rounded up to even numbers: the size yuv420p stores (see ``write_mp4``)."""
    return size[0] + size[0] % 2, size[1] + size[1] % 2


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    pad_h = frame.shape[0] % 2
    pad_w = frame.shape[1] % 2
    if not (pad_h or pad_w):
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _output_target(path: PathLike) -> Path:
    out = Path(path)
    if not out.parent.is_dir():
        raise MediaError(f"cannot write {out}: folder {out.parent} does not exist")
    return out


def _temp_sibling(out: Path) -> Path:
    # Same folder so os.replace is an atomic rename; the real suffix is kept
    # last because ffmpeg picks the container from the extension.
    return out.with_name(f".{out.stem}.{uuid.uuid4().hex}.tmp{out.suffix}")


def _encode(frames: Iterable[np.ndarray], size: tuple[int, int], fps: float, path: PathLike) -> Path:
    """Write HxWx3 uint8 frames of (height, width) ``size`` as H.264 yuv420p."""
    out = _output_target(path)
    fps = _check_fps(fps)
    height, width = size
    even_size = (width + width % 2, height + height % 2)
    tmp = _temp_sibling(out)
    written = 0
    try:
        # moviepy 2.1 itself asks ffmpeg for yuva420p, which libx264 lacks, and
        # ffmpeg falls back to yuv420p; our flag states the intent, and the
        # tests pin the resulting pixel format.
        with FFMPEG_VideoWriter(
            str(tmp),
            even_size,
            fps,
            codec="libx264",
            preset=PRESET,
            ffmpeg_params=["-pix_fmt", "yuv420p", "-crf", str(CRF)],
        ) as writer:
            for frame in frames:
                writer.write_frame(pad_to_even(frame))
                written += 1
        if written == 0:
            raise MediaError(f"no frames to write to {out}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def write_mp4_stream(frames: Iterable[np.ndarray], fps: float, path: PathLike) -> Path:
    """Like ``write_mp4`` for frames that arrive one at a time: only one is held in memory. The first
    frame fixes the size; a later frame of another size raises MediaError."""
    iterator = iter(frames)
    try:
        first = _check_frame(next(iterator), "frame 0")
    except StopIteration:
        raise MediaError(f"no frames to write to {path}") from None
    size = first.shape[:2]

    def checked() -> Iterator[np.ndarray]:
        yield first
        for i, frame in enumerate(iterator, start=1):
            arr = _check_frame(frame, f"frame {i}")
            if arr.shape[:2] != size:
                raise MediaError(f"frame {i} is {arr.shape[1]}x{arr.shape[0]} but frame 0 is {size[1]}x{size[0]}; "
                                 "all frames must share a size")
            yield arr

    return _encode(checked(), size, fps, path)


def write_mp4(frames: FramesLike, fps: float, path: PathLike) -> Path:
    """Encode frames to an H.264 (libx264, yuv420p) mp4 at ``path``; return the path.

    Every frame is written exactly once, so the file holds exactly ``len(frames)``
    frames. Limits: H.264 is lossy (expect small pixel errors on read-back);
    yuv420p needs even sizes, so an odd width or height is padded by one pixel
    on the right or bottom by repeating the edge, and ``read_frames`` returns
    that padded size; fps is stored rounded to 2 decimals (23.976 -> 23.98).
    The file is written under a temporary name in the same folder and renamed
    into place, so a reader never sees a half-written file. The folder must
    exist.
    """
    arr = as_uint8_frames(frames)
    return _encode(arr, (arr.shape[1], arr.shape[2]), fps, path)


# --- reading ----------------------------------------------------------------


def _open_video(path: PathLike) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot read video {path}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise MediaError(f"cannot read video {path}: it has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _decoded(path: PathLike) -> Iterator[av.VideoFrame]:
    """Every decoded frame of the first video stream, in presentation order."""
    container, stream = _open_video(path)
    with container:
        try:
            yield from container.decode(stream)
        except av.FFmpegError as exc:
            raise MediaError(f"cannot decode video {path}: {exc}") from exc


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def read_frames(path: PathLike) -> np.ndarray:
    """Decode every frame of the video at ``path`` as (n, H, W, 3) uint8, in order.

    Holds the whole video in memory. Raises MediaError naming the path when the
    file is missing, corrupt, or has no video frames.
    """
    frames = [_rgb(f) for f in _decoded(path)]
    if not frames:
        raise MediaError(f"cannot read video {path}: no frames decoded")
    return np.stack(frames)


def iter_frames(path: PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Frames ``start`` (inclusive) to ``stop`` (exclusive) of the video at ``path``, decoded one at a time:
    memory holds one frame whatever the video's length."""
    for index, frame in enumerate(_decoded(path)):
        if stop is not None and index >= stop:
            return
        if index >= start:
            yield _rgb(frame)


def frames_at(path: PathLike, indices: Sequence[int], clamp: bool = False) -> list[np.ndarray]:
    """The frames at ``indices`` (in the order given), decoding the stream once up to the largest index and
    keeping only those asked for. An index past the end raises MediaError, or with ``clamp`` gives the
    last frame."""
    wanted = set(int(i) for i in indices)
    if not wanted:
        return []
    if min(wanted) < 0:
        raise MediaError(f"frame indices must be >= 0, got {min(wanted)}")
    found: dict[int, np.ndarray] = {}
    last: tuple[int, av.VideoFrame] | None = None
    stop = max(wanted) + 1
    # Every frame up to the last one asked for must be decoded, but only those asked for are converted to
    # RGB: the conversion, not the decoding, is most of the cost of a 1 fps sample.
    for index, frame in enumerate(_decoded(path)):
        if index >= stop:
            break
        last = (index, frame)
        if index in wanted:
            found[index] = _rgb(frame)
    if last is None:
        raise MediaError(f"cannot read video {path}: no frames decoded")
    missing = sorted(wanted - found.keys())
    if missing and not clamp:
        raise MediaError(f"video {path} has no frame {missing[0]}: it has {last[0] + 1}")
    fallback = found.get(last[0]) if last[0] in found else (_rgb(last[1]) if missing else None)
    return [found.get(int(i), fallback) for i in indices]  # type: ignore[misc]


def frame_at(path: PathLike, index: int) -> np.ndarray:
    """One frame of the video at ``path``, decoded without holding the others."""
    return frames_at(path, [index])[0]


def frame_size(path: PathLike) -> tuple[int, int]:
    """(height, width) of the video's frames, from the stream header."""
    _, width, height = _stream_format(path)
    return height, width


def count_frames(path: PathLike) -> int:
    """Exact number of frames in the video at ``path``.

    Decodes the whole stream (container metadata is not trusted), so the cost
    grows with video length. Raises MediaError if the file cannot be read.
    """
    return sum(1 for _ in _decoded(path))


def last_frame(path: PathLike) -> np.ndarray:
    """The exact last frame of the video at ``path`` as HxWx3 uint8.

    Decodes the whole stream, keeping one frame at a time.
    """
    last: av.VideoFrame | None = None
    for last in _decoded(path):
        pass
    if last is None:
        raise MediaError(f"cannot read video {path}: no frames decoded")
    return _rgb(last)


def _stream_format(path: PathLike) -> tuple[float, int, int]:
    """(fps, width, height) from the stream header, without decoding."""
    container, stream = _open_video(path)
    with container:
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
    if not rate:
        raise MediaError(f"cannot read video {path}: no frame rate recorded")
    return float(rate), width, height


def probe(path: PathLike) -> VideoInfo:
    """Frame count (exact, by decoding), fps, duration and size of a video."""
    fps, width, height = _stream_format(path)
    n_frames = count_frames(path)
    return VideoInfo(n_frames=n_frames, fps=fps, seconds=n_frames / fps, width=width, height=height)


# --- frame indices ----------------------------------------------------------


def _check_n_frames(n_frames: int) -> None:
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise MediaError(f"n_frames must be an integer >= 1, got {n_frames!r}")


def sample_indices(n_frames: int, fps: float, per_second: float = 1.0) -> list[int]:
    """Indices sampled ``per_second`` times per second of video, plus the last frame.

    Index k is ``round(k * fps / per_second)`` for k = 0, 1, ... while below
    ``n_frames``; ``n_frames - 1`` is added if missing. Sorted and unique.
    Example: n_frames=50, fps=16 -> [0, 16, 32, 48, 49].
    """
    _check_n_frames(n_frames)
    for name, value in (("fps", fps), ("per_second", per_second)):
        if not (_is_real(value) and math.isfinite(value) and value > 0):
            raise MediaError(f"{name} must be a finite number > 0, got {value!r}")
    n_frames = int(n_frames)
    step = float(fps) / float(per_second)
    if step <= 1:
        # Steps of at most one frame hit every index; stepping would only
        # produce duplicates (and take forever for tiny steps).
        return list(range(n_frames))
    indices = {n_frames - 1}
    k = 0
    while (index := round(k * step)) < n_frames:
        indices.add(index)
        k += 1
    return sorted(indices)


# --- editing ----------------------------------------------------------------


def trim_prefix(frames: FramesLike, n_keep: int) -> np.ndarray:
    """A copy of the first ``n_keep`` frames, shape (n_keep, H, W, 3).

    ``n_keep`` may be 0 (an empty (0, H, W, 3) array) but not more than the
    number of frames: asking for frames that do not exist raises MediaError.
    """
    arr = _check_frames(frames, allow_empty=True)
    if isinstance(n_keep, bool) or not isinstance(n_keep, (int, np.integer)) or not 0 <= n_keep <= len(arr):
        raise MediaError(f"n_keep must be an integer in [0, {len(arr)}], got {n_keep!r}")
    return arr[:n_keep].copy()


def concatenate(clips: Sequence[FramesLike]) -> np.ndarray:
    """Join in-memory clips end to end into one (n, H, W, 3) uint8 array.

    Clips may be empty (0, H, W, 3) arrays but must all share H and W; sizes
    are never adjusted here (see ``concatenate_files`` for that).
    """
    if not clips:
        raise MediaError("no clips to concatenate")
    arrays = [_check_frames(c, allow_empty=True) for c in clips]
    size = arrays[0].shape[1:]
    for i, arr in enumerate(arrays):
        if arr.shape[1:] != size:
            raise MediaError(
                f"clip {i} has frame shape {arr.shape[1:]} but clip 0 has {size}; "
                "in-memory clips must share a size"
            )
    return np.concatenate(arrays)


def _resized(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` stretched to (height, width) ``size`` with PIL bicubic."""
    if frame.shape[:2] == size:
        return frame
    height, width = size
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC))


def concatenate_files(paths: Sequence[PathLike], out: PathLike, fps: float | None = None) -> Path:
    """Join video files end to end into an H.264 yuv420p mp4 at ``out``.

    The output holds exactly the sum of the inputs' frame counts: each file is
    decoded frame by frame and re-encoded, with no time-based resampling (so
    inputs at other frame rates play faster or slower, never lose frames).
    Frames of a different size are stretched to the first file's size with PIL
    bicubic (aspect ratio is not preserved). ``fps`` defaults to the first
    file's rate. Frames stream through, so memory does not grow with length.
    ``out`` is replaced atomically once everything is written, so it may even
    be one of the inputs.
    """
    if not paths:
        raise MediaError("no video files to concatenate")
    first_fps, width, height = _stream_format(paths[0])
    size = (height, width)

    def frames() -> Iterator[np.ndarray]:
        for path in paths:
            for frame in _decoded(path):
                yield _resized(_rgb(frame), size)

    return _encode(frames(), size, first_fps if fps is None else fps, out)


# --- comparing --------------------------------------------------------------


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601, as video quality tools report "SSIM Y"


def first_frame_ssim(reference: np.ndarray, frame: np.ndarray) -> float:
    """SSIM of ``frame`` against ``reference`` (1.0 = identical), on luma (BT.601 Y).

    Uses skimage's structural_similarity with data_range=255 on the Y plane: structure lives in luma, and one
    plane is a third of the work of three (at 832x480 the colour version cost 0.15 s an attempt, most of the
    loop's own overhead). If sizes differ, ``frame`` is resized to the reference's size with PIL bicubic
    first. Both sides must be at least 7x7 pixels (skimage's default window).
    """
    ref = _check_frame(reference, "reference")
    other = _resized(_check_frame(frame, "frame"), ref.shape[:2])
    if min(ref.shape[:2]) < 7:
        raise MediaError(f"frames must be at least 7x7 for SSIM, got {ref.shape[:2]}")
    return float(structural_similarity(ref @ _LUMA, other @ _LUMA, data_range=255.0))


# --- still images -----------------------------------------------------------


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of one HxWx3 uint8 frame (lossless)."""
    buf = io.BytesIO()
    Image.fromarray(_check_frame(frame)).save(buf, format="PNG")
    return buf.getvalue()


def save_png(frame: np.ndarray, path: PathLike) -> Path:
    """Write one HxWx3 uint8 frame as a PNG at ``path`` (atomically); return the path."""
    out = _output_target(path)
    data = encode_png(frame)
    tmp = _temp_sibling(out)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def load_image(path_or_bytes: PathLike | bytes) -> np.ndarray:
    """Read an image file, or image bytes, as HxWx3 RGB uint8.

    Any format PIL reads is accepted; alpha is dropped and grayscale or
    palette images are expanded to RGB. Raises MediaError if the input is
    missing or is not a readable image.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        what = f"the given {len(path_or_bytes)} bytes"
        source: PathLike | io.BytesIO = io.BytesIO(bytes(path_or_bytes))
    else:
        what = str(path_or_bytes)
        source = path_or_bytes
    try:
        with Image.open(source) as img:
            rgb = img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{what} is not a readable image: {exc}") from exc
    return np.array(rgb, dtype=np.uint8)

"""URLs for the artifacts the timeline shows, the small frame PNGs the verifier saw, and each clip's first
frame at full size (its poster).

Gradio serves the files of the folders that storage.data_dir.served_folders names (artifacts, cache,
exports; never the database or the private folder) at "/gradio_api/file=<absolute path>"; the clips are
H.264 mp4 files already, so a <video> plays them straight from the artifact folder. The verification
frames are cut out of the candidate clip once, on demand, into <data dir>/cache/frames/<clip
sha256>_<index>.png, and reused by every later render (named after the artifact's hash, as
storage.data_dir.delete_session_and_files expects of every cached file).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

import numpy as np
from PIL import Image

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr.events import Artifact


FILE_ROUTE = "/gradio_api/file="
THUMB_SIDE = 160  # px, the longer side of a verification frame thumbnail


class MediaLinks:
    def __init__(self, artifacts: ArtifactFolder, cache_dir: Path | str, route: str = FILE_ROUTE) -> None:
        self.artifacts = artifacts
        self.cache_dir = Path(cache_dir).resolve()
        self.route = route
        self._lock = threading.Lock()

    def file_url(self, path: Path | str) -> str:
        return self.route + quote(str(Path(path).resolve()))

    def clip_url(self, artifact: Artifact) -> str:
        return self.file_url(self.artifacts.path(artifact))

    def image_url(self, artifact: Artifact) -> str:
        return self.file_url(self.artifacts.path(artifact))

    def frame_path(self, clip: Artifact, index: int) -> Path:
        return self.cache_dir / "frames" / f"{clip.sha256}_{index}.png"

    def frame_paths(self, clip: Artifact, indices: Iterable[int], thumb: bool = True) -> dict[int, Path]:
        """PNG files of frames `indices` of `clip`, extracted (one streaming decode) if missing.
        Indices outside the clip are clamped to its last frame."""
        wanted = {int(i): self.frame_path(clip, int(i)) if thumb else self._full_path(clip, int(i))
                  for i in indices}
        missing = {i: p for i, p in wanted.items() if not p.is_file()}
        if missing:
            with self._lock:
                # One streaming decode up to the last frame wanted; never the whole clip in memory.
                indices = [max(i, 0) for i in missing]
                frames = media.frames_at(self.artifacts.path(clip), indices, clamp=True)
                for frame, path in zip(frames, missing.values()):
                    _write_png(_thumbnail(frame) if thumb else frame, path)
        return wanted

    def frame_urls(self, clip: Artifact, indices: Iterable[int]) -> dict[int, str]:
        try:
            paths = self.frame_paths(clip, indices)
        except (OSError, ValueError):  # a missing or unreadable clip: show broken frames, not a traceback
            return {}
        return {i: self.file_url(p) for i, p in paths.items()}

    def poster_url(self, clip: Artifact) -> str:
        """The clip's first frame as a PNG (extracted once, by decoding only that frame), so a clip shows
        a picture before it is played instead of a black box; "" when the clip cannot be read."""
        try:
            return self.file_url(self.full_frame(clip, 0))
        except (OSError, ValueError):
            return ""

    def full_frame(self, clip: Artifact, index: int) -> Path:
        """One frame at full size (for the regen frame picker's preview)."""
        return self.frame_paths(clip, [index], thumb=False)[index]

    def _full_path(self, clip: Artifact, index: int) -> Path:
        return self.cache_dir / "frames" / f"{clip.sha256}_{index}_full.png"


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = THUMB_SIDE / max(height, width)
    if scale >= 1:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.LANCZOS))


def _write_png(frame: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        media.save_png(frame, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

"""The artifact folder: clips and frames as files named by the sha256 of their content.

A file is written under a temporary name and renamed into place before any event names it, so a crash
never leaves an event pointing at half a file; the same content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from collabvr import media
from collabvr.events import Artifact


SUFFIX = {"image": ".png", "clip": ".mp4", "video": ".mp4"}


class ArtifactMissing(RuntimeError):
    """An event names a file that is not in the artifact folder (deleted, or never copied over)."""


class ArtifactFolder:
    """Content-addressed files under `root/<kind>s/<first two hex digits>/<sha256><suffix>`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._scratch = self.root / "tmp"
        self._scratch.mkdir(exist_ok=True)

    def scratch_path(self, suffix: str) -> Path:
        """A fresh temporary file name inside the store (same filesystem, so the final rename is atomic)."""
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self._scratch)
        os.close(fd)
        return Path(name)

    def put_file(self, src: Path, kind: str) -> Artifact:
        digest = file_sha256(src)
        rel = Path(f"{kind}s") / digest[:2] / f"{digest}{SUFFIX[kind]}"
        dest = self.root / rel
        size = src.stat().st_size
        if dest.exists():
            src.unlink()
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        return Artifact(sha256=digest, path=rel.as_posix(), kind=kind, bytes=size)  # type: ignore[arg-type]

    def put_frame(self, frame: np.ndarray) -> Artifact:
        tmp = self.scratch_path(".png")
        media.save_png(frame, tmp)
        return self.put_file(tmp, "image")

    def put_clip(self, frames: np.ndarray | Iterable[np.ndarray], fps: float, kind: str = "clip") -> Artifact:
        """Encode frames (an array, or an iterable that yields them one at a time) as an H.264 mp4."""
        tmp = self.scratch_path(".mp4")
        try:
            if isinstance(frames, np.ndarray):
                media.write_mp4(frames, fps, tmp)
            else:
                media.write_mp4_stream(frames, fps, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.put_file(tmp, kind)

    def put_concatenation(self, clips: Sequence[Artifact], fps: float | None = None) -> Artifact:
        """The clips joined end to end as one video, streamed frame by frame (memory holds one frame)."""
        tmp = self.scratch_path(".mp4")
        try:
            media.concatenate_files([self.path(c) for c in clips], tmp, fps=fps)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.put_file(tmp, "video")

    def copy_in(self, src: Path, kind: str) -> Artifact:
        tmp = self.scratch_path(SUFFIX[kind])
        shutil.copyfile(src, tmp)
        return self.put_file(tmp, kind)

    def path(self, artifact: Artifact) -> Path:
        return self.root / artifact.path

    def load_frame(self, artifact: Artifact) -> np.ndarray:
        return media.load_image(self.path(artifact))

    def load_clip(self, artifact: Artifact) -> np.ndarray:
        """Every frame of a clip at once: for small clips and tests; the engine streams instead."""
        return media.read_frames(self.path(artifact))

    def iter_clip(self, artifact: Artifact, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        return media.iter_frames(self.path(artifact), start, stop)

    def clip_frames(self, artifact: Artifact, indices: Sequence[int]) -> list[np.ndarray]:
        return media.frames_at(self.path(artifact), indices)

    def clip_frame(self, artifact: Artifact, index: int) -> np.ndarray:
        return media.frame_at(self.path(artifact), index)


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB chunks: the content hash that names an artifact."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

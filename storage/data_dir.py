"""Where a deployment keeps its data: one folder holding the SQLite database and the artifact files.

    <data dir>/collabvr.sqlite   the event store (plus -wal and -shm files while in use)
    <data dir>/artifacts/        content-addressed images and clips (collabvr.artifacts.ArtifactFolder)

The folder is, in order of precedence: the `data_dir` argument, the environment variable
COLLABVR_DATA_DIR, or ./data relative to the working directory. It is created if missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from collabvr.artifacts import ArtifactFolder
from storage.sqlite_store import SQLiteEventStore


DATA_DIR_ENV = "COLLABVR_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DATABASE_NAME = "collabvr.sqlite"
ARTIFACTS_NAME = "artifacts"
STALE_SCRATCH_S = 60.0  # a temporary file untouched this long belongs to no live writer


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The data folder that `open_data_dir` would use, without creating anything."""
    if data_dir is not None:
        return Path(data_dir)
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(from_env) if from_env else DEFAULT_DATA_DIR


def open_data_dir(data_dir: Path | str | None = None) -> tuple[SQLiteEventStore, ArtifactFolder]:
    """Open (creating if needed) the event store and the artifact folder of a data folder."""
    root = resolve_data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    return SQLiteEventStore(root / DATABASE_NAME), ArtifactFolder(root / ARTIFACTS_NAME)


def remove_stale_scratch(artifacts: ArtifactFolder, older_than_s: float = STALE_SCRATCH_S) -> int:
    """Remove temporary files a killed process left in artifacts/tmp, if untouched for `older_than_s`
    (younger ones may belong to a process that is still writing). Returns how many were removed."""
    cutoff = time.time() - older_than_s
    removed = 0
    for path in (artifacts.root / "tmp").glob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process cleaned it up first
            pass
    return removed

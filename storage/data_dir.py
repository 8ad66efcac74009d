"""Where a deployment keeps its data: one folder holding the SQLite database and the artifact files.

    <data dir>/collabvr.sqlite   the event store (plus -wal and -shm files while in use)
    <data dir>/artifacts/        content-addressed images and clips (collabvr.artifacts.ArtifactFolder)

The folder is, in order of precedence: the `data_dir` argument, the environment variable
COLLABVR_DATA_DIR, or ./data relative to the working directory. It is created if missing.
"""

from __future__ import annotations

import os
from pathlib import Path

from collabvr.artifacts import ArtifactFolder
from storage.sqlite_store import SQLiteEventStore


DATA_DIR_ENV = "COLLABVR_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DATABASE_NAME = "collabvr.sqlite"
ARTIFACTS_NAME = "artifacts"


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

"""Where a deployment keeps its data: one folder holding the SQLite database, the artifact files and what is
derived from them, laid out so that what a browser may download is apart from what it must never see.

    <data dir>/collabvr.sqlite   the event store (plus -wal, -shm while in use)          never served
    <data dir>/private/          secrets, e.g. the browser-state key (mode 0700)         never served
    <data dir>/artifacts/        content-addressed images and clips (ArtifactFolder)     served
    <data dir>/cache/            files derived from an artifact, named <sha256>_...      served
    <data dir>/exports/          what the app's Export writes                            served

"Served" means the app lets a browser fetch files there (app.py passes `served_folders` to Gradio and
blocks `database_files` and the private folder). The folder is, in order of precedence: the `data_dir`
argument, the environment variable COLLABVR_DATA_DIR, or ./data relative to the working directory. It is
created if missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from collabvr.artifacts import ArtifactFolder
from collabvr.events import Artifact
from storage.sqlite_store import SQLiteEventStore


DATA_DIR_ENV = "COLLABVR_DATA_DIR"
DEFAULT_DATA_DIR = Path("data")
DATABASE_NAME = "collabvr.sqlite"
ARTIFACTS_NAME = "artifacts"
CACHE_NAME = "cache"
EXPORTS_NAME = "exports"
PRIVATE_NAME = "private"
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
    return open_store_at(root / DATABASE_NAME, root / ARTIFACTS_NAME)


def open_store_at(database: Path | str, artifact_root: Path | str) -> tuple[SQLiteEventStore, ArtifactFolder]:
    """Open (creating if needed) a database and an artifact folder, and remove the temporary files a killed
    process left there. The app and the command line both open their data through this."""
    store = SQLiteEventStore(database)
    artifacts = ArtifactFolder(artifact_root)
    remove_stale_scratch(artifacts)
    return store, artifacts


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


# ----- what may be served --------------------------------------------------------------------------------

def served_folders(data_dir: Path | str) -> list[Path]:
    """The folders whose files a browser may download: artifacts, the derived-file cache and exports
    (created, so that the list never names a folder that appears later with other content)."""
    root = Path(data_dir).resolve()
    folders = [root / ARTIFACTS_NAME, root / CACHE_NAME, root / EXPORTS_NAME]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def private_folder(data_dir: Path | str) -> Path:
    """<data dir>/private, created readable by this user only: where secrets such as the browser-state key
    live, outside every served folder."""
    folder = Path(data_dir).resolve() / PRIVATE_NAME
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # mkdir's mode is masked by the umask, and an older folder may be wider
    return folder


def database_files(database: Path | str) -> list[Path]:
    """The database file and the files SQLite keeps beside it while it is in use."""
    path = Path(database).resolve()
    return [path] + [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


# ----- deleting --------------------------------------------------------------------------------------------

def delete_session_and_files(store: SQLiteEventStore, artifacts: ArtifactFolder, session_id: str,
                             cache_dir: Path | str | None = None) -> list[Artifact]:
    """Delete a session from the store, then the files of the artifacts no other session uses and every
    cached file derived from them (<cache>/<kind>/<sha256>_...; the cache defaults to the one beside the
    artifact folder). Returns those artifacts. The rows go first: a crash in between leaves unreferenced
    files, never a session pointing at missing ones."""
    cache = Path(cache_dir) if cache_dir is not None else artifacts.root.parent / CACHE_NAME
    orphans = store.delete_session(session_id)
    derived_folders = [p for p in cache.iterdir() if p.is_dir()] if cache.is_dir() else []
    for artifact in orphans:
        artifacts.path(artifact).unlink(missing_ok=True)
        for folder in derived_folders:
            for derived in folder.glob(f"{artifact.sha256}_*"):
                derived.unlink(missing_ok=True)
    return orphans

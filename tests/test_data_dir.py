"""The data folder's layout and the rules that live with it: what may be served, where secrets go, stale
scratch files, and deleting a session with every file that only it used."""

from __future__ import annotations

import os
import stat
import time

import numpy as np

from collabvr.engine import Engine
from collabvr.events import BackendLabel, TaskSpec
from storage import delete_session_and_files, open_data_dir, private_folder, served_folders
from storage.data_dir import database_files


LABEL = BackendLabel(name="none", simulated=True)


def _session(store, artifacts, image: np.ndarray) -> str:
    return Engine.start(store, artifacts, None, None, task=TaskSpec(prompt="p", source="upload"),  # type: ignore[arg-type]
                        input_image=image, vlm_label=LABEL, vgm_label=LABEL).session_id


def test_served_folders_are_artifacts_cache_and_exports_never_the_database_or_private(tmp_path):
    store, _ = open_data_dir(tmp_path)
    served = served_folders(tmp_path)
    assert [p.name for p in served] == ["artifacts", "cache", "exports"] and all(p.is_dir() for p in served)
    hidden = database_files(store.path) + [private_folder(tmp_path)]
    assert not any(h.is_relative_to(s) for h in hidden for s in served)
    assert database_files(store.path)[1].name == "collabvr.sqlite-wal"


def test_the_private_folder_is_made_owner_only_even_if_it_existed_wider(tmp_path):
    (tmp_path / "private").mkdir(mode=0o755)
    os.chmod(tmp_path / "private", 0o755)
    assert stat.S_IMODE(private_folder(tmp_path).stat().st_mode) == 0o700


def test_opening_a_data_folder_removes_stale_scratch_files_only(tmp_path):
    scratch = tmp_path / "artifacts" / "tmp"
    scratch.mkdir(parents=True)
    stale, fresh = scratch / "old.mp4", scratch / "new.mp4"
    stale.write_bytes(b"half a clip")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 3600,) * 2)
    open_data_dir(tmp_path)
    assert not stale.exists() and fresh.exists()


def test_the_app_opens_its_store_through_the_same_cleanup(tmp_path):
    import app

    scratch = tmp_path / "artifacts" / "tmp"
    scratch.mkdir(parents=True)
    stale = scratch / "old.png"
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 3600,) * 2)
    store, artifacts, root = app.open_services(str(tmp_path), str(tmp_path / "elsewhere.sqlite"))
    assert not stale.exists() and store.path == tmp_path / "elsewhere.sqlite" and root == tmp_path.resolve()


def test_delete_removes_files_only_that_session_used_with_their_cached_frames(tmp_path):
    store, artifacts = open_data_dir(tmp_path)
    same_image = np.zeros((16, 16, 3), np.uint8)
    keep, gone = _session(store, artifacts, same_image), _session(store, artifacts, same_image)
    shared = store.artifacts_of(keep)[0]
    own = artifacts.put_frame(np.full((16, 16, 3), 200, np.uint8))
    store.record_artifact(own, gone)
    cache = tmp_path / "cache" / "frames"
    cache.mkdir(parents=True)
    for artifact in (shared, own):
        (cache / f"{artifact.sha256}_0.png").write_bytes(b"thumb")
        (cache / f"{artifact.sha256}_0_full.png").write_bytes(b"full")

    removed = delete_session_and_files(store, artifacts, gone)

    assert removed == [own] and store.session_ids() == [keep]
    assert not artifacts.path(own).exists() and artifacts.path(shared).is_file()
    assert sorted(p.name for p in cache.iterdir()) == [f"{shared.sha256}_0.png", f"{shared.sha256}_0_full.png"]

"""Starting a simulated session: the app's Studio and the command line record the same thing, because they
call the same function."""

from __future__ import annotations

from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.events import event_to_dict
from collabvr.sim_session import NewSimSession, start_sim_session
from collabvr.store import MemoryEventStore
from collabvr.studio import Studio


def _started(store, session_id: str) -> dict:
    recorded = event_to_dict(store.read(session_id)[0])
    return {k: v for k, v in recorded.items() if k not in ("session_id", "at")}


def test_the_studio_and_the_cli_record_the_same_session_start(tmp_path):
    spec = NewSimSession("blocks", "hard", 4, vlm_profile="qwen3.5-9b", vgm_profile="hard", latency_s=0.25,
                         config=LoopConfig(n_max=2))
    store, folder = MemoryEventStore(), ArtifactFolder(tmp_path / "artifacts")
    direct = start_sim_session(store, folder, spec)
    studio = Studio(store, folder)
    via_studio = studio.new_sim_session(spec)
    assert _started(store, via_studio) == _started(store, direct.session_id)
    started = _started(store, direct.session_id)
    # What is recorded is the simulated model itself (rebuildable from its spec), not the Studio's GPU gate.
    assert started["vgm"]["simulated"] and started["vgm"]["spec"]["profile"] == "hard"
    assert started["title"] == "[SIMULATED] blocks/hard/seed 4" and started["task"]["task_seed"] == 4

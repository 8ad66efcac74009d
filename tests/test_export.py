"""Export to JSONL + zip and import back: a real simulated session with people's decisions and a fork."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from collabvr import sim
from collabvr import registry
from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec, artifacts_in, attempt_target, event_to_json
from collabvr.loop import Kind
from collabvr.report import summary
from collabvr.state import fold
from collabvr.store import InvalidSessionId, SessionNotFound
from storage import SQLiteEventStore
from storage.export import (
    SIMULATED_NOTICE, ArchiveError, export_all, export_sessions, import_archive,
)


SEED = 6  # maze/hard seed 6 with n_max=2: step 1 is rejected twice by the simulated verifier (asserted below)
ROW_KEYS = {
    "session", "title", "task", "backends", "simulated", "step", "attempt", "purpose", "plan", "prompt_before",
    "prompt", "prompt_after", "start", "vlm_verdict", "effective_verdict", "overrides", "annotations",
    "session_annotations", "routes", "outcome", "cost", "artifacts", "final_video", "success",
}


def _backends():
    # The legacy world, whose seed SEED rejects step 1 twice (the test pauses on those rejects).
    vlm_spec, vgm_spec = registry.sim_vlm_spec("maze", "gemini-2.5-pro"), registry.sim_vgm_spec("maze", "legacy")
    vlm, vgm = registry.build_vlm(vlm_spec), registry.build_vgm(vgm_spec)
    return vlm, vgm, registry.label(vlm, vlm_spec), registry.label(vgm, vgm_spec)


def _paused_on(engine: Engine) -> tuple[int, int] | None:
    command = engine.next_command()
    return (command.step, command.attempt) if command.kind is Kind.WAIT else None


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One store + folder holding a finished session with every kind of human decision, and a fork of it
    that a person steered differently. Built once: the simulated run takes about a second."""
    root = tmp_path_factory.mktemp("source")
    store, folder = SQLiteEventStore(root / "a.sqlite"), ArtifactFolder(root / "art")
    task = sim.make_task("maze", "hard", SEED)
    spec = TaskSpec(prompt=task.prompt, source="sim", family="maze", difficulty="hard", task_seed=SEED)
    vlm, vgm, vlm_label, vgm_label = _backends()
    engine = Engine.start(store, folder, vlm, vgm, task=spec, input_image=sim.get_family("maze").render(task.initial),
                          config=LoopConfig(n_max=2, breakpoints=("on_reject",)), seed=SEED,
                          judge=registry.judge_for(spec), vlm_label=vlm_label, vgm_label=vgm_label,
                          title="export test")
    engine.annotate("session", "D1", 3, actor="ana", reason="three moves")

    engine.run()
    first = _paused_on(engine)
    assert first == (1, 1), "precondition: the simulated verifier rejects step 1 attempt 1 for this seed"
    target = attempt_target(*first)
    engine.annotate(target, "D2", "reject", actor="ana", reason="disc vanished")
    engine.annotate(target, "D3", 2, actor="ana")
    engine.annotate(target, "note", "the suggestion names the right cells", actor="bo")

    engine.run()  # evolves the prompt with the verifier's suggestion and tries again
    second = _paused_on(engine)
    assert second == (1, 2), "precondition: attempt 2 of step 1 is rejected too"
    fork_at = engine.state.seq  # the fork starts at this pause, before anyone decided on attempt 2
    engine.override_verdict(1, 2, "accept", actor="bo", reason="good enough: the disc reached the cell")
    state = engine.run()
    assert state.finished is not None

    fork_id = Engine.fork(store, engine.session_id, fork_at)
    fork = Engine(store, folder, vlm, vgm, fork_id, judge=registry.judge_for(spec))
    fork.edit_action(1, "Move the red disc down one cell, then stop.", actor="cy", reason="smaller move")
    fork.run(max_commands=3)
    return {"store": store, "folder": folder, "root": root, "parent": engine.session_id, "fork": fork_id}


def _export(world, tmp_path, ids=None):
    ids = ids or [world["fork"], world["parent"]]  # fork first: import must still create the parent first
    return export_sessions(world["store"], world["folder"], ids, tmp_path / "out.zip")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _fresh(tmp_path: Path, name: str = "b"):
    return SQLiteEventStore(tmp_path / f"{name}.sqlite"), ArtifactFolder(tmp_path / f"{name}-art")


def _stored_files(folder: ArtifactFolder) -> list[Path]:
    return sorted(p for p in folder.root.rglob("*") if p.is_file() and folder.root / "tmp" not in p.parents)


# ----- round trip --------------------------------------------------------------------------------------

def test_round_trip_recreates_both_sessions_exactly(world, tmp_path):
    result = _export(world, tmp_path)
    assert result.jsonl_path == tmp_path / "out.jsonl" and result.zip_path == tmp_path / "out.zip"
    assert result.sessions == 2

    store, folder = _fresh(tmp_path)
    imported = import_archive(store, folder, result.zip_path)
    assert imported == [world["parent"], world["fork"]]

    source = world["store"]
    for sid in imported:
        before, after = source.read(sid), store.read(sid)
        assert [event_to_json(e) for e in after] == [event_to_json(e) for e in before]
        assert summary(fold(after)) == summary(fold(before))
        assert store.annotations(sid) == source.annotations(sid)
        assert store.artifacts_of(sid) == source.artifacts_of(sid)
        for event in before:
            for artifact in artifacts_in(event):
                assert folder.path(artifact).read_bytes() == world["folder"].path(artifact).read_bytes()
    assert store.get_session(world["fork"]).parent_session == world["parent"]
    assert store.get_session(world["parent"]).parent_session is None


def test_artifacts_walk_finds_every_file_including_the_final_video(world, tmp_path):
    result = _export(world, tmp_path, [world["parent"]])
    events = world["store"].read(world["parent"])
    finished = fold(events).finished
    with zipfile.ZipFile(result.zip_path) as zf:
        names = set(zf.namelist())
        assert f"artifacts/{events[0].input_image.path}" in names
        assert f"artifacts/{finished.final_video.path}" in names
        assert {f"artifacts/{a.path}" for a in world["store"].artifacts_of(world["parent"])} <= names
        kinds = {i.filename.rsplit(".", 1)[-1]: i.compress_type for i in zf.infolist()}
    assert kinds["mp4"] == kinds["png"] == zipfile.ZIP_STORED
    assert kinds["jsonl"] == kinds["json"] == zipfile.ZIP_DEFLATED


# ----- the rows ----------------------------------------------------------------------------------------

def test_one_row_per_attempt_with_every_key(world, tmp_path):
    result = export_sessions(world["store"], world["folder"], [world["parent"], world["fork"]],
                             tmp_path / "rows.jsonl")
    assert result.jsonl_path == tmp_path / "rows.jsonl" and result.zip_path.is_file()
    rows = _rows(result.jsonl_path)
    attempts = sum(len(s.attempts) for sid in (world["parent"], world["fork"])
                   for s in fold(world["store"].read(sid)).steps)
    assert len(rows) == result.attempts == attempts
    for row in rows:
        assert ROW_KEYS <= row.keys()
        assert row["simulated"] is True
        assert row["backends"]["vlm"]["simulated"] and row["backends"]["vlm"]["spec"]["kind"] == "sim"
        assert row["task"]["family"] == "maze" and row["task"]["task_seed"] == SEED
    with zipfile.ZipFile(result.zip_path) as zf:
        assert zf.read("attempts.jsonl").decode() == result.jsonl_path.read_text()
        names = set(zf.namelist())
        for row in rows:
            assert set(row["artifacts"].values()) <= names
            assert row["final_video"] is None or row["final_video"] in names


def test_rows_carry_peoples_decisions_with_their_names(world, tmp_path):
    rows = _rows(_export(world, tmp_path, [world["parent"]]).jsonl_path)
    by_attempt = {(r["step"], r["attempt"]): r for r in rows}
    first, second = by_attempt[(1, 1)], by_attempt[(1, 2)]

    assert {(a["label"], a["value"], a["actor"]) for a in first["annotations"]} == {
        ("D2", "reject", "ana"), ("D3", 2, "ana"), ("note", "the suggestion names the right cells", "bo")}
    assert [(o["verdict"], o["actor"]) for o in second["overrides"]] == [("accept", "bo")]
    assert second["vlm_verdict"]["verdict"] == "reject" and second["effective_verdict"] == "accept"
    assert second["outcome"] == "accepted" and first["outcome"] is None
    assert first["vlm_verdict"]["suggestion"] and first["vlm_verdict"]["first_failing_frame"] is not None
    for row in rows:
        assert [(a["label"], a["value"], a["actor"]) for a in row["session_annotations"]] == [("D1", 3, "ana")]
        assert row["final_video"].startswith("artifacts/videos/") and row["success"] in (True, False)
        assert "session_cost" not in row  # a session total on every attempt row would be counted again
    assert sum(row["cost"]["seconds"] for row in rows) == sum(
        e.seconds for e in world["store"].read(world["parent"]) if e.type == "ClipGenerated")


def test_prompt_chain_matches_the_prompt_evolved_event(world, tmp_path):
    rows = _rows(_export(world, tmp_path, [world["parent"]]).jsonl_path)
    by_attempt = {(r["step"], r["attempt"]): r for r in rows}
    evolved = [e for e in world["store"].read(world["parent"]) if e.type == "PromptEvolved"]
    assert evolved, "precondition: the reject of attempt 1 evolved the prompt"
    for event in evolved:
        this, following = by_attempt[(event.step, event.after_attempt)], by_attempt[(event.step, event.after_attempt + 1)]
        assert this["prompt"] == event.before and this["prompt_after"] == event.after
        assert this["prompt_after_source"] == event.source
        assert following["prompt_before"] == following["prompt"] == event.after
    assert by_attempt[(1, 1)]["prompt_before"] == by_attempt[(1, 1)]["plan"]["instruction"]
    assert by_attempt[(1, 2)]["prompt_after"] is None  # accepted by a person: nothing evolved after it


def test_an_edit_after_a_reject_is_the_prompt_after_of_that_attempt(world, tmp_path):
    rows = _rows(_export(world, tmp_path, [world["fork"]]).jsonl_path)
    second = next(r for r in rows if (r["step"], r["attempt"]) == (1, 2))
    assert second["prompt_after"] == "Move the red disc down one cell, then stop."
    assert second["prompt_after_source"] == "human"
    assert second["fork"]["parent_session"] == world["parent"]


def test_manifest_names_sessions_backends_and_the_simulated_notice(world, tmp_path):
    result = _export(world, tmp_path)
    with zipfile.ZipFile(result.zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "collabvr-export" and manifest["version"] == 1
    assert manifest["simulated"] is True and manifest["notice"] == SIMULATED_NOTICE
    assert "SIMULATED" in manifest["notice"]
    assert {(b["name"], b["simulated"]) for b in manifest["backends"]} == {
        (b.name, b.simulated) for b in _backends()[2:]}
    sessions = {s["id"]: s for s in manifest["sessions"]}
    assert sessions[world["fork"]]["parent_session"] == world["parent"]
    assert sessions[world["parent"]]["n_events"] == len(world["store"].read(world["parent"]))
    parent_state = fold(world["store"].read(world["parent"]))
    assert sessions[world["parent"]]["cost"] == parent_state.cost.model_dump(mode="json")
    assert sessions[world["parent"]]["inherited_cost"] is None
    fork = sessions[world["fork"]]
    assert fork["inherited_cost"] is not None
    assert fork["own_cost"]["vgm_seconds"] == pytest.approx(
        fork["cost"]["vgm_seconds"] - fork["inherited_cost"]["vgm_seconds"])


def test_export_all_and_unknown_sessions(world, tmp_path):
    result = export_all(world["store"], world["folder"], tmp_path / "all.zip")
    assert result.sessions == 2
    with pytest.raises(SessionNotFound, match="nope"):
        export_sessions(world["store"], world["folder"], [world["parent"], "nope"], tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.jsonl").exists()
    with pytest.raises(ValueError, match=".jsonl or .zip"):
        export_sessions(world["store"], world["folder"], [world["parent"]], tmp_path / "x.csv")


# ----- refusals --------------------------------------------------------------------------------------------

def _nothing_written(store: SQLiteEventStore, folder: ArtifactFolder) -> None:
    assert store.session_ids() == []
    assert _stored_files(folder) == []


def test_importing_twice_is_refused_and_adds_nothing(world, tmp_path):
    archive = _export(world, tmp_path).zip_path
    store, folder = _fresh(tmp_path)
    import_archive(store, folder, archive)
    counts = {sid: len(store.read(sid)) for sid in store.session_ids()}
    files = _stored_files(folder)
    with pytest.raises(ArchiveError, match=world["parent"]):
        import_archive(store, folder, archive)
    assert {sid: len(store.read(sid)) for sid in store.session_ids()} == counts
    assert _stored_files(folder) == files


def test_a_truncated_zip_is_refused(world, tmp_path):
    archive = _export(world, tmp_path).zip_path
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    store, folder = _fresh(tmp_path)
    with pytest.raises(ArchiveError, match="not a readable zip"):
        import_archive(store, folder, archive)
    _nothing_written(store, folder)


def _rewrite(archive: Path, target: Path, change) -> Path:
    """Copy `archive` to `target`, passing each entry's (name, bytes) through `change` (None drops it)."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            kept = change(info.filename, src.read(info))
            if kept is not None:
                dst.writestr(info.filename, kept)
    return target


def _an_artifact(archive: Path, suffix: str) -> str:
    with zipfile.ZipFile(archive) as zf:
        return next(n for n in zf.namelist() if n.startswith("artifacts/") and n.endswith(suffix))


def test_a_missing_artifact_is_refused(world, tmp_path):
    archive = _export(world, tmp_path).zip_path
    gone = _an_artifact(archive, ".mp4")
    broken = _rewrite(archive, tmp_path / "missing.zip", lambda name, data: None if name == gone else data)
    store, folder = _fresh(tmp_path)
    with pytest.raises(ArchiveError, match="missing from the archive"):
        import_archive(store, folder, broken)
    _nothing_written(store, folder)


def test_a_tampered_artifact_is_refused(world, tmp_path):
    archive = _export(world, tmp_path).zip_path
    victim = _an_artifact(archive, ".png")

    def flip_one_byte(name: str, data: bytes) -> bytes:
        if name != victim:
            return data
        return data[:-1] + bytes([data[-1] ^ 0xFF])

    broken = _rewrite(archive, tmp_path / "tampered.zip", flip_one_byte)
    store, folder = _fresh(tmp_path)
    with pytest.raises(ArchiveError, match="altered"):
        import_archive(store, folder, broken)
    _nothing_written(store, folder)


def test_a_broken_log_or_manifest_is_refused(world, tmp_path):
    archive = _export(world, tmp_path, [world["parent"]]).zip_path
    log = f"sessions/{world['parent']}/events.jsonl"
    cases = {
        "no_start": (lambda name, data: b"\n".join(data.splitlines()[1:]) if name == log else data,
                     "does not start with a SessionStarted"),
        "garbage": (lambda name, data: data + b"{not json}\n" if name == log else data, "not a valid event"),
        "version": (lambda name, data: data.replace(b'"version": 1', b'"version": 99')
                    if name == "manifest.json" else data, "version 99"),
    }
    for label, (change, message) in cases.items():
        broken = _rewrite(archive, tmp_path / f"{label}.zip", change)
        store, folder = _fresh(tmp_path, label)
        with pytest.raises(ArchiveError, match=message):
            import_archive(store, folder, broken)
        _nothing_written(store, folder)


def _lines(change):
    """A rewrite of the session log's lines by `change(lines) -> lines`."""
    return lambda data: b"\n".join(change(data.splitlines())) + b"\n"


def _swap_first(kind: bytes, other: bytes):
    def change(lines):
        i = next(n for n, line in enumerate(lines) if kind in line)
        j = next(n for n, line in enumerate(lines) if other in line and n > i)
        lines[i], lines[j] = lines[j], lines[i]
        return lines
    return change


@pytest.mark.parametrize("label, change, message", [
    ("duplicated", lambda lines: lines[:3] + [lines[2]] + lines[3:], "could have recorded"),
    ("out_of_order", _swap_first(b'"type":"ClipGenerated"', b'"type":"ClipVerified"'), "could have recorded"),
    ("forged_actor", lambda lines: [line.replace(b'"actor":"ana"', b'"actor":"engine"') for line in lines],
     "recorded as the engine's"),
    ("engine_as_person", lambda lines: [line.replace(b'"actor":"engine"', b'"actor":"mallory"')
                                        if b'"type":"StepPlanned"' in line else line for line in lines],
     "recorded as 'mallory'"),
])
def test_an_archive_of_an_impossible_history_is_refused_and_writes_nothing(world, tmp_path, label, change, message):
    archive = _export(world, tmp_path, [world["parent"]]).zip_path
    log = f"sessions/{world['parent']}/events.jsonl"
    forged = _rewrite(archive, tmp_path / f"{label}.zip",
                      lambda name, data: _lines(change)(data) if name == log else data)
    store, folder = _fresh(tmp_path, label)
    with pytest.raises(ArchiveError, match=message):
        import_archive(store, folder, forged)
    _nothing_written(store, folder)


# ----- hostile session ids -----------------------------------------------------------------------------------

HOSTILE_IDS = {"climbs": "../x", "climbs_twice": "../../etc/passwd", "slash": "a/b", "too_long": "x" * 65,
               "empty": "", "space": "a b", "dot": "a.b", "not_ascii": "séance", "nul": "a\x00b"}


def _with_session_id(archive: Path, target: Path, old: str, new: str) -> Path:
    """`archive` with session id `old` replaced by `new` everywhere: the manifest, the logs (as JSON
    strings) and the name of the session's folder."""
    quoted_old, quoted_new = json.dumps(old).encode(), json.dumps(new).encode()
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            name = info.filename.replace(f"sessions/{old}/", f"sessions/{new}/")
            dst.writestr(name, src.read(info).replace(quoted_old, quoted_new))
    return target


@pytest.mark.parametrize("hostile", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_an_archive_with_a_hostile_session_id_is_refused_and_writes_nothing(world, tmp_path, hostile):
    archive = _export(world, tmp_path, [world["parent"]]).zip_path
    broken = _with_session_id(archive, tmp_path / "hostile.zip", world["parent"], hostile)
    store, folder = _fresh(tmp_path)
    with pytest.raises(ArchiveError, match="not a valid session id") as refused:
        import_archive(store, folder, broken)
    assert "manifest.json lists a bad session id" in str(refused.value)
    _nothing_written(store, folder)


def test_a_fork_of_a_session_with_a_hostile_id_is_refused(world, tmp_path):
    archive = _export(world, tmp_path, [world["fork"]]).zip_path
    broken = _with_session_id(archive, tmp_path / "hostile.zip", world["parent"], "../parent")
    store, folder = _fresh(tmp_path)
    with pytest.raises(ArchiveError, match=r"forks a session with a bad id: '\.\./parent' is not a valid"):
        import_archive(store, folder, broken)
    _nothing_written(store, folder)


def test_export_refuses_a_hostile_session_id_before_writing(world, tmp_path):
    with pytest.raises(InvalidSessionId, match="not a valid session id"):
        export_sessions(world["store"], world["folder"], [world["parent"], "../x"], tmp_path / "out.zip")
    assert list(tmp_path.iterdir()) == []

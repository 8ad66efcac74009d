"""Export sessions for analysis and for moving them between deployments; import such an archive back.

`export_sessions` writes two files side by side, with the same stem:

    <stem>.jsonl   one row per attempt (a flat table for notebooks: prompt chain, verdicts, people's labels,
                   cost, artifact paths)
    <stem>.zip     manifest.json, the same rows as attempts.jsonl, every session's full event log as
                   sessions/<id>/events.jsonl, and every file those events reference as artifacts/<path>

The zip is self-contained: `import_archive` recreates its sessions, event for event, in another store and
artifact folder. The event logs are the truth; the rows are derived from them and are not read on import.

Limits, plainly:
- Export reads each session's whole log and folds it in memory; artifacts are streamed, not loaded.
- A fork's rows repeat its parent's attempts up to the fork point (a fork holds a copy of those events);
  the `fork` key of a row says which session it was forked from.
- Forks are exported as given: a fork's parent is not added unless its id is listed too.
- Import checks the whole archive before it writes anything, but it is not one transaction over all
  sessions: if a session is created by someone else between the check and the write, the sessions this
  import already created are deleted again (when the store can delete) and the error is raised; artifact
  files it copied in stay (content-addressed, so they are harmless and shared with any later import).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from pydantic import ValidationError

from collabvr.artifacts import SUFFIX, ArtifactFolder
from collabvr.events import (
    ActionEdited, Artifact, ClipGenerated, Event, PromptEvolved, SessionStarted, StepPlanned, VerdictOverridden,
    artifacts_in, attempt_target, event_from_json, event_to_json,
)
from collabvr.replay import ImpossibleHistory, check_history
from collabvr.state import AttemptState, StepState, fold
from collabvr.store import EventStore, InvalidSessionId, SessionNotFound, StoreError, check_session_id


FORMAT = "collabvr-export"
VERSION = 1
SIMULATED_NOTICE = ("Contains output of SIMULATED backends: the clips, plans and verdicts come from the "
                    "simulated VGM/VLM in collabvr.sim, not from real models. Do not report them as model results.")

MANIFEST = "manifest.json"
ATTEMPTS = "attempts.jsonl"
ARTIFACTS_DIR = "artifacts"
SESSIONS_DIR = "sessions"

# Already-compressed media gain nothing from deflate; storing them keeps export and import fast.
_STORED_SUFFIXES = (".mp4", ".png")


class ArchiveError(ValueError):
    """The archive cannot be imported (not a zip, wrong format, a broken log, a missing or altered
    artifact, a session that already exists). Raised before anything is written; the message says why."""


@dataclass(frozen=True)
class ExportResult:
    jsonl_path: Path
    zip_path: Path
    sessions: int
    attempts: int


# ----- export -------------------------------------------------------------------------------------------

def export_sessions(store: EventStore, artifacts: ArtifactFolder, session_ids: Sequence[str],
                    out: Path | str) -> ExportResult:
    """Export `session_ids` (duplicates ignored, order kept) to `out` and its sibling.

    `out` must end in .jsonl or .zip; the other file gets the same stem and the other suffix. Both are
    written to temporary files in the same folder and renamed into place, so a reader never sees half a
    file (the two renames are separate: a crash between them can leave one new and one old file).
    Raises InvalidSessionId for an id that is not one, SessionNotFound for an unknown id and
    FileNotFoundError for an artifact missing from the folder, all before anything is written.
    """
    jsonl_path, zip_path = _output_paths(Path(out))
    ids = [check_session_id(sid) for sid in dict.fromkeys(session_ids)]  # ids name folders in the zip
    logs = {sid: _read_log(store, sid) for sid in ids}
    referenced = _referenced_artifacts(logs.values())
    missing = [a.path for a in referenced if not artifacts.path(a).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} artifact(s) named by these sessions are missing from "
                                f"{artifacts.root}: {', '.join(missing[:5])}")

    rows = [row for sid in ids for row in attempt_rows(logs[sid])]
    rows_text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    manifest = _manifest(logs)

    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_jsonl = _temp_beside(jsonl_path)
    tmp_zip = _temp_beside(zip_path)
    try:
        tmp_jsonl.write_text(rows_text, encoding="utf-8")
        with zipfile.ZipFile(tmp_zip, "w") as zf:
            _write_text(zf, MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            _write_text(zf, ATTEMPTS, rows_text)
            for sid, events in logs.items():
                _write_text(zf, f"{SESSIONS_DIR}/{sid}/events.jsonl",
                            "".join(event_to_json(e) + "\n" for e in events))
            for artifact in referenced:
                name = _archive_name(artifact)
                compress = zipfile.ZIP_STORED if name.endswith(_STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
                zf.write(artifacts.path(artifact), name, compress_type=compress)
        os.replace(tmp_jsonl, jsonl_path)
        os.replace(tmp_zip, zip_path)
    finally:
        for tmp in (tmp_jsonl, tmp_zip):
            tmp.unlink(missing_ok=True)
    return ExportResult(jsonl_path=jsonl_path, zip_path=zip_path, sessions=len(ids), attempts=len(rows))


def export_all(store: EventStore, artifacts: ArtifactFolder, out: Path | str) -> ExportResult:
    """Export every session in the store, oldest first (so a fork's parent precedes it).

    Uses `store.session_ids()` (one query, every id) rather than paging `list_sessions`: that list is
    ordered by last update, so pages shift while sessions run and offset paging could skip or repeat one.
    """
    return export_sessions(store, artifacts, store.session_ids(), out)


def attempt_rows(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The rows of one session's log: one per attempt, in step and attempt order (see the module doc)."""
    state = fold(events)
    started = state.started
    prompts = _prompt_chain(events)
    overrides: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if isinstance(event, VerdictOverridden):
            overrides.setdefault(attempt_target(event.step, event.attempt), []).append(
                {"verdict": event.verdict, "actor": event.actor, "reason": event.reason,
                 "suggestion": event.suggestion, "at": event.at})

    targets = {attempt_target(s.number, a.number) for s in state.steps for a in s.attempts}
    labels: dict[str, list[dict[str, Any]]] = {}
    session_labels = []
    for note in state.annotations:
        entry = {"label": note.label, "value": note.value, "actor": note.actor, "reason": note.reason, "at": note.at}
        if note.study is not None:  # given in a reliability study (blind unless the study says otherwise)
            entry["study"] = note.study
        if note.frame is not None:  # a note anchored at a frame of the attempt's clip
            entry["frame"] = note.frame
        if note.target in targets:
            labels.setdefault(note.target, []).append(entry)
        else:
            # "session" (D1, notes), or a note on something that is not an attempt: kept, with its target.
            session_labels.append({"target": note.target, **entry})

    finished = state.finished
    common = {
        "session": state.session_id,
        "title": started.title,
        "fork": started.fork.model_dump(mode="json") if started.fork else None,
        "task": started.task.model_dump(mode="json"),
        "backends": {"vlm": started.vlm.model_dump(mode="json"), "vgm": started.vgm.model_dump(mode="json")},
        "simulated": started.vlm.simulated or started.vgm.simulated,
    }
    tail = {
        "session_annotations": session_labels,
        "final_video": _archive_name(finished.final_video) if finished and finished.final_video else None,
        "success": finished.success if finished else None,
    }
    rows = []
    for step in state.steps:
        for attempt in step.attempts:
            target = attempt_target(step.number, attempt.number)
            before, after, after_source = prompts[(step.number, attempt.number)]
            rows.append({
                **common,
                "step": step.number,
                "attempt": attempt.number,
                "purpose": attempt.purpose,
                "plan": _plan(step),
                "prompt_before": before,
                "prompt": attempt.prompt,
                "prompt_after": after,
                "prompt_after_source": after_source,
                "start": attempt.generated.start.model_dump(mode="json"),
                "vlm_verdict": _verdict(attempt),
                "effective_verdict": attempt.effective_verdict,
                "overrides": overrides.get(target, []),
                "annotations": labels.get(target, []),
                "routes": [{"action": r.decision.action, "estimated_steps": r.decision.estimated_steps, "by": r.by,
                            "reason": r.decision.reason, "suggestion": r.decision.suggestion}
                           for r in step.routes if r.after_attempt == attempt.number],
                "outcome": step.status if step.result_attempt == attempt.number else None,
                "cost": _cost(attempt.generated),
                "artifacts": {name: _archive_name(getattr(attempt.generated, name))
                              for name in ("clip", "candidate", "start_frame")},
                **tail,
            })
    return rows


def _prompt_chain(events: Sequence[Event]) -> dict[tuple[int, int], tuple[str, str | None, str | None]]:
    """(prompt_before, prompt_after, prompt_after_source) per (step, attempt), replayed from the log.

    prompt_before is the step's instruction just before the attempt was generated (the planner's, or the
    latest evolution or edit). prompt_after is the last change to the instruction made while this was the
    step's latest attempt: a PromptEvolved after it (source verifier/override/router) or a person's edit
    (source human); None when the instruction was left as it was.
    """
    instruction: dict[int, str] = {}
    latest: dict[int, int] = {}
    chain: dict[tuple[int, int], tuple[str, str | None, str | None]] = {}
    for event in events:
        if isinstance(event, StepPlanned):
            instruction[event.step] = event.plan.instruction
        elif isinstance(event, ClipGenerated):
            chain[(event.step, event.attempt)] = (instruction.get(event.step, event.prompt), None, None)
            latest[event.step] = event.attempt
        elif isinstance(event, (PromptEvolved, ActionEdited)):
            instruction[event.step] = event.after
            number = event.after_attempt if isinstance(event, PromptEvolved) else latest.get(event.step)
            if (event.step, number) in chain:
                source = event.source if isinstance(event, PromptEvolved) else "human"
                chain[(event.step, number)] = (chain[(event.step, number)][0], event.after, source)
    return chain


def _plan(step: StepState) -> dict[str, Any]:
    plan = step.plan
    return {"observation": plan.observation, "instruction": plan.instruction, "target_state": plan.target_state,
            "estimated_steps_remaining": plan.estimated_steps_remaining}


def _verdict(attempt: AttemptState) -> dict[str, Any] | None:
    if attempt.verified is None:
        return None
    v = attempt.verified.verdict
    return {"verdict": v.verdict, "confidence": v.confidence, "reason": v.reason, "suggestion": v.suggestion,
            "good_fraction": v.good_fraction, "error_type": v.error_type,
            "first_failing_frame": attempt.verified.first_failing_frame}


def _cost(generated: ClipGenerated) -> dict[str, Any]:
    """This attempt's own cost. Session totals (which also count failed generations and VLM calls) are in
    the manifest, once per session, so that summing rows never counts a total twice."""
    return {"seconds": generated.seconds, "frame_seconds": generated.frame_seconds, "n_frames": generated.n_frames,
            "prefix_frames": generated.prefix_frames, "fps": generated.fps,
            "first_frame_ssim": generated.first_frame_ssim, "wall_s": generated.wall_s,
            "gate_wait_s": generated.gate_wait_s}


def _manifest(logs: dict[str, list[Event]]) -> dict[str, Any]:
    sessions, backends = [], []
    for sid, events in logs.items():
        started = events[0]
        assert isinstance(started, SessionStarted)
        state = fold(events)
        sessions.append({"id": sid, "title": started.title, "n_events": len(events),
                         "parent_session": started.fork.parent_session if started.fork else None,
                         "cost": state.cost.model_dump(mode="json"),
                         "own_cost": state.own_cost.model_dump(mode="json"),
                         "inherited_cost": state.inherited_cost.model_dump(mode="json")
                         if state.inherited_cost is not None else None})
        for label in (started.vlm, started.vgm):
            entry = {"name": label.name, "simulated": label.simulated}
            if entry not in backends:
                backends.append(entry)
    simulated = any(b["simulated"] for b in backends)
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sessions": sessions, "backends": backends, "simulated": simulated,
    }
    if simulated:
        manifest["notice"] = SIMULATED_NOTICE
    return manifest


def _read_log(store: EventStore, session_id: str) -> list[Event]:
    events = store.read(session_id)
    if not events:  # a store that reads an unknown id as empty instead of raising
        raise SessionNotFound(session_id)
    return events


def _output_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix not in (".jsonl", ".zip"):
        raise ValueError(f"export target must end in .jsonl or .zip, not {out.name!r}")
    return out.with_suffix(".jsonl"), out.with_suffix(".zip")


def _temp_beside(path: Path) -> Path:
    """A temporary file in `path`'s folder, so the final os.replace is a rename on one filesystem."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _write_text(zf: zipfile.ZipFile, name: str, text: str) -> None:
    zf.writestr(name, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)


# ----- artifacts named by events --------------------------------------------------------------------------

def _referenced_artifacts(logs: Any) -> list[Artifact]:
    """Distinct artifacts (by hash) of every event of every log, in first-seen order."""
    seen: dict[str, Artifact] = {}
    for events in logs:
        for event in events:
            for artifact in artifacts_in(event):
                seen.setdefault(artifact.sha256, artifact)
    return list(seen.values())


def _archive_name(artifact: Artifact) -> str:
    return f"{ARTIFACTS_DIR}/{artifact.path}"


# ----- import -------------------------------------------------------------------------------------------

def import_archive(store: EventStore, artifacts: ArtifactFolder, path: Path | str) -> list[str]:
    """Recreate the sessions of an export zip in `store` and `artifacts`; returns their ids, in the order
    they were created (a fork after its parent when both are in the archive).

    Everything is checked first, and ArchiveError raised before any write, if: the file is not a readable
    zip; the manifest is missing or of another format/version; a session id (or a fork's parent id) is not
    a valid id (collabvr.store.check_session_id); a listed session's events.jsonl is missing,
    does not parse, does not start with a SessionStarted of that id, or does not fold into a state; an
    artifact an event names is missing, has another size, or its content's sha256 differs from the hash in
    its name; a session id already exists in `store`. Then artifact files are copied in (a hash already
    in the folder is not copied twice) and each session is created from its first event and appended with
    the rest, verbatim. A fork whose parent is neither in the archive nor in the store keeps the parent's
    id in its SessionStarted event, but the store records no parent link.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            logs = _check_archive(zf)
            _check_new(store, logs)
            needed = _referenced_artifacts(logs.values())
            for artifact in needed:
                _check_artifact(zf, artifact)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ArchiveError(f"{path.name} is not a readable zip archive: {exc}") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc

    # ----- nothing has been written up to here -----
    with zipfile.ZipFile(path) as zf:
        for artifact in needed:
            _copy_artifact(zf, artifact, artifacts)
    created: list[str] = []
    for sid in _parents_first(logs):
        events = logs[sid]
        try:
            store.create(events[0])  # type: ignore[arg-type]
            created.append(sid)
            if len(events) > 1:
                store.append(sid, events[1:], expected_seq=1)
        except StoreError as exc:
            _undo(store, created)
            raise ArchiveError(f"import stopped at session {sid}: {exc}; the sessions it had created "
                               "were removed again") from exc
    return created


def _check_archive(zf: zipfile.ZipFile) -> dict[str, list[Event]]:
    """The manifest's sessions and their parsed, folded logs, in manifest order."""
    names = set(zf.namelist())
    if MANIFEST not in names:
        raise ArchiveError(f"no {MANIFEST}: this is not a {FORMAT} archive")
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{MANIFEST} does not say format {FORMAT!r}: not a CollabVR export")
    if manifest.get("version") != VERSION:
        raise ArchiveError(f"archive version {manifest.get('version')!r} is not supported (this build reads "
                           f"version {VERSION})")
    listed = manifest.get("sessions")
    if not isinstance(listed, list) or not all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in listed):
        raise ArchiveError(f"{MANIFEST} has no valid session list")
    ids = [s["id"] for s in listed]
    for sid in ids:
        _check_id(sid, f"{MANIFEST} lists a bad session id")
    if len(set(ids)) != len(ids):
        raise ArchiveError(f"{MANIFEST} lists a session twice")
    present = {name.split("/")[1] for name in names
               if name.startswith(f"{SESSIONS_DIR}/") and name.endswith("/events.jsonl") and name.count("/") == 2}
    unlisted = present - set(ids)
    if unlisted:
        raise ArchiveError(f"session log(s) not listed in {MANIFEST}: {', '.join(sorted(unlisted))}")
    return {sid: _check_log(zf, sid) for sid in ids}


def _check_log(zf: zipfile.ZipFile, session_id: str) -> list[Event]:
    name = f"{SESSIONS_DIR}/{session_id}/events.jsonl"
    try:
        lines = zf.read(name).decode("utf-8").splitlines()
    except KeyError:
        raise ArchiveError(f"session {session_id} is listed but {name} is missing") from None
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{name} is not UTF-8 text: {exc}") from exc
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(event_from_json(line))
        except ValidationError as exc:
            raise ArchiveError(f"{name} line {number} is not a valid event: "
                               f"{exc.errors()[0].get('msg', exc)}") from exc
    if not events or not isinstance(events[0], SessionStarted):
        raise ArchiveError(f"{name} does not start with a SessionStarted event")
    if events[0].session_id != session_id:
        raise ArchiveError(f"{name} holds session {events[0].session_id!r}, not {session_id!r}")
    if events[0].fork is not None:
        _check_id(events[0].fork.parent_session, f"{name} forks a session with a bad id")
    try:
        # Replayed under the engine's rules: a log that folds but that the engine could not have written
        # (events duplicated, reordered or forged, a decision the app would have refused) is refused too.
        check_history(events)
    except ImpossibleHistory as exc:
        raise ArchiveError(f"{name} is not a history this app could have recorded: {exc}; nothing was "
                           "imported") from exc
    return events


def _check_id(session_id: str, where: str) -> None:
    """An id from the archive must be valid before it names a file or reaches a store."""
    try:
        check_session_id(session_id)
    except InvalidSessionId as exc:
        raise ArchiveError(f"{where}: {exc}; nothing was imported") from None


def _check_new(store: EventStore, logs: dict[str, list[Event]]) -> None:
    existing = []
    for sid in logs:
        try:
            # Reading past the end costs nothing yet still raises for an unknown id (both stores).
            store.read(sid, since=1 << 62)
        except SessionNotFound:
            continue
        existing.append(sid)
    if existing:
        raise ArchiveError(f"session(s) already in this store: {', '.join(existing)}; nothing was imported "
                           "(delete them first, or import into another data folder)")


def _check_artifact(zf: zipfile.ZipFile, artifact: Artifact) -> None:
    name = _archive_name(artifact)
    # The folder derives a file's path from its hash and kind; an event naming any other path would point
    # at nothing after import, so the layout is part of what is checked.
    expected = PurePosixPath(f"{artifact.kind}s") / artifact.sha256[:2] / f"{artifact.sha256}{SUFFIX[artifact.kind]}"
    if artifact.path != expected.as_posix():
        raise ArchiveError(f"artifact path {artifact.path!r} does not match its hash and kind (expected {expected})")
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ArchiveError(f"artifact {name} is named by an event but missing from the archive") from None
    if info.file_size != artifact.bytes:
        raise ArchiveError(f"artifact {name} has {info.file_size} bytes, its events say {artifact.bytes}")
    digest = hashlib.sha256()
    with zf.open(info) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != artifact.sha256:
        raise ArchiveError(f"artifact {name} was altered: its content's sha256 is {digest.hexdigest()}")


def _copy_artifact(zf: zipfile.ZipFile, artifact: Artifact, artifacts: ArtifactFolder) -> None:
    if artifacts.path(artifact).is_file():
        return  # same hash, same content: stored once
    tmp = artifacts.scratch_path(SUFFIX[artifact.kind])
    with zf.open(_archive_name(artifact)) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    stored = artifacts.put_file(tmp, artifact.kind)  # renames into place; hashes again on the way
    if stored.sha256 != artifact.sha256:  # only if the archive changed on disk since it was checked
        raise ArchiveError(f"artifact {artifact.path} changed while it was being imported")


def _parents_first(logs: dict[str, list[Event]]) -> list[str]:
    """Archive sessions ordered so that a fork comes after its parent (when the parent is in the archive)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(sid: str) -> None:
        if sid in order or sid in visiting:
            return  # visiting: a cycle cannot come from a real store; the folded logs are still valid
        visiting.add(sid)
        started = logs[sid][0]
        parent = started.fork.parent_session if isinstance(started, SessionStarted) and started.fork else None
        if parent in logs:
            visit(parent)
        order.append(sid)

    for sid in logs:
        visit(sid)
    return order


def _undo(store: EventStore, created: list[str]) -> None:
    delete = getattr(store, "delete_session", None)
    if delete is None:
        return
    for sid in reversed(created):  # forks before their parents
        try:
            delete(sid)
        except StoreError:
            pass  # best effort: the original error is what the caller needs to see


__all__ = ["ArchiveError", "ExportResult", "SIMULATED_NOTICE", "attempt_rows", "export_all",
           "export_sessions", "import_archive"]

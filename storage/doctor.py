"""The integrity doctor: is this data folder what the app would have written, and complete?

It reads the database read-only and the artifact folder, and reports findings:
- schema: migrations this build knows but the database lacks, or ones it does not know (a newer build);
- sessions: a gap or a duplicate in a session's sequence numbers, a count that disagrees with its events,
  an event that does not parse, a log the engine could not have written (collabvr.replay), a status that
  disagrees with the status rule;
- artifacts: a file an event names that is missing, or whose size or sha256 is not what the event says;
- orphans: artifact files, artifact rows and cached frames no event names; temporary files a killed
  process left behind.

`fix()` removes only what is provably safe to remove: temporary files and orphan files untouched for
`SAFE_AGE_S` (a younger file may belong to a write whose event is about to be appended), orphan artifact
rows, and cached frames of clips no event names. It never touches an event or a file an event names.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from collabvr.artifacts import file_sha256
from collabvr.events import Artifact, artifacts_in, event_from_json
from collabvr.replay import ImpossibleHistory, check_history
from collabvr.status import session_status
from storage.data_dir import ARTIFACTS_NAME, CACHE_NAME
from storage.schema import MIGRATIONS

SAFE_AGE_S = 600.0
ARTIFACT_FOLDERS = ("images", "clips", "videos")

Severity = Literal["error", "warning", "fixable"]


@dataclass(frozen=True)
class Finding:
    severity: Severity  # error: data is wrong or missing; warning: odd but harmless; fixable: --fix removes it
    check: str
    where: str
    detail: str


@dataclass
class Report:
    database: Path
    artifact_root: Path
    sessions: int = 0
    events: int = 0
    artifacts: int = 0
    findings: list[Finding] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    def add(self, severity: Severity, check: str, where: str, detail: str) -> None:
        self.findings.append(Finding(severity, check, where, detail))

    @property
    def healthy(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def counts(self) -> dict[str, int]:
        return dict(Counter(f.severity for f in self.findings))


def examine(database: Path | str, artifact_root: Path | str, *, hashes: bool = True,
            now: float | None = None) -> Report:
    """Check a database and its artifact folder; writes nothing. With `hashes`, every named artifact's
    sha256 is recomputed (reads every file once)."""
    database, artifact_root = Path(database), Path(artifact_root)
    report = Report(database, artifact_root)
    if not database.is_file():
        report.add("error", "database", str(database), "no database file here")
        return report
    now = time.time() if now is None else now
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        if not _check_schema(conn, report):
            return report
        named = _check_sessions(conn, report)
        _check_named_artifacts(named, artifact_root, report, hashes)
        _check_orphans(conn, named, artifact_root, report, now)
    finally:
        conn.close()
    return report


def fix(report: Report) -> Report:
    """Remove what `report` found removable (findings of severity "fixable"); records what it removed."""
    rows = [f for f in report.findings if f.severity == "fixable" and f.check == "orphan row"]
    if rows:
        conn = sqlite3.connect(report.database, timeout=30)
        try:
            with conn:
                for finding in rows:
                    gone = conn.execute("DELETE FROM artifacts WHERE sha256 = ? AND sha256 NOT IN "
                                        "(SELECT sha256 FROM session_artifacts)", (finding.where,)).rowcount
                    if gone:
                        report.fixed.append(f"artifact row {finding.where}")
        finally:
            conn.close()
    for finding in report.findings:
        if finding.severity == "fixable" and finding.check in ("orphan file", "stale temp file", "orphan cache"):
            path = Path(finding.where)
            try:
                path.unlink()
                report.fixed.append(str(path))
            except FileNotFoundError:
                pass
    return report


# ----- checks ----------------------------------------------------------------------------------------------

def _check_schema(conn: sqlite3.Connection, report: Report) -> bool:
    try:
        applied = [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'collabvr' ORDER BY id")]
    except sqlite3.DatabaseError as exc:
        report.add("error", "schema", str(report.database), f"not a CollabVR database ({exc})")
        return False
    known = [m.name for m in MIGRATIONS._migrations]  # noqa: SLF001 (sqlite-utils keeps its registry here)
    missing = [name for name in known if name not in applied]
    unknown = [name for name in applied if name not in known]
    if missing:
        report.add("warning", "schema", str(report.database),
                   f"migrations not applied yet: {', '.join(missing)} (opening it with the app or CLI applies them)")
    if unknown:
        report.add("error", "schema", str(report.database),
                   f"migrations this build does not know: {', '.join(unknown)} (written by a newer build)")
    return not unknown


def _check_sessions(conn: sqlite3.Connection, report: Report) -> dict[str, Artifact]:
    """Sequence numbers, counts, parsing, replay and status of every session; returns every artifact an
    event names, by sha256."""
    named: dict[str, Artifact] = {}
    sessions = conn.execute("SELECT id, n_events, status FROM sessions ORDER BY created_at, rowid").fetchall()
    report.sessions = len(sessions)
    for session_id, n_events, status in sessions:
        rows = conn.execute("SELECT seq, payload FROM events WHERE session_id = ? ORDER BY seq",
                            (session_id,)).fetchall()
        report.events += len(rows)
        seqs = [seq for seq, _ in rows]
        if seqs != list(range(len(rows))):
            missing = sorted(set(range(max(seqs, default=-1) + 1)) - set(seqs))
            report.add("error", "sequence", session_id,
                       f"event numbers are not 0..{len(rows) - 1}" + (f": missing {missing[:5]}" if missing else ""))
        if n_events != len(rows):
            report.add("error", "count", session_id, f"the session row says {n_events} events, the log holds {len(rows)}")
        events = []
        for seq, payload in rows:
            try:
                events.append(event_from_json(payload))
            except (ValidationError, ValueError) as exc:
                report.add("error", "event", f"{session_id}#{seq}", f"does not parse: {str(exc).splitlines()[0]}")
        if len(events) != len(rows):
            continue
        for event in events:
            for artifact in artifacts_in(event):
                named[artifact.sha256] = artifact
        if events and getattr(events[0], "session_id", session_id) != session_id:
            report.add("error", "event", f"{session_id}#0", "its SessionStarted names another session")
        try:
            check_history(events)
        except ImpossibleHistory as exc:
            report.add("error", "replay", session_id, str(exc))
        rule = session_status(events)
        if status != rule:
            report.add("warning", "status", session_id, f"listed as {status!r}; its log says {rule!r}")
    report.artifacts = len(named)
    return named


def _check_named_artifacts(named: dict[str, Artifact], root: Path, report: Report, hashes: bool) -> None:
    for artifact in named.values():
        path = root / artifact.path
        if not path.is_file():
            report.add("error", "missing file", artifact.path, f"named by an event, not in {root}")
            continue
        size = path.stat().st_size
        if size != artifact.bytes:
            report.add("error", "wrong file", artifact.path, f"{size} bytes; its events say {artifact.bytes}")
        elif hashes and file_sha256(path) != artifact.sha256:
            report.add("error", "wrong file", artifact.path, "its content does not match its sha256 (altered)")


def _check_orphans(conn: sqlite3.Connection, named: dict[str, Artifact], root: Path, report: Report,
                   now: float) -> None:
    for (sha,) in conn.execute("SELECT sha256 FROM artifacts WHERE sha256 NOT IN (SELECT sha256 FROM "
                               "session_artifacts)"):
        if sha not in named:
            report.add("fixable", "orphan row", sha, "an artifact row no session uses")
    for folder in ARTIFACT_FOLDERS:
        for path in sorted((root / folder).glob("*/*")):
            sha = path.stem
            if sha in named or not path.is_file():
                continue
            old = now - path.stat().st_mtime >= SAFE_AGE_S
            report.add("fixable" if old else "warning", "orphan file", str(path),
                       "no event names it" + ("" if old else f" (younger than {SAFE_AGE_S:.0f} s: left alone)"))
    scratch = root / "tmp"
    for path in sorted(scratch.glob("*")) if scratch.is_dir() else []:
        if path.is_file() and now - path.stat().st_mtime >= 60:
            report.add("fixable", "stale temp file", str(path), "left by a process that stopped mid-write")
    cache = root.parent / CACHE_NAME if root.name == ARTIFACTS_NAME else root / CACHE_NAME
    for path in sorted(cache.glob("*/*")) if cache.is_dir() else []:
        if path.is_file() and path.name.split("_", 1)[0] not in named:
            report.add("fixable", "orphan cache", str(path), "derived from a clip no event names")


def as_json(report: Report) -> str:
    return json.dumps({
        "database": str(report.database), "artifacts": str(report.artifact_root), "healthy": report.healthy,
        "sessions": report.sessions, "events": report.events, "named_artifacts": report.artifacts,
        "counts": report.counts(), "fixed": report.fixed,
        "findings": [f.__dict__ for f in report.findings]}, indent=2)

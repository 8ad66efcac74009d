"""Does the SQLite store stay as fast with 10,000 sessions as with 10? A script, not a test.

    python bench/bench_store.py [--sessions 10000] [--events 1000000] [--path /tmp/x.sqlite] [--repeats 31]

Builds a large database (sessions x events/sessions events, realistic JSON of real event types) and a
small one (10 sessions of the same size), then times, as the median of several repeats on each:
  list:  the first page of the session list, most recent first, 10 rows: the small database holds only
         10 sessions, so a longer page would compare 50 rows with 10 (the 50-row page is shown too)
  open:  read one session's events and fold them into its state (a different random session each repeat)
and prints both times and the ratio large/small. Target: both ratios <= 1.3.

The databases are filled straight through executemany in big transactions, bypassing `append`; the rows
are what `append` would have written. `--path` names where the large database goes: an existing file with
the requested sessions is reused as is, any other existing file is refused. Without it a temporary
file is used and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collabvr.backends import Plan, Verdict  # noqa: E402
from collabvr.config import LoopConfig  # noqa: E402
from collabvr.events import (  # noqa: E402
    Annotated, Artifact, BackendLabel, ClipGenerated, ClipVerified, CostSummary, Event, PromptEvolved,
    SessionFinished, SessionStarted, StartPoint, StepAccepted, StepPlanned, TaskSpec, UsageInfo, artifacts_in,
    event_to_json,
)
from collabvr.state import fold  # noqa: E402
from collabvr.status import session_status  # noqa: E402
from storage.sqlite_store import SQLiteEventStore  # noqa: E402


TOKEN = "@@@@@@@@"  # replaced by each session's 8-hex-digit number: its id and its artifact hashes
SMALL_SESSIONS = 10
PAGE = SMALL_SESSIONS  # compare pages of the same length
TARGET_RATIO = 1.3


# ----- one realistic session, as a template -------------------------------------------------------------

def _artifact(k: int, kind: str) -> Artifact:
    digest = f"{TOKEN}{k:056x}"
    suffix = ".png" if kind == "image" else ".mp4"
    return Artifact(sha256=digest, path=f"{kind}s/{k % 256:02x}/{digest}{suffix}", kind=kind, bytes=150_000 + k)


def template_session(n_events: int) -> list[Event]:
    """A finished session of exactly `n_events`: steps with a rejected attempt, an evolved prompt and an
    accepted retry (7 events each), a person's labels, and SessionFinished."""
    usage = UsageInfo(calls=1, input_tokens=1850, output_tokens=160, latency_s=2.4)
    n_steps = max(1, (n_events - 2) // 7)
    started = SessionStarted(
        session_id=TOKEN, title="Move the red disc to the green goal without touching the walls",
        task=TaskSpec(prompt="Move the red disc to the green goal without touching the walls.", source="sim",
                      family="maze", difficulty="hard", task_seed=11),
        config=LoopConfig(n_max=min(12, n_steps)), vlm=BackendLabel(name="sim-vlm", simulated=True),
        vgm=BackendLabel(name="sim-vgm", simulated=True), input_image=_artifact(0, "image"), seed=11)
    events: list[Event] = [started]
    frame, k = started.input_image, 1
    for t in range(1, n_steps + 1):
        instruction = f"Slide the red disc two cells to the right along the corridor (step {t})"
        events.append(StepPlanned(step=t, max_steps=n_steps, usage=usage, plan=Plan(
            observation="The red disc sits in the lower-left corridor; the goal is two turns away.",
            remaining_goal="Reach the green goal cell in the upper right.", task_complete=False,
            instruction=instruction, target_state="The disc rests two cells further right.",
            estimated_steps_remaining=n_steps - t)))
        clips = []
        for attempt, verdict in ((1, "reject"), (2, "accept")):
            clip = _artifact(k, "clip")
            k += 1
            clips.append(clip)
            events.append(ClipGenerated(
                step=t, attempt=attempt, purpose="attempt", prompt=instruction, start=StartPoint(kind="step_start"),
                start_frame=frame, clip=clip, candidate=clip, n_frames=25, prefix_frames=0, fps=8.0, seconds=3.125,
                first_frame_ssim=0.9731, seed=123456789 + k, wall_s=41.2, info={"model": "sim", "steps": 30}))
            events.append(ClipVerified(
                step=t, attempt=attempt, sampled_indices=[0, 8, 16, 24], usage=usage, first_failing_frame=None,
                verdict=Verdict(verdict="accept", action_executed=True, progress="complete", confidence=0.86,
                                reason="The disc moved two cells right and stopped at the target.")
                if verdict == "accept" else
                Verdict(verdict="reject", action_executed=False, progress="partial", confidence=0.74,
                        reason="The disc moved up instead of right after the first cell.",
                        suggestion="Keep the disc on the lower corridor; move strictly to the right.",
                        good_fraction=0.1, error_type="wrong_direction")))
            if verdict == "reject":
                events.append(PromptEvolved(step=t, after_attempt=1, source="verifier", before=instruction,
                                            after=instruction + " Keep the disc on the lower corridor.",
                                            suggestion="Keep the disc on the lower corridor."))
        frame = _artifact(k, "image")
        k += 1
        events.append(StepAccepted(step=t, attempt=2, clip=clips[-1], last_frame=frame, by="verifier"))
    labels = [("session", "D1", n_steps)] + [(f"step:{t}/attempt:2", "D2", "accept") for t in range(1, n_steps + 1)]
    while len(events) < n_events - 1:
        target, name, value = labels.pop(0) if labels else ("session", "note", "looks right")
        events.append(Annotated(target=target, label=name, value=value, actor="alice"))  # type: ignore[arg-type]
    events.append(SessionFinished(reason="all steps accepted", final_video=_artifact(k, "video"), n_frames=300,
                                  success=True, cost=CostSummary(vgm_seconds=75.0, clips=2 * n_steps,
                                                                 vlm_calls=3 * n_steps, wall_s=1000.0)))
    return events[:n_events]


# ----- filling a database ------------------------------------------------------------------------------

def fill(store: SQLiteEventStore, sessions: int, template: list[Event], chunk: int = 500) -> None:
    """Write `sessions` copies of `template`, each with its own id and artifact hashes."""
    started = template[0]
    assert isinstance(started, SessionStarted)
    payloads = [event_to_json(e) for e in template]
    kinds = [(e.type, e.actor, e.at) for e in template]
    artifact_rows = {a.sha256: a for e in template for a in artifacts_in(e)}
    labels = {(e.target, e.actor, e.label): (e.value, e.reason, seq, e.at)
              for seq, e in enumerate(template) if isinstance(e, Annotated)}
    session_json = (json.dumps(started.task.model_dump(mode="json")), json.dumps(started.config.model_dump(mode="json")),
                    json.dumps({"vlm": started.vlm.model_dump(mode="json"), "vgm": started.vgm.model_dump(mode="json")}))
    finished = template[-1]
    cost = json.dumps(finished.cost.model_dump(mode="json")) if isinstance(finished, SessionFinished) else "{}"
    status = session_status(template)
    conn = store.db.conn
    base = time.time() - sessions
    for first in range(0, sessions, chunk):
        numbers = range(first, min(first + chunk, sessions))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO sessions (id, title, created_at, updated_at, task, config, backends, status, parent_session, "
            "fork_seq, cost, n_events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
            [(f"{i:08x}", f"{started.title} #{i}", base + i, base + i + 0.5, *session_json, status, cost, len(template))
             for i in numbers])
        conn.executemany(
            "INSERT INTO events (session_id, seq, type, actor, at, payload) VALUES (?, ?, ?, ?, ?, ?)",
            [(f"{i:08x}", seq, type_, actor, at, payload.replace(TOKEN, f"{i:08x}"))
             for i in numbers for seq, (payload, (type_, actor, at)) in enumerate(zip(payloads, kinds))])
        conn.executemany(
            "INSERT INTO artifacts (sha256, path, kind, bytes, created_at) VALUES (?, ?, ?, ?, ?)",
            [(a.sha256.replace(TOKEN, f"{i:08x}"), a.path.replace(TOKEN, f"{i:08x}"), a.kind, a.bytes, base + i)
             for i in numbers for a in artifact_rows.values()])
        conn.executemany(
            "INSERT INTO session_artifacts (session_id, sha256) VALUES (?, ?)",
            [(f"{i:08x}", sha.replace(TOKEN, f"{i:08x}")) for i in numbers for sha in artifact_rows])
        conn.executemany(
            "INSERT INTO annotations (session_id, target, annotator, label, value, reason, seq, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(f"{i:08x}", *key, *row) for i in numbers for key, row in labels.items()])
        conn.execute("COMMIT")
    store.db.execute("ANALYZE")


def open_or_build(path: Path, sessions: int, template: list[Event]) -> tuple[SQLiteEventStore, float | None]:
    """The store at `path`, filled if new; also the seconds filling took (None when reused)."""
    existed = path.exists()
    store = SQLiteEventStore(path)
    if existed:
        have = store.db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        if have != sessions:
            sys.exit(f"{path} exists with {have} sessions, not {sessions}: remove it or name another --path")
        return store, None
    started = time.perf_counter()
    fill(store, sessions, template)
    return store, time.perf_counter() - started


# ----- timing ------------------------------------------------------------------------------------------

Operation = Callable[[SQLiteEventStore, str], object]


def list_page(rows: int, **filters: str) -> Operation:
    return lambda store, session_id: store.list_sessions(limit=rows, **filters)


def open_session(store: SQLiteEventStore, session_id: str) -> None:
    state = fold(store.read(session_id))
    assert state.finished is not None


def compare(stores: dict[str, SQLiteEventStore], sessions: dict[str, int], operation: Operation, repeats: int,
            seed: int = 0) -> dict[str, float]:
    """Median seconds of `operation` on each store. The stores take turns within every repeat, so a
    burst of background load hits both alike; each repeat opens a different random session."""
    picks = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in stores}
    for r in range(repeats + 3):
        for name, store in stores.items():
            session_id = f"{picks.randrange(sessions[name]):08x}"
            started = time.perf_counter()
            operation(store, session_id)
            if r >= 3:  # the first rounds warm up: first-use costs are not what we compare
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions in the large database")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the large database, in total")
    parser.add_argument("--path", type=Path, default=None, help="where the large database goes (default: a temp file)")
    parser.add_argument("--repeats", type=int, default=31, help="timed repeats per measurement (the median is shown)")
    args = parser.parse_args(argv)

    per_session = args.events // args.sessions
    template = template_session(per_session)
    assert fold(template).finished is not None and len(template) == per_session
    with tempfile.TemporaryDirectory(prefix="bench_store_") as scratch:
        large_path = args.path or Path(scratch) / "large.sqlite"
        large, large_fill = open_or_build(large_path, args.sessions, template)
        small, small_fill = open_or_build(Path(scratch) / "small.sqlite", SMALL_SESSIONS, template)
        large.close()
        small.close()
        size_mb = sum(p.stat().st_size for p in large_path.parent.glob(large_path.name + "*")) / 1e6
        fill_note = f"filled in {large_fill:.1f} s" if large_fill is not None else "reused"
        print(f"large: {args.sessions} sessions x {per_session} events = {args.sessions * per_session} events, "
              f"{size_mb:.0f} MB ({fill_note}); small: {SMALL_SESSIONS} sessions x {per_session} events")
        print(f"median of {args.repeats} repeats (search: fewer), milliseconds")
        # Fresh connections: nothing cached from the fill.
        stores = {"large": SQLiteEventStore(large_path), "small": SQLiteEventStore(Path(scratch) / "small.sqlite")}
        sessions = {"large": args.sessions, "small": SMALL_SESSIONS}
        operations: list[tuple[str, Operation, int, bool]] = [
            (f"list ({PAGE} rows)", list_page(PAGE), args.repeats, True),
            ("open (read + fold)", open_session, args.repeats, True),
            ("list (50 rows)", list_page(50), args.repeats, False),
            (f"list status= ({PAGE})", list_page(PAGE, status="finished"), args.repeats, False),
            (f"list search= ({PAGE})", list_page(PAGE, search="no such words"), max(3, args.repeats // 5), False),
        ]
        print(f"{'operation':<24}{'large':>10}{'small':>10}{'ratio':>8}  target")
        missed = False
        for name, operation, repeats, targeted in operations:
            took = compare(stores, sessions, operation, repeats)
            ratio = took["large"] / took["small"]
            if targeted:
                missed |= ratio > TARGET_RATIO
                verdict = f"<= {TARGET_RATIO} " + ("ok" if ratio <= TARGET_RATIO else "MISSED")
            else:
                verdict = "(not targeted: a longer page, a filter, or a scan)"
            print(f"{name:<24}{took['large'] * 1e3:>10.3f}{took['small'] * 1e3:>10.3f}{ratio:>8.2f}  {verdict}")
        for store in stores.values():
            store.close()
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

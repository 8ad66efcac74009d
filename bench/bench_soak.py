"""Crash and load soak of the real app (`python app.py` in a subprocess, driven through its API). A script,
not a test; tests/test_soak.py runs a short version of each.

    python bench/bench_soak.py crash [--kills 50] [--sessions 4] [--latency 0.5] [--seed 0] [--json]
    python bench/bench_soak.py load [--sessions 8] [--annotators 4] [--seconds 60] [--latency 0.2] [--json]

crash: keeps `--sessions` sessions running (a finished one is replaced by a new one), SIGKILLs the server at random moments `--kills` times. Before each kill
it reads every session's log; after each restart it checks that log is still there, event for event, then
presses Run on every unfinished session (an interrupted run resumes from its log). At the end every session
must finish, every log must replay (collabvr.replay) and the doctor must find the folder healthy.

load: `--sessions` sessions run at once while `--annotators` people label verified attempts and refresh the
timeline through the API. Prints p50/p95 of the timeline refresh and of an annotation, with the machine's
load average beside them (target: p95 under 300 ms for both on an idle machine), and checks that every
label the API confirmed is in the log exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from app_server import AppServer  # noqa: E402
from collabvr.replay import ImpossibleHistory, check_history  # noqa: E402
from storage import SQLiteEventStore  # noqa: E402
from storage.doctor import examine  # noqa: E402


def client_for(server: AppServer):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def new_session(client, seed: int, n_max: int = 2) -> str:
    sid, message = client.predict("sim", ["maze", "blocks", "shapes"][seed % 3], "hard", seed, None, "",
                                  "sim:gemini-2.5-pro", "sim:legacy", n_max, 2, 2.0, 1.0, [], None,
                                  api_name="/new_session")
    if not sid:
        raise RuntimeError(f"new session refused: {message}")
    return sid


def run(client, sid: str) -> str:
    return client.predict(sid, None, None, api_name="/run")[0]


def logs(server: AppServer, ids: list[str]) -> dict[str, list]:
    store = SQLiteEventStore(server.data_dir / "collabvr.sqlite")
    try:
        return {sid: store.read(sid) for sid in ids}
    finally:
        store.close()


def finished(events: list) -> bool:
    return bool(events) and events[-1].type == "SessionFinished"


def crash(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="collabvr-crash-"))
    server = AppServer(root, sim_latency=args.latency).start()
    client = client_for(server)
    ids: list[str] = []
    survived, lost, hit, started = 0, 0, 0, time.perf_counter()

    def top_up(current: dict[str, list]) -> None:
        # Keep `--sessions` sessions running, so that every kill lands on work in flight.
        running = sum(not finished(e) for e in current.values())
        for _ in range(args.sessions - running):
            sid = new_session(client, len(ids), n_max=3)
            ids.append(sid)
            run(client, sid)

    top_up({})
    for _ in range(args.kills):
        time.sleep(rng.uniform(0.2, 2.0))
        before = logs(server, ids)
        hit += any(not finished(e) for e in before.values())
        server.kill()
        server.start()
        after = logs(server, ids)
        missing = [sid for sid in ids if after[sid][:len(before[sid])] != before[sid]]
        lost += len(missing)
        survived += not missing
        client = client_for(server)
        for sid in ids:
            if not finished(after[sid]):
                run(client, sid)
        top_up(after)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not all(finished(e) for e in logs(server, ids).values()):
        time.sleep(0.5)
    final = logs(server, ids)
    server.stop()
    impossible = []
    for sid, events in final.items():
        try:
            check_history(events)
        except ImpossibleHistory as exc:
            impossible.append(f"{sid}: {exc}")
    report = examine(server.data_dir / "collabvr.sqlite", server.data_dir / "artifacts")
    return {"kills": args.kills, "kills_with_work_in_flight": hit, "survived": survived, "sessions": len(ids),
            "finished": sum(finished(e) for e in final.values()), "sessions_with_lost_events": lost,
            "impossible_logs": impossible, "doctor_healthy": report.healthy,
            "doctor_errors": [f"{f.check} {f.where}: {f.detail}" for f in report.findings if f.severity == "error"],
            "events": sum(len(e) for e in final.values()), "seconds": round(time.perf_counter() - started, 1),
            "data": str(root)}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="collabvr-load-"))
    server = AppServer(root, sim_latency=args.latency).start()
    driver = client_for(server)
    ids = [new_session(driver, seed, n_max=3) for seed in range(args.sessions)]
    for sid in ids:
        run(driver, sid)
    refresh_ms: list[float] = []
    annotate_ms: list[float] = []
    confirmed: dict[str, int] = {}
    errors: list[str] = []
    stop_at = time.monotonic() + args.seconds
    lock = threading.Lock()

    def annotator(number: int) -> None:
        rng = random.Random(number)
        client = client_for(server)
        name = f"annotator-{number}"
        while time.monotonic() < stop_at:
            sid = rng.choice(ids)
            t0 = time.perf_counter()
            client.predict(sid, None, None, api_name="/refresh")
            with lock:
                refresh_ms.append((time.perf_counter() - t0) * 1000)
            store = SQLiteEventStore(server.data_dir / "collabvr.sqlite")
            verified = [e for e in store.read(sid) if e.type == "ClipVerified"]
            store.close()
            if not verified:
                continue
            target = f"step:{(pick := rng.choice(verified)).step}/attempt:{pick.attempt}"
            t0 = time.perf_counter()
            message, _ = client.predict(sid, target, "D2", rng.choice(["accept", "reject"]), name,
                                        api_name="/annotate")
            with lock:
                annotate_ms.append((time.perf_counter() - t0) * 1000)
                if message.startswith("✔"):
                    confirmed[sid] = confirmed.get(sid, 0) + 1
                else:
                    errors.append(message)
            time.sleep(rng.uniform(0.05, 0.3))

    threads = [threading.Thread(target=annotator, args=(n,)) for n in range(args.annotators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load_avg = os.getloadavg()
    final = logs(server, ids)
    server.stop()
    recorded = {sid: sum(1 for e in events if e.type == "Annotated") for sid, events in final.items()}
    lost = {sid: confirmed.get(sid, 0) - recorded[sid] for sid in ids if confirmed.get(sid, 0) != recorded[sid]}
    return {"sessions": args.sessions, "annotators": args.annotators, "seconds": args.seconds,
            "refreshes": len(refresh_ms), "annotations": len(annotate_ms),
            "refresh_p50_ms": round(_percentile(refresh_ms, 0.5), 1),
            "refresh_p95_ms": round(_percentile(refresh_ms, 0.95), 1),
            "annotate_p50_ms": round(_percentile(annotate_ms, 0.5), 1),
            "annotate_p95_ms": round(_percentile(annotate_ms, 0.95), 1),
            "load_average_1_5_15": [round(x, 2) for x in load_avg], "cpus": os.cpu_count(),
            "errors": errors, "labels_confirmed_but_not_recorded": lost,
            "mean_refresh_ms": round(statistics.fmean(refresh_ms), 1) if refresh_ms else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("crash")
    c.add_argument("--kills", type=int, default=50)
    c.add_argument("--sessions", type=int, default=4)
    c.add_argument("--latency", type=float, default=0.5)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--timeout", type=float, default=600.0)
    c.add_argument("--json", action="store_true")
    ld = sub.add_parser("load")
    ld.add_argument("--sessions", type=int, default=8)
    ld.add_argument("--annotators", type=int, default=4)
    ld.add_argument("--seconds", type=float, default=60.0)
    ld.add_argument("--latency", type=float, default=0.2)
    ld.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = crash(args) if args.mode == "crash" else load(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<36} {value}")
    ok = (result.get("survived") == result.get("kills") and result.get("finished") == result.get("sessions")
          and not result.get("impossible_logs") and result.get("doctor_healthy")) if args.mode == "crash" \
        else (not result["errors"] and not result["labels_confirmed_but_not_recorded"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

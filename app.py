"""CollabVR Studio: the audit app. `python app.py` serves it on http://127.0.0.1:7860 with the simulated
backends and a data folder under ./data; no key and no GPU needed.

The composition root: parse flags, open the store, build the Studio, build the UI, launch.
"""

from __future__ import annotations

import os

# Before gradio is imported: no telemetry, no model-hub lookups (the app must work offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import ipaddress  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from collabvr.artifacts import ArtifactFolder  # noqa: E402
from collabvr.studio import Studio  # noqa: E402
from storage import SQLiteEventStore, open_data_dir, resolve_data_dir  # noqa: E402


AUTH_ENV = "COLLABVR_AUTH"
MAX_FILE_SIZE = "25mb"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CollabVR Studio: run, watch, steer and audit VLM-VGM sessions.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; any other address needs --auth)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--data-dir", default=None,
                        help="folder for the database, artifacts, frame cache and exports "
                             "(default: $COLLABVR_DATA_DIR or ./data)")
    parser.add_argument("--db", default=None, help="SQLite database file (default: <data dir>/collabvr.sqlite)")
    parser.add_argument("--share", action="store_true", help="open a public Gradio share link (off by default; needs --auth)")
    parser.add_argument("--auth", default=None, metavar="USER:PASS",
                        help=f"require this login (or set ${AUTH_ENV}); required off loopback")
    parser.add_argument("--sim-latency", type=float, default=0.0,
                        help="default seconds each simulated model call takes, for demos (default 0)")
    parser.add_argument("--max-parallel-generations", type=int, default=1,
                        help="generations that may run at once across sessions (default 1: one GPU)")
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise SystemExit("--auth (or $COLLABVR_AUTH) must look like user:password")
    return user, password


def open_services(data_dir: str | None, db: str | None) -> tuple[SQLiteEventStore, ArtifactFolder, Path]:
    root = resolve_data_dir(data_dir)
    store, artifacts = open_data_dir(root)
    if db:
        store.close()
        store = SQLiteEventStore(db)
    return store, artifacts, root.resolve()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    auth = parse_auth(args.auth or os.environ.get(AUTH_ENV))
    if auth is None and (not is_loopback(args.host) or args.share):
        raise SystemExit(f"refusing to serve on {args.host if not args.share else 'a share link'} without a login: "
                         f"pass --auth user:password (or set ${AUTH_ENV})")
    if args.sim_latency < 0 or args.sim_latency > 600:
        raise SystemExit("--sim-latency must be between 0 and 600 seconds")

    import ui  # gradio is imported here, after the environment above is set

    store, artifacts, data_dir = open_services(args.data_dir, args.db)
    studio = Studio(store, artifacts, max_parallel_generations=args.max_parallel_generations)
    demo = ui.create_app(studio, store, artifacts, data_dir=data_dir, default_latency=args.sim_latency)
    # Handlers only start work (the Studio runs sessions in background threads), so several may run at once.
    demo.queue(default_concurrency_limit=8, max_size=64)
    print(f"CollabVR Studio: data in {data_dir}", file=sys.stderr)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth,
                allowed_paths=[str(data_dir)], max_file_size=MAX_FILE_SIZE, footer_links=["api", "settings"],
                **ui.launch_options())


if __name__ == "__main__":
    main()

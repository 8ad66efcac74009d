"""CollabVR Studio: the audit app. `python app.py` serves it on http://127.0.0.1:7860 with the simulated
backends and a data folder under ./data; no key and no GPU needed. Real backends (Gemini, Veo, local
transformers VLMs, diffusers video models) are offered where they can run (`python -m collabvr backends`).

On a Hugging Face Space (SPACE_ID is set) it runs as it is: it binds where the Space expects
(GRADIO_SERVER_NAME, i.e. 0.0.0.0), and the Space's own visibility decides who may open it; set the
COLLABVR_AUTH secret to require a login as well.

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
from storage import SQLiteEventStore, open_store_at, private_folder, resolve_data_dir, served_folders  # noqa: E402
from storage.data_dir import ARTIFACTS_NAME, DATABASE_NAME, database_files  # noqa: E402
from ui.access import AUTH_ENV, AccessError, HostCheck, LoginGuard, Users, allowed_hosts  # noqa: E402


SPACE_ENV = "SPACE_ID"  # set by Hugging Face Spaces
MAX_FILE_SIZE = "25mb"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CollabVR Studio: run, watch, steer and audit VLM-VGM sessions.")
    parser.add_argument("--host", default=default_host(),
                        help="address to bind (default 127.0.0.1, or $GRADIO_SERVER_NAME on a Hugging Face Space; "
                             "any other address needs a login (--users), except on a Space)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--data-dir", default=None,
                        help="folder for the database, artifacts, frame cache and exports "
                             "(default: $COLLABVR_DATA_DIR or ./data)")
    parser.add_argument("--db", default=None, help="SQLite database file (default: <data dir>/collabvr.sqlite)")
    parser.add_argument("--share", action="store_true",
                        help="open a public Gradio share link (off by default; needs a login)")
    parser.add_argument("--users", default=None, metavar="FILE",
                        help=f"require a login: one 'name:password' or 'name:<hash>' per line (make hashes with "
                             f"'python -m collabvr users add NAME --file FILE'); or set ${AUTH_ENV}. Passwords are "
                             "never taken on the command line. Required off loopback")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a host name the app answers to besides its loopback names and bind address "
                             "(e.g. the DNS name of a proxy in front of it; repeatable; '*' for any)")
    parser.add_argument("--sim-latency", type=float, default=0.0,
                        help="default seconds each simulated model call takes, for demos (default 0)")
    parser.add_argument("--max-parallel-generations", type=int, default=1,
                        help="generations that may run at once across sessions (default 1: one GPU)")
    return parser.parse_args(argv)


def on_space() -> bool:
    return bool(os.environ.get(SPACE_ENV))


def default_host() -> str:
    """127.0.0.1; on a Hugging Face Space, the address the Space routes to."""
    return os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0") if on_space() else "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(_unbracketed(host)).is_loopback
    except ValueError:
        return False


def server_name(host: str) -> str:
    """The host as Gradio takes it: an IPv6 address in brackets ("::1" -> "[::1]"), since Gradio builds its
    own URL as http://<name>:<port>/ and a bare "::1" there reads as a port."""
    bare = _unbracketed(host)
    try:
        is_v6 = ipaddress.ip_address(bare).version == 6
    except ValueError:
        return host
    return f"[{bare}]" if is_v6 else bare


def _unbracketed(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def load_users(users_file: str | None) -> Users:
    try:
        return Users.load(users_file)
    except AccessError as exc:
        raise SystemExit(f"error: {exc}") from None


def open_services(data_dir: str | None, db: str | None) -> tuple[SQLiteEventStore, ArtifactFolder, Path]:
    """The store, the artifact folder and the data folder; temporary files a killed process left in the
    artifact folder are removed, as the command line does (storage.open_store_at)."""
    root = resolve_data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    store, artifacts = open_store_at(db or root / DATABASE_NAME, root / ARTIFACTS_NAME)
    return store, artifacts, root.resolve()


def served_paths(data_dir: Path, database: Path) -> dict[str, list[str]]:
    """launch()'s allowed_paths and blocked_paths: a browser may fetch artifacts, cached frames and exports,
    never the database (with its -wal and -shm files) or the private folder holding the browser-state key.
    Serving the database would also drop this process's SQLite locks on it (closing any descriptor of a
    file ends a process's POSIX locks on it), so a CLI on the same folder could then delete its WAL."""
    blocked = database_files(database) + [private_folder(data_dir)]
    return {"allowed_paths": [str(p) for p in served_folders(data_dir)], "blocked_paths": [str(p) for p in blocked]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    users = load_users(args.users)
    if not users and on_space() and not args.share:
        print(f"CollabVR Studio on a Space: the Space's visibility controls access (set ${AUTH_ENV} for a login)",
              file=sys.stderr)
    elif not users and (not is_loopback(args.host) or args.share):
        raise SystemExit(f"refusing to serve on {args.host if not args.share else 'a share link'} without a login: "
                         f"pass --users FILE (or set ${AUTH_ENV}=name:password)")
    # A Space is reached through its own domain (and a share link through gradio.live): only the Host check
    # is relaxed there; the login rule above still holds for a share link.
    hosts = ["*"] if on_space() or args.share else args.allowed_host
    if args.sim_latency < 0 or args.sim_latency > 600:
        raise SystemExit("--sim-latency must be between 0 and 600 seconds")

    import ui  # gradio is imported here, after the environment above is set
    from starlette.middleware import Middleware

    store, artifacts, data_dir = open_services(args.data_dir, args.db)
    studio = Studio(store, artifacts, max_parallel_generations=args.max_parallel_generations)
    demo = ui.create_app(studio, store, artifacts, data_dir=data_dir, default_latency=args.sim_latency)
    # Handlers only start work (the Studio runs sessions in background threads), so several may run at once.
    demo.queue(default_concurrency_limit=8, max_size=64)
    print(f"CollabVR Studio: data in {data_dir}", file=sys.stderr)
    guard = LoginGuard(users) if users else None
    host_check = Middleware(HostCheck, allowed=allowed_hosts(args.host, hosts))
    demo.launch(server_name=server_name(args.host), server_port=args.port, share=args.share, auth=guard,
                max_file_size=MAX_FILE_SIZE, footer_links=["api", "settings"], app_kwargs={"middleware": [host_check]},
                **served_paths(data_dir, store.path), **ui.launch_options())


if __name__ == "__main__":
    main()

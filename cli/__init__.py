"""The one command line: `python -m collabvr COMMAND` (collabvr/__main__.py only hands over to `main`).

A composition root, like app.py: it may import collabvr, storage and the simulated world, and nothing
imports it. One module per command group, each with `register(subparsers)` that adds its commands and sets
`handler` (args -> exit status) on each; shared flags and reporting live in cli/common.py.

To add a command group: write cli/<group>.py with `register`, and list it in COMMANDS below.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from cli import backends, bench, calibrate, doctor, gpucheck, reliability, run, sessions, stats, study, tasks, users
from cli.common import SubParsers


# The command groups, in the order `--help` lists them.
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    tasks.register,
    run.register,
    stats.register,
    calibrate.register,
    bench.register,
    reliability.register,
    sessions.register,
    doctor.register,
    study.register,
    backends.register,
    gpucheck.register,
    users.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collabvr",
                                     description="CollabVR Studio: collaborative video reasoning, from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


DEBUG_ENV = "COLLABVR_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run the command; returns its exit status. Whatever goes
    wrong ends in one line on stderr, never a traceback (set COLLABVR_DEBUG=1 to see one)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: a person sees what happened, not a stack
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"error: {type(exc).__name__}: {exc} (this looks like a bug; COLLABVR_DEBUG=1 shows where)",
              file=sys.stderr)
        return 1

"""The one command line: `python -m collabvr COMMAND` (collabvr/__main__.py only hands over to `main`).

A composition root, like app.py: it may import collabvr, storage and the simulated world, and nothing
imports it. One module per command group, each with `register(subparsers)` that adds its commands and sets
`handler` (args -> exit status) on each; shared flags and reporting live in cli/common.py.

To add a command group: write cli/<group>.py with `register`, and list it in COMMANDS below.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from cli import backends, calibrate, gpucheck, run, sessions, stats, study, tasks
from cli.common import SubParsers


# The command groups, in the order `--help` lists them.
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    tasks.register,
    run.register,
    stats.register,
    calibrate.register,
    sessions.register,
    study.register,
    backends.register,
    gpucheck.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collabvr",
                                     description="CollabVR Studio: collaborative video reasoning, from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run the command; returns its exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)

"""`python -m collabvr`: the command line's composition root (as app.py is the browser's).

collabvr/cli.py holds the engine's commands and never imports the durable store; this module adds it: the
SQLite store behind `run --db/--data-dir` and the `sessions` commands, both from storage/cli.py, imported
inside a function so that nothing under collabvr/ imports storage/ at module level.
"""

from __future__ import annotations

import sys
from typing import Sequence

from collabvr.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    from storage import cli as storage_cli

    return cli_main(argv, store_factory=storage_cli.open_store, extra_commands=(storage_cli.register,))


if __name__ == "__main__":
    sys.exit(main())

"""`python -m collabvr`: hands over to the command line in cli/ (a composition root beside app.py).

cli/ is imported inside the function so that nothing under collabvr/ imports it at module level.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())

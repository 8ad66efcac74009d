"""`python -m collabvr tasks`: the simulated task families and difficulties."""

from __future__ import annotations

import argparse
import json

from cli.common import SubParsers, sim


def register(sub: SubParsers) -> None:
    p = sub.add_parser("tasks", help="list the simulated task families and difficulties",
                       description="List the simulated task families and difficulties.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_tasks)


def cmd_tasks(args: argparse.Namespace) -> int:
    world = sim()
    rows = []
    for name, family in world.FAMILIES.items():
        rows.append({"family": name, "description": family.description, "difficulties": list(world.DIFFICULTIES),
                     "example_prompt": family.generate(0, "hard").prompt, "simulated": True})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"[{world.SIMULATED_LABEL}] task families of the embedded simulated world:")
    for row in rows:
        print(f"  {row['family']:<7} ({', '.join(row['difficulties'])}): {row['description']}")
        print(f"          e.g. {row['example_prompt']}")
    return 0

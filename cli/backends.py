"""`python -m collabvr backends`: every VLM and VGM this build knows, whether it can run here, and if not,
why (no API key, no CUDA device, weights not in the Hugging Face cache with the command that fetches them,
a missing package). The app's backend pickers show the same list (collabvr.registry.choices)."""

from __future__ import annotations

import argparse
import json

from cli.common import SubParsers
from collabvr import registry


def register(sub: SubParsers) -> None:
    p = sub.add_parser("backends", help="list the VLM and VGM backends and whether each can run here",
                       description="List every VLM and VGM backend, whether it can run on this machine, and if "
                                   "not, what to do about it.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_backends)


def cmd_backends(args: argparse.Namespace) -> int:
    rows = []
    for c in registry.choices():
        row = {"role": c.role, "key": c.key, "label": c.label, "simulated": c.simulated, "available": c.available,
               "spec": c.spec}
        if not c.available:
            row["reason"] = c.why_not
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for role in ("vlm", "vgm"):
        print(f"{role.upper()}s:")
        for row in (r for r in rows if r["role"] == role):
            mark = "yes" if row["available"] else "no "
            print(f"  [{mark}] {row['key']:<22} {row['label']}")
            if not row["available"]:
                print(f"        {row['reason']}")
    return 0

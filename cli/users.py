"""`python -m collabvr users`: the logins of the app (`python app.py --users FILE`). Passwords are read
from a prompt or standard input, never from the command line, and stored as PBKDF2 hashes."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from cli.common import EXIT_USAGE, SubParsers
from ui.access import AccessError, Users, hash_password

MIN_PASSWORD = 8


def register(sub: SubParsers) -> None:
    p = sub.add_parser("users", help="add, remove or list the app's logins in a users file",
                       description="Manage the users file the app takes with --users FILE.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("add", help="add a user, or change their password (asked for, never an argument)")
    add.add_argument("name")
    add.add_argument("--file", required=True, help="the users file (created, readable by you alone)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(handler=cmd_add)
    remove = verbs.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.add_argument("--file", required=True)
    remove.set_defaults(handler=cmd_remove)
    listed = verbs.add_parser("list", help="list the users (names only)")
    listed.add_argument("--file", required=True)
    listed.set_defaults(handler=cmd_list)


def _read(path: Path) -> Users:
    return Users.parse(path.read_text(), str(path)) if path.exists() else Users({})


def _write(path: Path, users: Users) -> None:
    lines = [f"{name}:{secret}" for name, secret in sorted(users.entries.items())]
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# CollabVR Studio users: name:pbkdf2 hash (python -m collabvr users add NAME --file FILE)\n")
        f.write("\n".join(lines) + ("\n" if lines else ""))
    os.replace(tmp, path)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise AccessError("the two passwords differ")
    return first


def cmd_add(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        users = _read(path)
        Users.parse(f"{args.name}:x", "the name")  # the same rules as the file's
        password = _password(args)
        if len(password) < MIN_PASSWORD:
            raise AccessError(f"a password needs at least {MIN_PASSWORD} characters")
    except (AccessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    changed = args.name in users
    users.entries[args.name] = hash_password(password)
    _write(path, users)
    print(f"{'changed the password of' if changed else 'added'} {args.name} in {path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        users = _read(path)
    except (AccessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.name not in users:
        print(f"error: {args.name} is not in {path}", file=sys.stderr)
        return EXIT_USAGE
    del users.entries[args.name]
    _write(path, users)
    print(f"removed {args.name} from {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    try:
        users = _read(Path(args.file))
    except (AccessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in sorted(users.entries):
        print(name)
    return 0

"""Who may reach the app, and who they are.

- `HostCheck`: an ASGI middleware that answers only requests addressed to this app's own names. A page on
  another site can make a browser resolve its own domain to 127.0.0.1 (DNS rebinding) and then talk to a
  login-free app on loopback; the Host header it sends still names that other domain, so it is refused.
- `Users`: the logins, from a file (`--users FILE`) or the environment (`COLLABVR_AUTH`), never from the
  command line (where `ps` shows it). A password is stored as a PBKDF2 hash (`hash_password`); a plain
  `name:password` line is accepted too, for a quick local setup.
- `LoginGuard`: what Gradio calls to check a login; each failure for a name doubles the wait before the
  answer (up to `MAX_DELAY_S`), so guessing is slow; a success clears it.
- `actor_for`: with a login, the actor of every decision and label is the logged-in user, whatever the
  page or an API client sends as a name; without one, the name the person typed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

AUTH_ENV = "COLLABVR_AUTH"  # "name:password", several separated by newlines or ";"
PBKDF2 = "pbkdf2_sha256"
ITERATIONS = 200_000
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class AccessError(ValueError):
    """A users file or variable that cannot be read as logins; the message says where and why."""


# ----- the Host check ----------------------------------------------------------------------------------------

def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a request may be addressed to: the loopback names, the address the app binds to
    (unless it is a wildcard) and any names given (a DNS name behind a proxy). "*" allows every name."""
    names = {h.lower() for h in LOOPBACK_NAMES}
    bare = bind_host.strip("[]").lower()
    if bare not in ("0.0.0.0", "::", ""):
        names.add(bare)
    names.update(h.strip().strip("[]").lower() for h in extra if h.strip())
    return frozenset(names)


def host_name(header: str) -> str:
    """The name in a Host header, without its port: "Example.org:7860" -> "example.org", "[::1]:80" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    name, _, port = header.rpartition(":")
    if name and port.isdigit():
        return name
    return header


class HostCheck:
    """ASGI middleware: a request whose Host is not one of `allowed` gets 421 and a line saying how to allow
    it; a websocket is closed. With "*" in `allowed` every Host passes (a Space, or a trusted proxy)."""

    def __init__(self, app: Callable[..., Any], allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    def allows(self, header: str | None) -> bool:
        if "*" in self.allowed:
            return True
        if not header:
            return False
        name = host_name(header)
        if name in self.allowed:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        if self.allows(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (f"This CollabVR Studio does not answer for the host {header!r}. If you reach it through that "
                "name on purpose, start it with --allowed-host NAME.\n").encode()
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# ----- users and passwords -----------------------------------------------------------------------------------

def hash_password(password: str, *, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    """`pbkdf2_sha256$<iterations>$<salt>$<hex digest>`: what a users file stores instead of a password."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"{PBKDF2}${iterations}${salt}${digest}"


def _matches(stored: str, password: str) -> bool:
    if stored.startswith(PBKDF2 + "$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            computed = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations)).hex()
        except ValueError:
            return False
        return hmac.compare_digest(computed, digest)
    return hmac.compare_digest(stored.encode(), password.encode())


class Users:
    """The people who may log in: name -> stored password (a PBKDF2 hash, or plain)."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = dict(entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def check(self, name: str, password: str) -> bool:
        stored = self.entries.get(name)
        if stored is None:
            _matches(hash_password("x", salt="0" * 32), password)  # same work for an unknown name
            return False
        return _matches(stored, password)

    @classmethod
    def parse(cls, text: str, where: str) -> "Users":
        """`name:password` or `name:pbkdf2_sha256$...` entries, one per line (or separated by ";" in the
        environment variable); blank lines and lines starting with # are skipped."""
        entries: dict[str, str] = {}
        for number, line in enumerate(text.replace(";", "\n").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, secret = line.partition(":")
            name = name.strip()
            if not sep or not name or not secret:
                raise AccessError(f"{where}, entry {number}: expected name:password")
            if name == "engine" or len(name) > 80:
                raise AccessError(f"{where}, entry {number}: {name[:20]!r} cannot be a user name")
            if name in entries:
                raise AccessError(f"{where}: user {name!r} is listed twice")
            entries[name] = secret
        return cls(entries)

    @classmethod
    def load(cls, users_file: str | None, environ: dict[str, str] | None = None) -> "Users":
        """The users of `users_file` if given, else of $COLLABVR_AUTH, else none."""
        environ = os.environ if environ is None else environ
        if users_file:
            path = Path(users_file)
            try:
                text = path.read_text()
            except OSError as exc:
                raise AccessError(f"cannot read the users file {path}: {exc.strerror or exc}") from None
            return cls.parse(text, str(path))
        return cls.parse(environ.get(AUTH_ENV, ""), f"${AUTH_ENV}")


class LoginGuard:
    """Gradio's `auth` callable. After n failures for a name the answer waits BASE_DELAY_S * 2**(n-1)
    seconds (at most MAX_DELAY_S); failures for any name also count toward an unknown one, so spraying
    names does not escape the wait."""

    def __init__(self, users: Users, *, base_delay_s: float = BASE_DELAY_S, max_delay_s: float = MAX_DELAY_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.users = users
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def delay_for(self, name: str) -> float:
        with self._lock:
            failures = self._failures.get(name, 0) if name in self.users else sum(self._failures.values())
        return 0.0 if failures == 0 else min(self.base_delay_s * 2 ** (failures - 1), self.max_delay_s)

    def __call__(self, username: str, password: str) -> bool:
        name = (username or "").strip()
        wait = self.delay_for(name)
        if wait:
            self._sleep(wait)
        ok = self.users.check(name, password or "")
        with self._lock:
            if ok:
                self._failures.pop(name, None)
            else:
                key = name if name in self.users else "<unknown>"
                self._failures[key] = self._failures.get(key, 0) + 1
        return ok


# ----- who made a decision -----------------------------------------------------------------------------------

def actor_for(request: Any, typed: str | None) -> str | None:
    """The logged-in user when there is a login (a typed name cannot speak for someone else), else the
    name the person typed."""
    username = getattr(request, "username", None) if request is not None else None
    return username if username else typed

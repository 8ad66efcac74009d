"""What every panel's handlers share: the services they act on, the message conventions (a message that
starts with "✔" reports what was done, one that starts with "⚠" says why nothing was), and the guards that
turn a refused decision into such a message instead of a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from collabvr import registry
from collabvr.engine import DecisionError
from collabvr.store import InvalidSessionId, StoreError, check_session_id
from collabvr.studio import SessionBusy, Studio
from storage import SQLiteEventStore
from storage.data_dir import CACHE_NAME
from ui.media import MediaLinks


BREAKPOINT_LABELS = {
    "before_generate": "before generation",
    "after_verify": "after verification",
    "on_reject": "on reject",
    "on_route": "on route",
}


@dataclass
class Services:
    """Everything the handlers touch, built once by app.py."""

    studio: Studio
    store: SQLiteEventStore
    data_dir: Path
    links: MediaLinks
    default_latency: float = 0.0

    @property
    def artifacts(self):
        return self.studio.artifacts

    @classmethod
    def create(cls, studio: Studio, store: SQLiteEventStore, data_dir: Path | str,
               default_latency: float = 0.0) -> "Services":
        data_dir = Path(data_dir).resolve()
        return cls(studio, store, data_dir, MediaLinks(studio.artifacts, data_dir / CACHE_NAME), default_latency)


def ok(text: str) -> str:
    return f"✔ {text}"


def problem(text: str) -> str:
    return f"⚠ {text}"


def is_problem(message: str) -> bool:
    return message.startswith("⚠")


def guarded(work: Callable[[], str]) -> str:
    """Run a decision; the engine's and store's refusals become messages, never tracebacks."""
    try:
        return work()
    except SessionBusy as exc:
        return problem(str(exc))
    except (DecisionError, registry.BackendUnavailable, StoreError, KeyError) as exc:
        return problem(plain(exc))
    except ValidationError as exc:
        return problem(validation(exc))
    except ValueError as exc:
        return problem(str(exc))


def plain(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    return text


def validation(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())


def need_session(sid: str | None) -> str | None:
    """None when `sid` names a session that may exist; else the message that says why it cannot."""
    if not (sid and sid.strip()):
        return problem("no session is open: start one, or open one in the Sessions tab")
    try:
        check_session_id(sid.strip())
    except InvalidSessionId as exc:
        return problem(str(exc))
    return None


def need_name(actor: str | None) -> str | None:
    if actor and actor.strip():
        return None
    return problem("enter your name in the Annotator box first (it is kept in this browser)")


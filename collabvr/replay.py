"""Could this engine have written this log? A replay that answers for a log from elsewhere: an imported
archive, or a database the doctor examines.

The log is folded event by event. Before each event, the state says what could come next:
- an engine event must be the result of the command `loop.next_command` gives at that point (the engine
  appends a result only when that is still so): the same kind, step and attempt, the prompt the step holds,
  the start point the rules give, the evolution `loop.evolution` computes, the attempt `loop.best_attempt`
  propagates, the clips a selector or critic was shown; a failure must name the command that was due;
  nothing follows SessionFinished but labels and a benchmark's rubric judgement (`VideoJudged`, by
  "bench-judge", once);
- a person's decision must pass the checks `collabvr.decisions` runs when a person makes it, and be
  recorded under a person's name, never as the engine.
Costs, timings and model outputs are taken as recorded: they cannot be re-derived without the models.
"""

from __future__ import annotations

from typing import Iterable

from collabvr.decisions import DecisionError, recheck
from collabvr.events import (
    HUMAN_EVENTS, BackendFailed, BestAttemptPropagated, ClipGenerated, ClipsCritiqued, ClipsSelected, ClipVerified,
    CommandFailed, Event, PromptEvolved, ResultDiscarded, Routed, SessionFinished, SessionStarted, StepAccepted,
    StepPlanned, VideoJudged,
)
from collabvr.loop import Command, Kind, best_attempt, evolution, next_command, round_attempts, unheld
from collabvr.state import SessionState, apply, fold, start_point_for_next_attempt

ROLE_OF = {Kind.PLAN: "plan", Kind.GENERATE: "generate", Kind.VERIFY: "verify", Kind.ROUTE: "route",
           Kind.SELECT: "select", Kind.CRITIQUE: "critique"}
KIND_OF = {StepPlanned: Kind.PLAN, ClipGenerated: Kind.GENERATE, ClipVerified: Kind.VERIFY,
           PromptEvolved: Kind.EVOLVE, Routed: Kind.ROUTE, StepAccepted: Kind.ACCEPT,
           ClipsSelected: Kind.SELECT, ClipsCritiqued: Kind.CRITIQUE,
           BestAttemptPropagated: Kind.PROPAGATE, SessionFinished: Kind.FINISH}


class ImpossibleHistory(ValueError):
    """A log the engine could not have written; the message names the first event that breaks the rules."""


def check_history(events: Iterable[Event]) -> SessionState:
    """Replay `events`; return the final state, or raise ImpossibleHistory at the first impossible event."""
    events = list(events)
    if not events or not isinstance(events[0], SessionStarted):
        raise ImpossibleHistory("a session log must start with SessionStarted")
    if events[0].actor != "engine":
        raise ImpossibleHistory("event 1 (SessionStarted): recorded as a person's, not the engine's")
    state = fold(events[:1])
    for seq, event in enumerate(events[1:], start=2):
        why = _why_impossible(state, event)
        if why:
            raise ImpossibleHistory(f"event {seq} ({event.type}): {why}")
        try:
            apply(state, event)
        except (ValueError, KeyError) as exc:
            raise ImpossibleHistory(f"event {seq} ({event.type}): {exc}") from exc
    return state


def _why_impossible(state: SessionState, event: Event) -> str | None:
    if isinstance(event, SessionStarted):
        return "a second SessionStarted"
    if event.type in HUMAN_EVENTS:
        if event.actor == "engine":
            return "a person's decision recorded as the engine's"
        try:
            recheck(state, event)
        except DecisionError as exc:
            return f"the app would have refused it: {exc}"
        return None
    if isinstance(event, VideoJudged):
        if state.finished is None:
            return "a judgement of a session that had not finished"
        return "the session was already judged" if state.judged is not None else None
    if event.actor != "engine":
        return f"an engine event recorded as {event.actor!r}'s"
    if state.finished is not None:
        return "the session had already finished"
    due = unheld(next_command(state))
    if isinstance(event, ResultDiscarded):
        return None if event.role in ROLE_OF.values() else f"no model role {event.role!r}"
    if isinstance(event, BackendFailed):
        if ROLE_OF.get(due.kind) != event.role or (event.step, event.attempt) != (due.step, due.attempt):
            return f"a {event.role} failure where the loop was due to {due.describe()}"
        return None
    if isinstance(event, CommandFailed):
        if due.kind.value != event.role or event.step != due.step:
            return f"a failure of {event.role} where the loop was due to {due.describe()}"
        return None
    kind = KIND_OF.get(type(event))
    if kind is None:
        return "not an event this engine writes"
    if kind is not due.kind:
        return f"the loop was due to {due.describe()}"
    return _content_problem(state, event, due)


def _content_problem(state: SessionState, event: Event, due: Command) -> str | None:
    step_number = getattr(event, "step", None)
    if due.kind is not Kind.FINISH and step_number != due.step:
        return f"it is about step {step_number}, but the loop was due to {due.describe()}"
    if isinstance(event, ClipGenerated):
        step = state.step(event.step)
        if (event.attempt, event.purpose) != (due.attempt, due.purpose):
            return f"attempt {event.attempt} ({event.purpose}), but the loop was due to {due.describe()}"
        if event.prompt != step.instruction:
            return "the clip was generated from another prompt than the step's instruction"
        if event.start != start_point_for_next_attempt(state, step):
            return "the clip starts where the rules do not start it"
        if event.prefix_frames != ((event.start.frame_index or 0) if event.start.kind == "partial" else 0):
            return "its kept prefix does not match its start point"
    elif isinstance(event, (ClipVerified, StepAccepted)):
        if event.attempt != due.attempt:
            return f"attempt {event.attempt}, but the loop was due to {due.describe()}"
        if isinstance(event, StepAccepted) and event.clip != state.step(event.step).attempt(event.attempt).generated.candidate:
            return "the accepted clip is not the attempt's"
    elif isinstance(event, (PromptEvolved, Routed)):
        if event.after_attempt != due.attempt:
            return f"after attempt {event.after_attempt}, but the loop was due to {due.describe()}"
        if isinstance(event, PromptEvolved):
            source, before, after, _ = evolution(state, event.step, event.after_attempt)
            if (event.source, event.before, event.after) != (source, before, after):
                return f"the evolved prompt is not what the rules give ({after!r} from the {source})"
    elif isinstance(event, ClipsSelected):
        step = state.step(event.step)
        if event.attempts != [a.number for a in step.attempts] or event.best_attempt not in event.attempts:
            return "the selection is not over the step's clips"
    elif isinstance(event, ClipsCritiqued):
        step = state.step(event.step)
        if event.round != len(step.critiques) + 1 or event.attempts != round_attempts(state, step, event.round):
            return f"round {event.round} over attempts {event.attempts} is not the round that was due"
        if event.before != step.instruction or event.better_attempt not in event.attempts:
            return "the critique is not of the step's prompt and clips"
    elif isinstance(event, BestAttemptPropagated):
        step = state.step(event.step)
        best = best_attempt(step)
        if event.attempt != best.number or event.clip != best.generated.candidate:
            return f"it propagates attempt {event.attempt}, but the best attempt was {best.number}"
    return None

"""What the loop does next, decided from the state alone (DESIGN.md section 1, rules 1-7), and the rules of
the baselines a session can run instead (LoopConfig.method), written here once so that a baseline is a
session like any other: recorded, resumable, shown in the app.

- collabvr: the method. Its ablations are budgets and switches of it (collabvr.eval.methods names them):
  planning only (M = 1, router off), verification only (N_max = 1, router off), fixed N (`exact_steps`:
  the planner may not finish early) and no router.
- resample: one step whose prompt is the raw task prompt (no planner call); `samples` = k clips of it from
  the input image, each of the first-step length, with seeds of their own; with k > 1 one SELECT call (the
  VLM's Pass@k selector) picks the clip that becomes the video; k = 1 is single inference. No verifier.
- videotpo: one step, the raw task prompt; `tpo_rounds` rounds of `tpo_clips` clips, each round followed
  by one CRITIQUE call that compares its clips and rewrites the prompt (the whole prompt); then one final
  clip of the rewritten prompt, which is the video. The clips of a round reuse the same seeds in every
  round (only the prompt changes), as VideoTPO's code does; the final clip has a seed of its own. The
  paper's setting, 2 rounds of 2 clips, is 5 generations. No verifier.

`next_command(state)` is pure: the driver executes the command against the backends and appends the
event(s) it produces. A breakpoint or an unrecovered backend failure yields WAIT, which carries the
command it holds back so that a person's "step" can run it anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from collabvr.config import LoopConfig
from collabvr.state import AttemptState, SessionState, StepState, start_point_for_next_attempt


class Kind(str, Enum):
    PLAN = "plan"
    GENERATE = "generate"
    VERIFY = "verify"
    EVOLVE = "evolve"
    ROUTE = "route"
    SELECT = "select"
    CRITIQUE = "critique"
    ACCEPT = "accept"
    PROPAGATE = "propagate"
    FINISH = "finish"
    WAIT = "wait"
    DONE = "done"


@dataclass(frozen=True)
class Command:
    kind: Kind
    step: int | None = None
    attempt: int | None = None
    purpose: str = "attempt"  # GENERATE: attempt | regen | fallback
    reason: str = ""
    held: "Command | None" = None  # WAIT: the command a breakpoint or failure holds back

    def describe(self) -> str:
        where = ""
        if self.step is not None:
            where = f" step {self.step}" + (f" attempt {self.attempt}" if self.attempt is not None else "")
        text = f"{self.kind.value}{where}"
        if self.kind is Kind.GENERATE and self.purpose != "attempt":
            text += f" ({self.purpose})"
        if self.reason:
            text += f": {self.reason}"
        return text


def next_command(state: SessionState) -> Command:
    """The one thing the loop should do next."""
    if state.finished is not None:
        return Command(Kind.DONE, reason=state.finished.reason)
    command = _natural_command(state)
    if state.failures:
        # Only a failure that may pass (a time-out, a rate limit, a stop) is retried by itself, and only
        # `backend_retries` times in a row; anything else waits for a person, who can Step to retry.
        failure = state.failures[-1]
        if not failure.retryable or len(state.failures) > state.config.backend_retries:
            return Command(Kind.WAIT, step=command.step, attempt=command.attempt, held=command,
                           reason=f"{failure.role} failed: {failure.message}")
    return _hold(state, command)


def _natural_command(state: SessionState) -> Command:
    if state.config.method != "collabvr":
        return _baseline_command(state)
    step = state.current_step
    if step is None:
        return Command(Kind.PLAN, step=1)
    if step.resolved:
        return _after_resolved(state, step)
    if step.plan.task_complete:
        return Command(Kind.FINISH, step=step.number, reason="the planner found the task complete")
    last = step.last_attempt
    if last is None:
        return _generate_or_stop(state, step, "attempt")
    if last.verified is None:
        return Command(Kind.VERIFY, step=step.number, attempt=last.number)

    # A route a person asked for wins over an accept: asking to regenerate says the clip is not wanted.
    accepted = _accepted_attempt(step) if step.pending_route is None else None
    if accepted is not None:
        return Command(Kind.ACCEPT, step=step.number, attempt=accepted.number)
    return _after_reject(state, step, last)


def _baseline_command(state: SessionState) -> Command:
    """A baseline's one step: PLAN sets it to the raw task prompt, then its method's clips and VLM calls."""
    config = state.config
    step = state.current_step
    if step is None:
        return Command(Kind.PLAN, step=1, reason=f"{config.method}: the raw task prompt")
    if step.resolved:
        return Command(Kind.FINISH, step=step.number, reason=f"{baseline_name(config)} done")
    made = len(step.attempts)
    if config.method == "resample":
        if made < config.samples:
            return _generate_or_stop(state, step, "attempt")
        if config.samples == 1:
            return Command(Kind.ACCEPT, step=step.number, attempt=1, reason="single inference keeps its clip")
        if step.selection is None:
            return Command(Kind.SELECT, step=step.number, attempt=made)
        return Command(Kind.ACCEPT, step=step.number, attempt=step.selection.best_attempt,
                       reason="the selector's pick")
    per_round, rounds = config.tpo_clips, config.tpo_rounds
    critiqued = len(step.critiques)
    if made < critiqued * per_round + per_round and critiqued < rounds:
        return _generate_or_stop(state, step, "attempt")
    if critiqued < rounds:
        return Command(Kind.CRITIQUE, step=step.number, attempt=made, reason=f"round {critiqued + 1} of {rounds}")
    if made < rounds * per_round + 1:
        return _generate_or_stop(state, step, "attempt")
    return Command(Kind.ACCEPT, step=step.number, attempt=made, reason="the final clip of the rewritten prompt")


def baseline_name(config: LoopConfig) -> str:
    """How a session's method is called in messages: "single inference", "Pass@4", "VideoTPO", "CollabVR"."""
    if config.method == "resample":
        return "single inference" if config.samples == 1 else f"Pass@{config.samples}"
    if config.method == "videotpo":
        return "VideoTPO"
    return "CollabVR"


def generation_seed_parts(state: SessionState, step: StepState, attempt: int) -> tuple:
    """What a generation's seed is derived from (with the session's seed): the step and attempt, except in
    VideoTPO, whose clips of a round take the same seeds in every round and whose final clip its own."""
    config = state.config
    if config.method != "videotpo":
        return (step.number, attempt, "generate")
    index = attempt - 1
    if index >= config.tpo_rounds * config.tpo_clips:
        return (step.number, "videotpo", "final", "generate")
    return (step.number, "videotpo", index % config.tpo_clips, "generate")


def round_attempts(state: SessionState, step: StepState, round_number: int) -> list[int]:
    """VideoTPO: the attempt numbers of a round (1-based)."""
    per_round = state.config.tpo_clips
    return list(range((round_number - 1) * per_round + 1, round_number * per_round + 1))


def _after_resolved(state: SessionState, step: StepState) -> Command:
    if step.status == "split":
        return Command(Kind.PLAN, step=step.number + 1, reason=f"split of step {step.number}")
    if step.status == "accepted" and step.attempt(step.result_attempt or 0).purpose == "fallback":
        return Command(Kind.FINISH, step=step.number, reason="fallback generated the whole remaining task")
    if step.number >= state.max_steps:
        return Command(Kind.FINISH, step=step.number, reason=f"step budget spent ({state.max_steps} steps)")
    return Command(Kind.PLAN, step=step.number + 1)


def _accepted_attempt(step: StepState) -> AttemptState | None:
    """The latest decision on the step wins: the attempt whose accept (the VLM's or a person's) came last,
    unless a route was decided after it (asking to regenerate says that clip is not wanted)."""
    accepted = [a for a in step.attempts if a.effective_verdict == "accept"]
    if not accepted:
        return None
    latest = max(accepted, key=lambda a: a.decided_seq)
    return latest if latest.decided_seq > step.last_route_seq else None


def _after_reject(state: SessionState, step: StepState, last: AttemptState) -> Command:
    route = step.pending_route
    if route is not None:
        # A regen or fallback decided by the router or a person: evolve the prompt with its suggestion
        # (a fallback always switches to the whole task prompt), then generate once.
        action = route.decision.action
        if not route.evolved and (action == "fallback" or route.decision.suggestion):
            return Command(Kind.EVOLVE, step=step.number, attempt=last.number, reason=f"{action} ({route.by})")
        return _generate_or_stop(state, step, action)
    if last.purpose == "fallback" or (last.purpose == "regen" and step.vlm_routed):
        return Command(Kind.PROPAGATE, step=step.number, reason="the recovery attempt was rejected too")
    if step.normal_attempts < state.config.m:
        if last.number not in step.evolved_after:
            return Command(Kind.EVOLVE, step=step.number, attempt=last.number)
        return _generate_or_stop(state, step, "attempt")
    if state.config.router and not step.vlm_routed and not step.is_split_sub_step:
        return Command(Kind.ROUTE, step=step.number, attempt=last.number)
    return Command(Kind.PROPAGATE, step=step.number, reason=f"all {state.config.m} attempts rejected")


def _generate_or_stop(state: SessionState, step: StepState, purpose: str) -> Command:
    """GENERATE the next attempt, unless the cap on generated seconds forbids it (the first clip of a
    session is always allowed, so that a run never ends without video)."""
    attempt = (step.last_attempt.number + 1) if step.attempts else 1
    cap = state.config.max_vgm_seconds
    seconds = clip_seconds(state, step, purpose)
    if cap is not None and state.clips > 0 and state.vgm_seconds + seconds > cap + 1e-9:
        why = f"budget cap of {cap:g} s of video would be exceeded"
        if step.attempts:
            return Command(Kind.PROPAGATE, step=step.number, reason=why)
        return Command(Kind.FINISH, step=step.number, reason=why)
    return Command(Kind.GENERATE, step=step.number, attempt=attempt, purpose=purpose)


def evolved_prompt(base: str, suggestion: str) -> str:
    """Rule 5: instruction + " " + suggestion. A suggestion the prompt already holds is not appended
    again (repeating it would not make a model do it twice, only blur the prompt)."""
    suggestion = " ".join(suggestion.split())
    if not suggestion or suggestion.casefold() in " ".join(base.split()).casefold():
        return base.strip()
    return f"{base.strip()} {suggestion}".strip()


def evolution(state: SessionState, step_number: int, after_attempt: int) -> tuple[str, str, str, str]:
    """(source, before, after, suggestion) of evolving `step_number`'s prompt after `after_attempt`.

    A pending route's suggestion is applied once (a fallback switches to the whole task prompt); otherwise
    the attempt's effective suggestion: a person's reject suggestion replaces the verifier's if that was
    already applied to the instruction."""
    step = state.step(step_number)
    last = step.attempt(after_attempt)
    route = step.pending_route
    if route is not None and not route.evolved:
        suggestion = route.decision.suggestion.strip()
        base = state.task_prompt if route.decision.action == "fallback" else step.instruction
        return "router", step.instruction, evolved_prompt(base, suggestion), suggestion
    suggestion = last.suggestion.strip()
    base = step.instruction
    prior = step.evolutions.get(last.number)
    if prior is not None and prior.after == step.instruction:
        base = prior.before
    source = "override" if last.override is not None else "verifier"
    return source, step.instruction, evolved_prompt(base, suggestion), suggestion


def best_attempt(step: StepState) -> AttemptState:
    """Paper appendix C.2: the attempt propagated when none is accepted: the largest good_fraction the
    verifier gave, the latest on ties."""
    return max(step.attempts, key=lambda a: (a.good_fraction, a.number))


def clip_seconds(state: SessionState, step: StepState, purpose: str) -> float:
    """Step 1's clips and a fallback (the whole remaining task) are long; later steps and partial regens
    are short (paper: 6 s, then 3 s)."""
    if purpose == "fallback":
        return state.config.first_step_seconds
    if step.number == 1 and start_point_for_next_attempt(state, step).kind == "step_start":
        return state.config.first_step_seconds
    return state.config.later_seconds


def _hold(state: SessionState, command: Command) -> Command:
    """Turn `command` into WAIT when a breakpoint holds it."""
    bps = state.breakpoints
    step = state.current_step
    reason = ""
    if command.kind is Kind.GENERATE and "before_generate" in bps:
        reason = "breakpoint: before generation"
    elif command.kind in (Kind.ACCEPT, Kind.EVOLVE, Kind.ROUTE, Kind.PROPAGATE) and step is not None \
            and not step.decided_since_verify:
        last = step.last_attempt
        if "on_reject" in bps and last is not None and last.effective_verdict == "reject":
            reason = "breakpoint: on reject"
        elif "after_verify" in bps:
            reason = "breakpoint: after verification"
    if not reason and command.kind is Kind.ROUTE and "on_route" in bps:
        reason = "breakpoint: on route"
    if not reason:
        return command
    return Command(Kind.WAIT, step=command.step, attempt=command.attempt, held=command, reason=reason)


def unheld(command: Command) -> Command:
    """The command itself, whether or not a breakpoint or a failure holds it."""
    return command.held if command.kind is Kind.WAIT and command.held is not None else command


def command_inputs(state: SessionState, command: Command) -> tuple:
    """What a command's result is computed from. The engine computes a result without holding any lock;
    if, when it comes back, the loop would run another command or this one's inputs changed (a person
    edited the action, overrode a verdict, requested a route), the result is stale and is dropped."""
    base: tuple = (command.kind, command.step, command.attempt, command.purpose)
    if command.kind is Kind.PLAN:
        history = tuple((s.number, s.status, s.instruction, s.result_attempt) for s in state.steps if s.resolved)
        return base + (state.max_steps, state.current_frame.sha256, split_context(state, command.step or 1),
                       history)
    if command.kind is Kind.FINISH:
        return base + (tuple(c.sha256 for c in state.trajectory), command.reason)
    if command.step is None or not any(s.number == command.step for s in state.steps):
        return base
    step = state.step(command.step)
    if command.kind is Kind.GENERATE:
        return base + (step.instruction, step.start_frame.sha256, start_point_for_next_attempt(state, step),
                       clip_seconds(state, step, command.purpose))
    if command.kind is Kind.VERIFY:
        return base + (step.attempt(command.attempt or 0).generated.candidate.sha256,)
    decisions = tuple((a.number, a.effective_verdict, a.decided_seq, a.suggestion) for a in step.attempts)
    route = step.pending_route
    return base + (step.instruction, decisions, step.last_route_seq, route.evolved if route else None)


def split_context(state: SessionState, step_number: int) -> tuple[int, int, int] | None:
    """(split step, sub-step index, sub-steps) when `step_number` re-plans the residual of a split step."""
    if state.split_budget is None:
        return None
    split_step, first, count = state.split_budget
    if first <= step_number < first + count:
        return split_step, step_number - first + 1, count
    return None

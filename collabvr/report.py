"""Plain summaries of a session's state: what happened in each step and how often each branch fired."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from collabvr.state import SessionState


@dataclass
class BranchCounts:
    """How often each branch of the method fired in a session (DESIGN.md section 1)."""

    first_try_accepts: int = 0
    evolved_prompts: int = 0
    partial_regens: int = 0
    routes: dict[str, int] = field(default_factory=lambda: {"regen": 0, "split": 0, "fallback": 0})
    propagated: int = 0
    human_overrides: int = 0

    def add(self, other: "BranchCounts") -> None:
        self.first_try_accepts += other.first_try_accepts
        self.evolved_prompts += other.evolved_prompts
        self.partial_regens += other.partial_regens
        self.propagated += other.propagated
        self.human_overrides += other.human_overrides
        for action, n in other.routes.items():
            self.routes[action] = self.routes.get(action, 0) + n

    def as_dict(self) -> dict:
        return asdict(self)


def branch_counts(state: SessionState) -> BranchCounts:
    counts = BranchCounts()
    for step in state.steps:
        if step.status == "accepted" and step.result_attempt == 1 and step.result_by == "verifier":
            counts.first_try_accepts += 1
        counts.evolved_prompts += sum(1 for source, _ in step.prompt_history if source in ("verifier", "override"))
        counts.partial_regens += sum(1 for a in step.attempts if a.generated.start.kind == "partial")
        for route in step.routes:
            counts.routes[route.decision.action] += 1
        counts.propagated += step.status == "propagated"
        counts.human_overrides += sum(1 for a in step.attempts if a.override is not None)
    return counts


def summary(state: SessionState) -> dict:
    """The one-object JSON summary of a session that the CLI prints."""
    attempts = sum(len(s.attempts) for s in state.steps)
    finished = state.finished
    return {
        "session_id": state.session_id,
        "status": state.status,
        "task": state.started.task.model_dump(),
        "simulated": state.started.vlm.simulated or state.started.vgm.simulated,
        "backends": {"vlm": state.started.vlm.model_dump(), "vgm": state.started.vgm.model_dump()},
        "finished": finished is not None,
        "success": finished.success if finished else None,
        "finish_reason": finished.reason if finished else None,
        "steps": len(state.steps),
        "step_statuses": [s.status for s in state.steps],
        "attempts": attempts,
        "vgm_seconds": round(state.vgm_seconds, 3),
        "clips": state.clips,
        "vlm_calls": state.vlm_calls,
        "input_tokens": state.input_tokens,
        "output_tokens": state.output_tokens,
        "wall_s": round(state.wall_s, 3),
        "cost": state.cost.model_dump(),
        "own_cost": state.own_cost.model_dump() if state.inherited_cost is not None else None,
        "branches": branch_counts(state).as_dict(),
        "verdicts": dict(Counter(a.effective_verdict for s in state.steps for a in s.attempts if a.verified)),
        "failure": state.failures[-1].message if state.failures else None,
    }


def step_lines(state: SessionState) -> list[str]:
    """A readable per-step account for the terminal."""
    lines = []
    for step in state.steps:
        head = f"step {step.number}/{state.max_steps}"
        if step.is_split_sub_step:
            head += f" (sub-step {step.planned.sub_step}/{step.planned.sub_steps} of step {step.planned.split_of})"
        if step.plan.task_complete:
            lines.append(f"{head}: planner says the task is complete")
            continue
        lines.append(f"{head}: {step.plan.instruction}")
        for attempt in step.attempts:
            verdict = attempt.vlm_verdict
            mark = attempt.effective_verdict or "unverified"
            extra = ""
            if attempt.generated.start.kind == "partial":
                extra = f" from frame {attempt.generated.start.frame_index} of attempt {attempt.generated.start.from_attempt}"
            line = (f"  attempt {attempt.number} [{attempt.purpose}{extra}] {attempt.generated.seconds:.2f}s "
                    f"ssim={attempt.generated.first_frame_ssim:.3f} -> {mark}")
            if verdict is not None:
                line += f" ({verdict.confidence:.2f}): {verdict.reason}"
                if verdict.verdict == "reject" and verdict.suggestion:
                    line += f" | suggestion: {verdict.suggestion}"
            lines.append(line)
        for route in step.routes:
            lines.append(f"  routed by {route.by}: {route.decision.action} ({route.decision.reason})")
        lines.append(f"  -> {step.status}" + (f" with attempt {step.result_attempt}" if step.result_attempt else ""))
    return lines

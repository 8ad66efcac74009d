"""The prompt of each VLM role (DESIGN.md section 1), shared by every prompted VLM (Gemini, a local
transformers model). A prompt is a system text, a list of parts (text, images, a clip) and the pydantic
schema the answer must fit; each backend renders the parts its own way (Gemini takes the clip as an mp4, a
local model as frames at the verifier's rate plus the last frame).

The wording is ours; the rules follow the paper's roles: the planner plans the next sub-action only, the
verifier judges whether THIS action happened (not whether the task is done), the router picks regen, split
or fallback after M rejections, the selector picks the best of k clips, the critic (the VideoTPO baseline) critiques a round of clips and
rewrites the prompt, the judge grades a finished video
against a benchmark's rubric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np
from pydantic import BaseModel

from collabvr.backends.protocols import (
    ClipView, CritiqueRequest, JudgeRequest, PlanRequest, RouteRequest, SelectRequest, VerifyRequest,
)
from collabvr.backends.schemas import Critique, Plan, RouteDecision, RubricJudgement, Selection, Verdict


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Image:
    frame: np.ndarray
    caption: str


@dataclass(frozen=True)
class Clip:
    view: ClipView
    caption: str


Part = Union[Text, Image, Clip]


@dataclass(frozen=True)
class Prompt:
    role: str  # "plan", "verify", "route", "select", "judge"
    system: str
    parts: list[Part] = field(default_factory=list)
    schema: type[BaseModel] = BaseModel


# ----- what every answer looks like ----------------------------------------------------------------------

_JSON_ONLY = "Answer with one JSON object and nothing else: no prose before or after it, no code fences."

FIELDS: dict[str, str] = {
    "plan": (
        '{"observation": string, "remaining_goal": string, "task_complete": true|false, '
        '"instruction": string, "target_state": string, "estimated_steps_remaining": integer >= 0}'),
    "verify": (
        '{"verdict": "accept"|"reject", "action_executed": true|false, "progress": "none"|"partial"|"complete", '
        '"confidence": number 0-1, "reason": string, "suggestion": string ("" on accept), '
        '"good_fraction": number 0-1 on reject, null on accept, '
        '"error_type": "wrong_direction"|"wrong_object"|"wrong_action"|"scene_collapse"|"not_executed"|"other"|null}'),
    "route": (
        '{"action": "regen"|"split"|"fallback", "estimated_steps": integer 2-8 for split, else null, '
        '"suggestion": string, "reason": string}'),
    "select": '{"best_index": integer (0-based index of the best clip), "reason": string}',
    "critique": ('{"better_index": integer (0-based index of the better clip), "critique": string, '
                 '"prompt": string (the whole rewritten prompt)}'),
    "judge": (
        '{"criteria": [{"criterion": string, "score": number, "max_score": number, "reason": string}, ...], '
        '"summary": string}'),
}

SCHEMAS: dict[str, type[BaseModel]] = {
    "plan": Plan, "verify": Verdict, "route": RouteDecision, "select": Selection, "critique": Critique,
    "judge": RubricJudgement,
}


def answer_format(role: str) -> str:
    return f"{_JSON_ONLY}\nIts fields: {FIELDS[role]}"


# ----- planner ---------------------------------------------------------------------------------------------

PLANNER = """You are the planner of a team that solves a visual task with an image-to-video model.
The video model sees only the current frame and one instruction from you, and renders a short clip (a few
seconds) that starts from that frame. It carries out one simple, visible action reliably; a long or compound
instruction it carries out only partly, or in the wrong order. So the task is solved one action at a time.

Your job now: look at the current frame and plan the NEXT action only.
- observation: what the current frame shows that matters for the task.
- remaining_goal: what is still left to do, from this frame.
- task_complete: true only if the current frame already shows the task done; then leave instruction empty.
- instruction: the prompt for the video model. ONE action, described as visible motion: which object moves
  (by colour, shape, position), where to, and how; it must fit in one short clip. Say that the camera stays
  still and that nothing else in the scene changes.
- target_state: exactly what the clip's last frame must show once the action is done (positions, colours,
  orientations), so that someone can check it by looking.
- estimated_steps_remaining: how many more actions you expect after this one."""


def plan_prompt(request: PlanRequest) -> Prompt:
    done = [f"Step {h.step}: {h.instruction} -> {h.outcome}" for h in request.history]
    parts: list[Part] = [
        Text(f"Task: {request.task_prompt}"),
        Image(request.input_image, "The input image (how the task started):"),
        Image(request.current_frame, "The current frame (the next clip starts here):"),
        Text("Completed steps:\n" + ("\n".join(done) if done else "(none)")),
        Text(f"This is step {request.step} of at most {request.max_steps}."),
    ]
    if request.split is not None:
        parts.append(Text(
            f"The step \"{request.split.failed_instruction}\" failed as a whole and is being re-planned as "
            f"{request.split.sub_steps} smaller steps; this is sub-step {request.split.sub_step} of "
            f"{request.split.sub_steps}. Plan only the next smaller piece of it."))
    if request.exact_steps:
        parts.append(Text(f"This run takes exactly {request.max_steps} steps: never set task_complete; spread what "
                          "is left over the remaining steps, and if nothing is left, ask the video model to keep the "
                          "scene still."))
    if request.is_last:
        parts.append(Text("This is the last step allowed: the instruction must finish the WHOLE remaining task "
                          "in this one clip."))
    parts.append(Text(answer_format("plan")))
    return Prompt("plan", PLANNER, parts, Plan)


# ----- verifier --------------------------------------------------------------------------------------------

VERIFIER = """You are the verifier of a team that solves a visual task with an image-to-video model, one
action per clip. You get the task, the action that was asked for, the state its last frame should show, and
the clip the video model made. Judge whether THIS action was carried out; do not judge whether the whole task
is done, since later steps take care of the rest.

Accept when the motion starts the right way and the result is consistent with the action, even if the
action is not fully finished, the clip has small artefacts, or the final goal is still far.
Reject for a fundamental error: the wrong direction, the wrong object moved, a different action, nothing
happening, or the scene falling apart (objects vanishing, doubling, merging or changing identity).

On a reject also give:
- good_fraction: the share of the clip (0.0 to 1.0) that was still right before the error began; the next
  attempt may restart from that moment and keep what came before.
- suggestion: a short, specific correction to append to the instruction for the next attempt (name the
  object, the direction, the target, and what to avoid). Never restate the whole instruction.
- error_type: which kind of error it was.
confidence is how sure you are of the verdict, from 0 to 1."""


def verify_prompt(request: VerifyRequest) -> Prompt:
    parts: list[Part] = [
        Text(f"Task: {request.task_prompt}"),
        Text(f"Action asked for: {request.instruction}"),
        Text(f"Target state of the last frame: {request.target_state or '(not given)'}"),
        Image(request.input_image, "The input image (how the task started):"),
    ]
    if request.current_frame is not None:
        parts.append(Image(request.current_frame, "The current frame (where this step started):"))
    parts += [Clip(request.clip, "The clip to judge:"), Text(answer_format("verify"))]
    return Prompt("verify", VERIFIER, parts, Verdict)


# ----- failure router -------------------------------------------------------------------------------------

ROUTER = """You are the failure router of a team that solves a visual task with an image-to-video model,
one action per clip. Every attempt at the current step was rejected. Choose how to recover:
- regen: one more try at the same action. Choose it when the failure was a slip in carrying out a single,
  coherent action and a good part of the clip was right (a moderate or high good_fraction); the next try
  starts from the first failing frame and keeps what came before.
- split: the failure is structural: the action needs intermediate states (several moves, turns, assembling,
  drawing several things), or almost nothing of the clip was right and the action seems to conflate steps.
  Give estimated_steps (2 to 8): how many smaller steps the rest of the task should be planned as.
- fallback: generate the whole remaining task in one clip. Choose it when breaking the task into steps is
  what caused the trouble (e.g. artefacts at step boundaries) and the rest fits in one clip.
suggestion: a short, specific hint for the next generation. reason: why you chose this action."""


def route_prompt(request: RouteRequest) -> Prompt:
    parts: list[Part] = [
        Text(f"Task: {request.task_prompt}"),
        Image(request.input_image, "The input image (how the task started):"),
        Text(f"Step {request.step} of at most {request.max_steps}. The action that kept failing: "
             f"{request.instruction}"),
        Clip(request.clip, "The last failed clip:"),
        Text(f"Why the verifier rejected it: {request.reason}\n"
             f"The verifier's suggestion: {request.suggestion or '(none)'}\n"
             f"good_fraction (share of the clip that was right before the error): {request.good_fraction:.2f}"),
        Text(answer_format("route")),
    ]
    return Prompt("route", ROUTER, parts, RouteDecision)


# ----- Pass@k selector -----------------------------------------------------------------------------------

SELECTOR = """You compare several clips that an image-to-video model made for the same task from the same
input image, and pick the one that best carries out the task: the right objects do the right things, in
the right order, ending in the right state, with the scene intact (no objects vanishing or doubling, no jump
cuts, a still camera unless the task asks otherwise). Clips are numbered from 0."""


def select_prompt(request: SelectRequest) -> Prompt:
    parts: list[Part] = [
        Text(f"Task: {request.task_prompt}"),
        Image(request.input_image, "The input image:"),
    ]
    parts += [Clip(view, f"Clip {index}:") for index, view in enumerate(request.clips)]
    parts.append(Text(f"There are {len(request.clips)} clips; best_index must be between 0 and "
                      f"{len(request.clips) - 1}.\n" + answer_format("select")))
    return Prompt("select", SELECTOR, parts, Selection)


# ----- VideoTPO critic -------------------------------------------------------------------------------------

CRITIC = """You improve the prompt of an image-to-video model by critiquing what it made. You get the task, the
prompt the model was given, and several clips it made from that prompt and the same input image. Analyse the
strengths and weaknesses of each clip step by step against the task: do the right objects do the right
things, in the right order, ending in the right state, with the scene intact and a still camera? Then name
the better clip and rewrite the prompt so that the next clips keep the strengths and avoid the weaknesses.
The rewritten prompt is the whole prompt the model will get (not a note to append); keep it a valid video
prompt within 300 tokens that still asks for the whole task."""


def critique_prompt(request: CritiqueRequest) -> Prompt:
    parts: list[Part] = [
        Text(f"Task: {request.task_prompt}"),
        Image(request.input_image, "The input image:"),
        Text(f"Round {request.round} of {request.rounds}. The prompt the clips were made from: {request.prompt}"),
    ]
    parts += [Clip(view, f"Clip {index}:") for index, view in enumerate(request.clips)]
    parts.append(Text(f"There are {len(request.clips)} clips; better_index must be between 0 and "
                      f"{len(request.clips) - 1}.\n" + answer_format("critique")))
    return Prompt("critique", CRITIC, parts, Critique)


# ----- rubric judge --------------------------------------------------------------------------------------

JUDGE = """You grade a finished video against a rubric, as a benchmark's judge does. Score every criterion
of the rubric, in the rubric's order, on the criterion's own scale: 0 or 1 for a pass/fail criterion unless
the rubric gives points, and never above the criterion's maximum. Judge only what the video shows; a
criterion about every frame (e.g. never crossing a wall) fails if any frame breaks it. Give each score a
short reason, then a one-sentence summary."""


def judge_prompt(request: JudgeRequest) -> Prompt:
    parts: list[Part] = [
        Text(f"Task the video was made for: {request.task_prompt}"),
        Text(f"Rubric:\n{request.rubric}"),
        Image(request.input_image, "The input image:"),
    ]
    if request.reference_image is not None:
        parts.append(Image(request.reference_image, "The reference (correct) final state:"))
    parts += [Clip(request.clip, "The video to grade:"), Text(answer_format("judge"))]
    return Prompt("judge", JUDGE, parts, RubricJudgement)


# ----- repair ------------------------------------------------------------------------------------------------

def repair_text(role: str, problem: str) -> str:
    """The one re-ask after an answer that did not fit the role's schema, quoting what was wrong."""
    return (f"Your answer could not be used: {problem}\n"
            f"Reply again with the corrected answer. {answer_format(role)}")


def frame_caption(index: int, n_frames: int, fps: float, last: bool) -> str:
    """How a local model is told where a clip frame sits in time (it sees frames, not a video)."""
    where = "last frame" if last else f"frame {index + 1} of {n_frames}"
    return f"{where}, t = {index / fps:.1f} s"

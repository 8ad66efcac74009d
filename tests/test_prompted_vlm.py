"""The VLM roles every real VLM shares (collabvr.backends.prompted, .prompts), with a scripted chat model:
what each prompt holds, how an answer is read, the one repair, and what a failure costs."""

from __future__ import annotations

import numpy as np
import pytest

from collabvr.backends import (
    BackendError, BackendInfo, ClipView, MalformedOutput, PlanRequest, SelectRequest, SplitContext, Usage,
    VerifyRequest,
)
from collabvr.backends.prompted import ChatReply, PromptedVLM, extract_json, parse_answer, schema_json
from collabvr.backends.prompts import Clip, Image, Text, plan_prompt, verify_prompt
from collabvr.backends.schemas import Plan, RubricJudgement

FRAME = np.zeros((16, 16, 3), np.uint8)
PLAN_JSON = ('{"observation": "o", "remaining_goal": "r", "task_complete": false, "instruction": "push the block",'
             ' "target_state": "block on the pad", "estimated_steps_remaining": 1}')


class ScriptedChat:
    name = "scripted chat"

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.requests = []

    def complete(self, request):
        self.requests.append(request)
        item = self.answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return ChatReply(item, Usage(calls=1, input_tokens=10, output_tokens=3, latency_s=0.5))


def vlm(*answers) -> PromptedVLM:
    return PromptedVLM(ScriptedChat(*answers), BackendInfo(name="scripted/vlm", role="vlm", simulated=False))


def plan_request(step: int = 1, max_steps: int = 3, split: SplitContext | None = None) -> PlanRequest:
    return PlanRequest(task_prompt="Sort the blocks.", input_image=FRAME, current_frame=FRAME, history=[], step=step,
                       max_steps=max_steps, seed=1, split=split)


def texts(prompt) -> str:
    return "\n".join(p.text for p in prompt.parts if isinstance(p, Text))


def test_json_is_found_in_fences_prose_and_nested_strings():
    assert extract_json('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert extract_json('Here you go: {"a": "x}{", "b": {"c": 2}} hope it helps') == '{"a": "x}{", "b": {"c": 2}}'
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("I cannot tell.")
    with pytest.raises(ValueError, match="not closed"):
        extract_json('{"a": {"b": 1}')


def test_parse_names_the_fields_that_break_the_schema():
    with pytest.raises(ValueError, match="instruction must be non-empty"):
        parse_answer('{"observation": "o", "remaining_goal": "r", "task_complete": false, '
                     '"estimated_steps_remaining": 1}', Plan)
    with pytest.raises(ValueError, match="estimated_steps_remaining"):
        parse_answer('{"observation": "o", "remaining_goal": "r", "task_complete": true, '
                     '"estimated_steps_remaining": -2}', Plan)


def test_the_last_step_must_finish_the_whole_task_and_a_split_plans_a_piece():
    assert "must finish the WHOLE remaining task" not in texts(plan_prompt(plan_request(1, 3)))
    assert "must finish the WHOLE remaining task" in texts(plan_prompt(plan_request(3, 3)))
    split = texts(plan_prompt(plan_request(2, 3, SplitContext("stack all blocks", 1, 3))))
    assert '"stack all blocks" failed as a whole' in split and "sub-step 1 of 3" in split


def test_the_verifier_sees_the_input_image_the_current_frame_and_the_clip():
    clip = ClipView(frames=[FRAME], indices=[0], n_frames=1, fps=8.0)
    prompt = verify_prompt(VerifyRequest(task_prompt="Sort.", input_image=FRAME, instruction="push red left",
                                         target_state="red on the left pad", clip=clip, seed=1, current_frame=FRAME))
    assert [type(p).__name__ for p in prompt.parts if isinstance(p, (Image, Clip))] == ["Image", "Image", "Clip"]
    assert "Action asked for: push red left" in texts(prompt)
    assert "Target state of the last frame: red on the left pad" in texts(prompt)
    assert "THIS action" in prompt.system and "Partial" not in prompt.system


def test_a_good_first_answer_costs_one_call():
    reply = vlm(PLAN_JSON).plan(plan_request())
    assert reply.value.instruction == "push the block" and reply.usage.calls == 1


def test_a_bad_answer_is_asked_again_once_with_the_error_quoted():
    model = vlm("The block should move left.", PLAN_JSON)
    reply = model.plan(plan_request())
    assert reply.value.instruction == "push the block"
    assert (reply.usage.calls, reply.usage.input_tokens, reply.usage.latency_s) == (2, 20, 1.0)
    retry = model.model.requests[1]
    assert [t.role for t in retry.turns] == ["user", "model", "user"]
    assert "the answer holds no JSON object" in retry.turns[2].parts[0].text


def test_two_bad_answers_raise_malformed_output_with_the_cost_of_both():
    with pytest.raises(MalformedOutput) as raised:
        vlm("nope", '{"verdict": "maybe"}').plan(plan_request())
    assert raised.value.usage.calls == 2 and raised.value.usage.output_tokens == 6
    assert raised.value.raw == '{"verdict": "maybe"}' and not raised.value.retryable


def test_a_failed_repair_call_still_counts_the_first_answer():
    with pytest.raises(BackendError) as raised:
        vlm("nope", BackendError("timed out", retryable=True)).plan(plan_request())
    assert raised.value.retryable and raised.value.usage.calls == 2 and raised.value.usage.input_tokens == 10


def test_a_selection_out_of_range_is_repaired():
    clip = ClipView(frames=[FRAME], indices=[0], n_frames=1, fps=8.0)
    model = vlm('{"best_index": 5, "reason": "r"}', '{"best_index": 1, "reason": "r"}')
    reply = model.select(SelectRequest(task_prompt="t", input_image=FRAME, clips=[clip, clip], seed=1))
    assert reply.value.best_index == 1
    assert "only 2 clips" in model.model.requests[1].turns[2].parts[0].text


def test_the_schema_sent_for_structured_output_is_self_contained():
    document = schema_json(RubricJudgement)
    assert "$ref" not in str(document) and "$defs" not in document
    assert document["properties"]["criteria"]["items"]["properties"]["max_score"]["type"] == "number"

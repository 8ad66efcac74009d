"""The VLM roles every prompted model shares: build the role's prompt (collabvr.backends.prompts), ask the
model, validate the answer against the role's pydantic schema, and repair once.

A real model sometimes answers with prose, a truncated object or a field out of range. The answer is then
re-asked once, quoting the validation error; if the second answer does not fit either, the call raises
`MalformedOutput` carrying the usage of both calls. The engine records that as a `BackendFailed` event; a
malformed verdict is never taken as an accept.

A backend plugs in a `ChatModel`: something that answers a conversation of text, images and clips with text.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from collabvr.backends.prompts import (
    Part, Prompt, Text, critique_prompt, judge_prompt, plan_prompt, repair_text, route_prompt, select_prompt, verify_prompt,
)
from collabvr.backends.protocols import (
    BackendError, BackendInfo, CritiqueRequest, JudgeRequest, MalformedOutput, PlanRequest, RouteRequest, SelectRequest, Usage,
    VerifyRequest, VLMReply,
)
from collabvr.backends.schemas import Critique, Plan, RouteDecision, RubricJudgement, Selection, Verdict

T = TypeVar("T", bound=BaseModel)
MAX_PROBLEM_CHARS = 600  # how much of a validation error is quoted back to the model and to people


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "model"]
    parts: list[Part]


@dataclass(frozen=True)
class ChatRequest:
    role: str  # the VLM role asking ("plan", "verify", ...), for messages
    system: str
    turns: list[Turn]
    schema: type[BaseModel]
    seed: int


@dataclass(frozen=True)
class ChatReply:
    text: str
    usage: Usage = field(default_factory=Usage)


class ChatModel(Protocol):
    """A model that answers a conversation with text. Raises BackendError (retryable for what may pass)."""

    name: str

    def complete(self, request: ChatRequest) -> ChatReply: ...


def add_usage(a: Usage | None, b: Usage | None) -> Usage:
    """The cost of two calls together (tokens stay unknown if either side does not know them)."""
    a, b = a or Usage(calls=0), b or Usage(calls=0)

    def plus(x: int | None, y: int | None) -> int | None:
        return None if x is None and y is None else (x or 0) + (y or 0)

    return Usage(calls=a.calls + b.calls, input_tokens=plus(a.input_tokens, b.input_tokens),
                 output_tokens=plus(a.output_tokens, b.output_tokens),
                 latency_s=round(a.latency_s + b.latency_s, 4))


# ----- reading an answer --------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> str:
    """The first complete JSON object in a model's answer (inside ``` fences or bare, prose around it
    ignored). Raises ValueError when there is none."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = body.find("{")
    if start < 0:
        raise ValueError("the answer holds no JSON object")
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(body)):
        char = body[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return body[start:index + 1]
    raise ValueError("the JSON object in the answer is not closed (cut off?)")


def describe_validation(error: ValidationError) -> str:
    """A validation error in a line or two: each problem with the field it is about."""
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ())) or "the object"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(problems)


def parse_answer(text: str, schema: type[T], check: Callable[[T], None] | None = None) -> T:
    """The answer as a `schema` instance; ValueError saying what is wrong otherwise."""
    raw = extract_json(text)
    try:
        value = schema.model_validate_json(raw)
    except ValidationError as exc:
        if any(item.get("type") == "json_invalid" for item in exc.errors()):
            raise ValueError(f"the JSON is not valid: {describe_validation(exc)}") from None
        raise ValueError(f"the JSON does not fit the {schema.__name__} schema: {describe_validation(exc)}") from None
    if check is not None:
        check(value)
    return value


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS] + "..."


# ----- the roles ------------------------------------------------------------------------------------------

class PromptedVLM:
    """A VLM (collabvr.backends.VLM, Critic and RubricJudge) made of a ChatModel and the shared prompts."""

    def __init__(self, model: ChatModel, info: BackendInfo) -> None:
        self.model = model
        self.info = info

    def plan(self, request: PlanRequest) -> VLMReply[Plan]:
        return self.ask(plan_prompt(request), request.seed)

    def verify(self, request: VerifyRequest) -> VLMReply[Verdict]:
        return self.ask(verify_prompt(request), request.seed)

    def route(self, request: RouteRequest) -> VLMReply[RouteDecision]:
        return self.ask(route_prompt(request), request.seed)

    def select(self, request: SelectRequest) -> VLMReply[Selection]:
        k = len(request.clips)
        if k == 0:
            raise BackendError("Pass@k selection needs at least one clip")

        def in_range(value: Selection) -> None:
            if value.best_index >= k:
                raise ValueError(f"best_index is {value.best_index}, but there are only {k} clips (0 to {k - 1})")

        return self.ask(select_prompt(request), request.seed, check=in_range)  # type: ignore[arg-type]

    def critique(self, request: CritiqueRequest) -> VLMReply[Critique]:
        k = len(request.clips)
        if k == 0:
            raise BackendError("a critique needs at least one clip")

        def in_range(value: Critique) -> None:
            if value.better_index >= k:
                raise ValueError(f"better_index is {value.better_index}, but there are only {k} clips (0 to {k - 1})")

        return self.ask(critique_prompt(request), request.seed, check=in_range)  # type: ignore[arg-type]

    def judge(self, request: JudgeRequest) -> VLMReply[RubricJudgement]:
        return self.ask(judge_prompt(request), request.seed)

    def ask(self, prompt: Prompt, seed: int, check: Callable[[BaseModel], None] | None = None) -> VLMReply:
        """One role call with one repair: the answer, or MalformedOutput with the cost of both calls."""
        turns = [Turn("user", list(prompt.parts))]
        first = self._complete(prompt, turns, seed, spent=None)
        try:
            return VLMReply(parse_answer(first.text, prompt.schema, check), usage=first.usage, raw=first.text)
        except ValueError as exc:
            problem = _clip(str(exc))
        turns += [Turn("model", [Text(first.text)]), Turn("user", [Text(repair_text(prompt.role, problem))])]
        second = self._complete(prompt, turns, seed, spent=first.usage)
        usage = add_usage(first.usage, second.usage)
        try:
            return VLMReply(parse_answer(second.text, prompt.schema, check), usage=usage, raw=second.text)
        except ValueError as exc:
            raise MalformedOutput(
                f"{self.info.name} gave a {prompt.role} answer that does not fit its schema twice (asked once more "
                f"with the error): {_clip(str(exc))}", raw=second.text[:4000], usage=usage) from None

    def _complete(self, prompt: Prompt, turns: list[Turn], seed: int, spent: Usage | None) -> ChatReply:
        """One model call; a failure carries what was already spent on this role call (the first answer)."""
        started = time.perf_counter()
        try:
            reply = self.model.complete(ChatRequest(prompt.role, prompt.system, list(turns), prompt.schema, seed))
        except BackendError as exc:
            own = exc.usage or Usage(calls=1, latency_s=round(time.perf_counter() - started, 4))
            exc.usage = add_usage(spent, own) if spent is not None else own
            raise
        if not reply.usage.latency_s:
            reply = replace(reply, usage=replace(reply.usage, latency_s=round(time.perf_counter() - started, 4)))
        return reply


def schema_json(schema: type[BaseModel]) -> dict:
    """The role's JSON schema with every $ref inlined (structured-output APIs take a self-contained one)."""
    document = schema.model_json_schema()
    definitions = document.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return json.loads(json.dumps(inline(document)))

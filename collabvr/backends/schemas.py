"""The JSON each VLM role answers with (DESIGN.md section 1): one pydantic model per role, the same schema
whichever backend (simulated, Gemini, a local transformers model) produced it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Plan(BaseModel):
    """The planner's answer: the next sub-action only."""

    model_config = ConfigDict(extra="ignore")

    observation: str
    remaining_goal: str
    task_complete: bool
    instruction: str = ""
    target_state: str = ""
    estimated_steps_remaining: int = Field(ge=0)

    @model_validator(mode="after")
    def _instruction_unless_complete(self) -> "Plan":
        if not self.task_complete and not self.instruction.strip():
            raise ValueError("instruction must be non-empty unless task_complete is true")
        return self


ErrorType = Literal["wrong_direction", "wrong_object", "wrong_action", "scene_collapse", "not_executed", "other"]


class Verdict(BaseModel):
    """The verifier's judgement of one clip: was THIS action executed (not: is the task done)."""

    model_config = ConfigDict(extra="ignore")

    verdict: Literal["accept", "reject"]
    action_executed: bool
    progress: Literal["none", "partial", "complete"]
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str
    suggestion: str = ""
    good_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    error_type: ErrorType | None = None

    @model_validator(mode="after")
    def _reject_has_good_fraction(self) -> "Verdict":
        if self.verdict == "reject" and self.good_fraction is None:
            raise ValueError("a reject must give good_fraction (share of the clip that was right)")
        return self


class RouteDecision(BaseModel):
    """The failure router's choice after M rejected attempts (paper appendix A.5)."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["regen", "split", "fallback"]
    estimated_steps: int | None = Field(default=None, ge=2, le=8)
    suggestion: str = ""
    reason: str

    @model_validator(mode="after")
    def _split_has_steps(self) -> "RouteDecision":
        if self.action == "split" and self.estimated_steps is None:
            raise ValueError("split must give estimated_steps (2 or more)")
        return self


class Selection(BaseModel):
    """Pass@k: which of k clips is best."""

    model_config = ConfigDict(extra="ignore")

    best_index: int = Field(ge=0)
    reason: str


class Critique(BaseModel):
    """A VideoTPO-style critic's answer: the strengths and weaknesses of a round's clips, the better one, and
    the task prompt rewritten for the next round (the whole prompt, not an appendix)."""

    model_config = ConfigDict(extra="ignore")

    better_index: int = Field(ge=0)
    critique: str
    prompt: str = Field(min_length=1)


class CriterionScore(BaseModel):
    """One criterion of a rubric, scored."""

    model_config = ConfigDict(extra="ignore")

    criterion: str
    score: float = Field(ge=0.0)
    max_score: float = Field(gt=0.0)
    reason: str

    @model_validator(mode="after")
    def _score_within_max(self) -> "CriterionScore":
        if self.score > self.max_score:
            raise ValueError(f"score {self.score:g} is above max_score {self.max_score:g}")
        return self


class RubricJudgement(BaseModel):
    """The rubric judge's scores of a finished video (benchmarks such as Gen-ViRe grade videos this way):
    one entry per criterion of the rubric, in its order."""

    model_config = ConfigDict(extra="ignore")

    criteria: list[CriterionScore] = Field(min_length=1)
    summary: str = ""

    @property
    def normalized_score(self) -> float:
        """Points earned over points possible, in [0, 1]."""
        return sum(c.score for c in self.criteria) / sum(c.max_score for c in self.criteria)

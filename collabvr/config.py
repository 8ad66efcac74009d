"""Budgets and knobs of one CollabVR session (DESIGN.md section 1), validated at the boundary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


Breakpoint = Literal["before_generate", "after_verify", "on_reject", "on_route"]
BREAKPOINTS: tuple[Breakpoint, ...] = ("before_generate", "after_verify", "on_reject", "on_route")


class LoopConfig(BaseModel):
    """The loop's budgets. Defaults are the paper's (N_max=3, M=3, 6 s then 3 s clips, threshold 0.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_max: int = Field(default=3, ge=1, le=12, description="planning steps at most (N_max)")
    m: int = Field(default=3, ge=1, le=10, description="attempts per step before routing (M)")
    first_step_seconds: float = Field(default=6.0, gt=0, le=60, description="clip length of step 1")
    later_seconds: float = Field(default=3.0, gt=0, le=60, description="clip length of later steps and partial regens")
    partial_regen_threshold: float = Field(default=0.2, ge=0, le=1, description="good_fraction above which a retry starts from the first failing frame")
    verifier_fps: float = Field(default=1.0, gt=0, le=30, description="frames per second of clip shown to the verifier (plus the last frame)")
    router: bool = Field(default=True, description="route (regen/split/fallback) after M rejections; off: propagate the best attempt")
    max_vgm_seconds: float | None = Field(default=None, gt=0, description="cap on seconds of video generated in the session")
    backend_retries: int = Field(default=1, ge=0, le=5, description="automatic retries of a failed backend call before waiting for a person")
    breakpoints: tuple[Breakpoint, ...] = ()

    @model_validator(mode="after")
    def _unique_breakpoints(self) -> "LoopConfig":
        if len(set(self.breakpoints)) != len(self.breakpoints):
            raise ValueError("breakpoints must not repeat")
        return self

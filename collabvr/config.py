"""Budgets and knobs of one CollabVR session (DESIGN.md section 1), validated at the boundary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


Breakpoint = Literal["before_generate", "after_verify", "on_reject", "on_route"]
# What a session runs: the CollabVR loop (its ablations are budgets and switches of it), or a baseline with
# the same backends and cost counting: "resample" (k clips of the raw task prompt, the VLM's selector picks
# one when k > 1: single inference is k = 1, Pass@k the rest) and "videotpo" (whole-video critique and
# prompt rewrite: rounds of clips, then one final clip). The rules of each are in collabvr/loop.py.
Method = Literal["collabvr", "resample", "videotpo"]
METHODS: tuple[Method, ...] = ("collabvr", "resample", "videotpo")
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
    method: Method = Field(default="collabvr", description="the loop, or a baseline: resample (single, Pass@k), videotpo")
    exact_steps: bool = Field(default=False, description="the fixed-N ablation: always N_max steps, never finished early by the planner")
    samples: int = Field(default=1, ge=1, le=16, description="resample: clips of the raw task prompt (k); the VLM selects when k > 1")
    tpo_rounds: int = Field(default=2, ge=1, le=8, description="videotpo: critique-and-rewrite rounds before the final clip")
    tpo_clips: int = Field(default=2, ge=1, le=8, description="videotpo: clips per round, critiqued together")

    @model_validator(mode="after")
    def _unique_breakpoints(self) -> "LoopConfig":
        if len(set(self.breakpoints)) != len(self.breakpoints):
            raise ValueError("breakpoints must not repeat")
        return self

"""Run a simulated session in-process, the way `python -m collabvr run` does."""

from __future__ import annotations

from pathlib import Path

from cli.run import run_one
from collabvr.config import LoopConfig
from collabvr.engine import Engine


def run_session(family: str, difficulty: str, seed: int, config: LoopConfig, out: Path,
                vgm_profile: str = "legacy", verifier_profile: str = "gemini-2.5-pro") -> Engine:
    engine, _ = run_one(family, difficulty, seed, config, out, vgm_profile, verifier_profile)
    return engine

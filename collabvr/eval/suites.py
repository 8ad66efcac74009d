"""What a benchmark runs its methods on: the simulated suite, or a folder of tasks in the VBVR-Bench layout.

- `sim_suite(seeds)`: every simulated family at both difficulties, each seed (SIMULATED; scored by the
  family's pixel test: a graded score and binary success).
- `folder_suite(root)`: every folder under `root` holding `first_frame.png` and `prompt.txt` (VBVR-Bench
  lays them out as `<split>/<task>/<index>/`), with an optional `final_frame.png` (the reference end state)
  and `ground_truth.mp4` (every clip is then as long as it, as the paper ran VBVR-Bench) and an optional
  `rubric.txt`. Such tasks have no pixel test: the rubric judge (a real VLM) scores the final video.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

SIM_FAMILIES = ("maze", "blocks", "shapes")
SIM_DIFFICULTIES = ("easy", "hard")
MAX_SEEDS = 100_000


@dataclass(frozen=True)
class Sample:
    """One task of a suite. `group` and `level` are what results are broken down by (a simulated task's
    family and difficulty; a folder task's task name and split)."""

    source: Literal["sim", "folder"]
    group: str
    level: str
    seed: int
    folder: str | None = None  # a folder task: its directory

    @property
    def key(self) -> str:
        """The sample's name within its suite, e.g. "maze/hard/3"."""
        if self.source == "sim":
            return f"{self.group}/{self.level}/{self.seed}"
        return f"{self.level}/{self.group}/{self.seed}" if self.level else f"{self.group}/{self.seed}"


def parse_seeds(text: str) -> list[int]:
    """"0-19", "3", "0,4,10-12" -> the seeds in order, each once; ValueError for anything else."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ValueError(f"seeds are like 0-19 or 0,3,5-7, not {text!r}")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise ValueError(f"a seed range goes up, not {part!r}")
        if high - low + 1 + len(seeds) > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds")
        seeds.extend(s for s in range(low, high + 1) if s not in seeds)
    return seeds


def sim_suite(seeds: Sequence[int], families: Sequence[str] = SIM_FAMILIES,
              difficulties: Sequence[str] = SIM_DIFFICULTIES) -> list[Sample]:
    """The simulated suite: every family x difficulty x seed."""
    for family in families:
        if family not in SIM_FAMILIES:
            raise ValueError(f"unknown task family {family!r}; known: {', '.join(SIM_FAMILIES)}")
    for difficulty in difficulties:
        if difficulty not in SIM_DIFFICULTIES:
            raise ValueError(f"unknown difficulty {difficulty!r}; known: {', '.join(SIM_DIFFICULTIES)}")
    return [Sample("sim", f, d, int(s)) for f in families for d in difficulties for s in seeds]


@dataclass(frozen=True)
class FolderTask:
    """What one folder task holds, read from its files."""

    prompt: str
    first_frame: Path
    final_frame: Path | None
    ground_truth: Path | None
    rubric: str | None


def folder_suite(root: Path | str) -> list[Sample]:
    """Every task folder under `root` (VBVR-Bench layout), sorted; ValueError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"the suite folder {root} does not exist")
    found = sorted(p.parent for p in root.rglob("first_frame.png") if (p.parent / "prompt.txt").is_file())
    if not found:
        raise ValueError(f"{root} holds no task folder (a folder with first_frame.png and prompt.txt)")
    samples = []
    for folder in found:
        parts = folder.relative_to(root).parts
        index = parts[-1] if parts else folder.name
        seed = int(index) if index.isdigit() else len(samples)
        group = parts[-2] if len(parts) >= 2 else (parts[-1] if parts else root.name)
        level = parts[-3] if len(parts) >= 3 else ""
        samples.append(Sample("folder", group, level, seed, folder=str(folder.resolve())))
    return samples


def read_folder_task(sample: Sample) -> FolderTask:
    """The files of a folder task; ValueError saying which one is missing or empty."""
    if sample.folder is None:
        raise ValueError(f"{sample.key} is not a folder task")
    folder = Path(sample.folder)
    prompt = (folder / "prompt.txt").read_text(encoding="utf-8").strip()
    if not prompt:
        raise ValueError(f"{folder / 'prompt.txt'} is empty")

    def optional(name: str) -> Path | None:
        path = folder / name
        return path if path.is_file() else None

    rubric_path = optional("rubric.txt")
    rubric = rubric_path.read_text(encoding="utf-8").strip() if rubric_path else None
    return FolderTask(prompt=prompt, first_frame=folder / "first_frame.png", final_frame=optional("final_frame.png"),
                      ground_truth=optional("ground_truth.mp4"), rubric=rubric or None)


def default_rubric(task: FolderTask) -> str:
    """The rubric a folder task is judged by when it brings none: the task done, the end state right (against
    the reference final frame, where there is one), the scene intact and the camera still."""
    lines = [f"1. Task completion (0 or 1): the video carries out the task: {task.prompt}"]
    if task.final_frame is not None:
        lines.append("2. Final state (0 or 1): the video's last frame shows the same end state as the reference "
                     "final frame (the same objects in the same places, colours and sizes).")
    lines.append(f"{len(lines) + 1}. Scene integrity (0 or 1): no object vanishes, doubles or changes identity, "
                 "nothing passes through anything solid, and the camera stays still.")
    return "\n".join(lines)

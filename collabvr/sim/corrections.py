"""How the simulated VGM reads an evolved prompt: the instruction, then the corrections appended to it.

Prompt evolution appends the verifier's suggestion to the instruction (DESIGN.md section 1, rule 5). The
simulated verifier starts every suggestion with "Correction:"; a person's suggestion may not. The
simulated VGM (profile `paper`) reads both parts:

- the instruction (the text before the first mark) says *what* to do; it is executed once, even when a
  correction restates it (a phrase written twice is not executed twice);
- each correction says *how*: a correction that names an error and its fix ("keep the blue disc still",
  "must not vanish or be doubled", "do not turn back", "respect the scene's rules") makes that error less
  likely on the next attempt; a correction that names no error ("Make the motion clearer and steadier.")
  does not help and distracts the model.

The vocabulary below is the one place where the error names of the simulated world meet English; it
covers the simulated verifier's phrasing and the plain phrasing a person would use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# EVOLVE appends the verifier's suggestion to the instruction. The simulated VLM starts every suggestion
# with this mark, so that the instruction and its corrections can be told apart.
CORRECTION_MARK = "Correction:"

# Errors a correction can name, as the simulated VGM's failure modes. "shortcut" is the raw task prompt
# executed straight through the world's rules (a maze wall); "stop_early" covers "nothing happened".
NAMEABLE_ERRORS = ("wrong_direction", "wrong_object", "stop_early", "scene_collapse", "shortcut")

_ERROR_PHRASES: dict[str, tuple[str, ...]] = {
    "wrong_direction": (
        r"\bfollow exactly\b", r"\bnot another one\b", r"\bturn(?:s|ed)? back\b", r"\bkeep moving forward\b",
        r"\bwrong (?:direction|way|place|pad|colou?r|size|turn)\b", r"\bother direction\b",
        r"\bnot (?:up|down|left|right)\b", r"\brespect the scene'?s rules\b", r"\bcross(?:es|ed|ing)? (?:a |the |any )?(?:black )?walls?\b",
    ),
    "wrong_object": (
        r"\bmove only the\b", r"\bkeep the [\w ]+? still\b", r"\bwrong (?:object|block|disc|shape)\b",
        r"\bonly the [\w ]+? (?:may|should) move\b", r"\bleave the [\w ]+? (?:alone|as it is)\b",
    ),
    "stop_early": (
        r"\bshow the motion\b", r"\ball the way\b", r"\bdo not stop\b", r"\bdon'?t stop\b", r"\bfinish the\b",
        r"\bcomplete the (?:motion|move|action)\b",
    ),
    "scene_collapse": (
        r"\bvanish", r"\bdoubled\b", r"\bduplicat", r"\bdisappear", r"\bscene intact\b",
        r"\bkeep every object in place\b",
    ),
    "shortcut": (
        r"\brespect the scene'?s rules\b", r"\bcross(?:es|ed|ing)? (?:a |the |any )?(?:black )?walls?\b",
        r"\bthrough (?:a |the )?walls?\b", r"\baround the walls?\b",
    ),
}
_PATTERNS = {error: re.compile("|".join(phrases), re.IGNORECASE) for error, phrases in _ERROR_PHRASES.items()}


@dataclass(frozen=True)
class ReadPrompt:
    """An evolved prompt as the simulated VGM reads it.

    `named`: the errors that at least one correction names (each counts once, however often it is
    repeated). `vague`: whether some correction names no error at all.
    """

    instruction: str
    corrections: tuple[str, ...] = ()
    named: frozenset[str] = frozenset()
    vague: bool = False


def instruction_part(text: str) -> str:
    """The instruction in a prompt, without the corrections that prompt evolution appended to it."""
    index = text.lower().find(CORRECTION_MARK.lower())
    return text if index < 0 else text[:index].rstrip()


def correction_parts(text: str) -> tuple[str, ...]:
    """The corrections appended to a prompt, each without its mark, in the order they were appended."""
    parts = re.split(re.escape(CORRECTION_MARK), text, flags=re.IGNORECASE)[1:]
    return tuple(p.strip() for p in parts if p.strip())


def named_errors(correction: str) -> frozenset[str]:
    """The errors one correction names (empty for a vague one)."""
    return frozenset(error for error, pattern in _PATTERNS.items() if pattern.search(correction))


def read_prompt(text: str) -> ReadPrompt:
    """Split a prompt into its instruction and its corrections, and say which errors they name."""
    corrections = correction_parts(text)
    named: set[str] = set()
    vague = False
    for correction in corrections:
        found = named_errors(correction)
        named |= found
        vague = vague or not found
    return ReadPrompt(instruction_part(text), corrections, frozenset(named), vague)

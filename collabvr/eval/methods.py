"""The methods a benchmark compares, by name: each is a LoopConfig (collabvr/loop.py holds the rules), so
every method runs through the same engine, backends and cost counting, and every sample is a session.

    single        the raw task prompt, one clip of the first-step length (6 s)
    pass@K        K such clips with seeds of their own; the VLM's selector picks one (K = 2, 4, ...)
    videotpo      2 rounds of 2 clips, each round critiqued and the prompt rewritten, then a final clip
    collabvr      the full method: N_max = 3, M = 3, router on
    plan-only     planning only: M = 1, router off
    verify-only   verification only: N_max = 1, router off (no split can add steps)
    fixed-n       always N_max steps: the planner may not finish early
    no-router     the full method with the router off (the best attempt is propagated after M rejections)

A loop method takes budget overrides after colons: `verify-only:m=5`, `collabvr:n=4:m=2` (n = N_max).
Clip lengths come from the suite (the simulated suite uses the paper's 6 s then 3 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collabvr.config import LoopConfig


DEFAULT_METHODS = ("single", "pass@2", "pass@4", "videotpo", "collabvr", "plan-only", "verify-only", "fixed-n",
                   "no-router")
LOOP_METHODS: dict[str, dict[str, Any]] = {
    "collabvr": {},
    "plan-only": {"m": 1, "router": False},
    "verify-only": {"n_max": 1, "router": False},
    "fixed-n": {"exact_steps": True},
    "no-router": {"router": False},
}
OVERRIDES = {"m": "m", "n": "n_max"}
MAX_K = 16


@dataclass(frozen=True)
class Method:
    """A named method: the LoopConfig fields it sets on the suite's base config."""

    name: str
    updates: dict[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""

    def config(self, base: LoopConfig | None = None) -> LoopConfig:
        """The method's config on `base` (the suite's clip lengths); validated, so bad budgets raise."""
        base = base or LoopConfig()
        return LoopConfig.model_validate({**base.model_dump(), **self.updates})

    @property
    def slug(self) -> str:
        """The name as session ids allow it: "pass@4" -> "pass4", "verify-only:m=5" -> "verify-only-m5"."""
        return self.name.replace("@", "").replace(":", "-").replace("=", "")


def parse_method(text: str) -> Method:
    """A method by name (see the module docstring); ValueError naming the known ones otherwise."""
    name = text.strip().lower()
    if not name:
        raise ValueError("a method name is empty")
    if name == "single":
        return Method("single", {"method": "resample", "samples": 1}, "single inference: one clip of the raw prompt")
    if name.startswith("pass@"):
        k_text = name[len("pass@"):]
        if not k_text.isdigit() or not 1 <= int(k_text) <= MAX_K:
            raise ValueError(f"{text!r}: Pass@k needs k between 1 and {MAX_K}, e.g. pass@4")
        k = int(k_text)
        return Method(f"pass@{k}", {"method": "resample", "samples": k},
                      f"Pass@{k}: {k} clips of the raw prompt, the VLM's selector picks one")
    if name == "videotpo":
        return Method("videotpo", {"method": "videotpo", "tpo_rounds": 2, "tpo_clips": 2},
                      "VideoTPO: 2 rounds of 2 clips, critique and prompt rewrite, then a final clip")
    base, *overrides = name.split(":")
    if base not in LOOP_METHODS:
        known = ", ".join(("single", "pass@K", "videotpo", *LOOP_METHODS))
        raise ValueError(f"unknown method {text!r}; known: {known}")
    updates = dict(LOOP_METHODS[base])
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in OVERRIDES or not value.isdigit():
            raise ValueError(f"{text!r}: a budget override is m=<attempts> or n=<steps>, not {item!r}")
        updates[OVERRIDES[key]] = int(value)
    canonical = ":".join([base, *(f"{k}={updates[OVERRIDES[k]]}" for k in sorted({i.partition('=')[0] for i in overrides}))])
    method = Method(canonical, updates, _describe(base, updates))
    method.config()  # refuse budgets LoopConfig refuses, now rather than in a worker
    return method


def parse_methods(text: str) -> list[Method]:
    """A comma-separated list of methods, in order, each once ("all" is DEFAULT_METHODS)."""
    names = [n for n in (p.strip() for p in text.split(",")) if n]
    if not names:
        raise ValueError("no method given (e.g. --methods single,pass@4,videotpo,collabvr)")
    if names == ["all"]:
        names = list(DEFAULT_METHODS)
    methods: list[Method] = []
    for name in names:
        method = parse_method(name)
        if method.name in [m.name for m in methods]:
            raise ValueError(f"method {method.name!r} is listed twice")
        methods.append(method)
    return methods


def _describe(base: str, updates: dict[str, Any]) -> str:
    what = {"collabvr": "the full method", "plan-only": "planning only", "verify-only": "verification only",
            "fixed-n": "always N_max steps", "no-router": "the router off"}[base]
    budget = ", ".join(f"{k} = {v}" for k, v in updates.items() if k in ("n_max", "m"))
    return f"{what}{f' ({budget})' if budget else ''}"

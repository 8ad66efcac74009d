"""requirements.txt lists every third-party package the code imports (a fresh install must run it all)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"collabvr", "storage", "ui", "cli", "app", "bench"}
FOLDERS = ("collabvr", "storage", "ui", "cli", "bench", "tests")
# Imported only where installed (each backend says in its availability line when one is missing); named in
# requirements.txt's comments: spaces (Hugging Face ZeroGPU, present on Spaces), cosmos_guardrail (NVIDIA's
# guardrail, needed by Cosmos on a GPU host, downloads its own models).
OPTIONAL = {"spaces", "cosmos_guardrail"}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _required() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_normalised(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]))
    return names


def _imported_top_level_names() -> dict[str, str]:
    """Top-level module -> a file that imports it, for every absolute import outside the standard library."""
    local = FIRST_PARTY | {p.stem for p in (ROOT / "tests").rglob("*.py")}
    found: dict[str, str] = {}
    files = [ROOT / "app.py"] + [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_in_requirements():
    distributions = packages_distributions()
    required = _required()
    missing = []
    for module, where in sorted(_imported_top_level_names().items()):
        if module in OPTIONAL:
            continue
        provided_by = {_normalised(d) for d in distributions.get(module, [module])}
        if not provided_by & required:
            missing.append(f"{module} (imported by {where}; install name {', '.join(sorted(provided_by))})")
    assert not missing, "requirements.txt lacks: " + "; ".join(missing)


def test_optional_packages_are_named_in_requirements():
    text = (ROOT / "requirements.txt").read_text()
    comments = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert all(name.replace("_", "-") in comments or name in comments for name in OPTIONAL)

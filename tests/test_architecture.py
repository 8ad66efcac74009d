"""The house rules about who may import what, checked on the source with `ast`.

- collabvr/ (the engine) imports neither gradio nor sqlite3 nor sqlite_utils nor storage, at module level
  or inside a function; the one exception is collabvr/__main__.py, the command line's composition root,
  which imports storage inside a function.
- storage/ never imports gradio.
- ui/ (when it exists) never imports the simulated backends directly (collabvr.sim.vgm, .vlm, .latency, or
  SimVGM/SimVLM from collabvr.sim): it builds backends through collabvr.backends.registry. Importing the simulated
  *task catalog* (collabvr.sim.FAMILIES, make_task, ...) is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
ENGINE_FORBIDDEN = ("gradio", "sqlite3", "sqlite_utils", "storage")
COMPOSITION_ROOT = ROOT / "collabvr" / "__main__.py"
SIM_BACKENDS = ("collabvr.sim.vgm", "collabvr.sim.vlm", "collabvr.sim.latency", "collabvr.sim.SimVGM",
                "collabvr.sim.SimVLM")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, whether the import sits at module level) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against the file's package
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                found.append((module, top))
                found.extend((f"{module}.{alias.name}", top) for alias in child.names)
            inside = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inside)

    visit(tree, True)
    return found


def _offending(module: str, forbidden: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in forbidden)


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_import_finder_sees_module_and_function_level_imports():
    found = _imports(COMPOSITION_ROOT)
    assert ("collabvr.cli", True) in found and ("storage.cli", False) in found


@pytest.mark.parametrize("path", _python_files("collabvr"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_imports_no_ui_no_sqlite_and_no_storage(path):
    bad = []
    for module, top in _imports(path):
        if not _offending(module, ENGINE_FORBIDDEN):
            continue
        if path == COMPOSITION_ROOT and not top and _offending(module, ("storage",)):
            continue  # the composition root may plug storage in, lazily
        bad.append(f"{module} ({'module level' if top else 'inside a function'})")
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


def test_the_composition_root_imports_storage_only_inside_a_function():
    top_level = [m for m, top in _imports(COMPOSITION_ROOT) if top and _offending(m, ("storage",))]
    assert top_level == []


@pytest.mark.parametrize("path", _python_files("storage"), ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_never_imports_gradio(path):
    bad = [m for m, _ in _imports(path) if _offending(m, ("gradio",))]
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


def test_ui_uses_backends_only_through_the_registry():
    files = _python_files("ui") if (ROOT / "ui").is_dir() else []
    if not files:
        pytest.skip("ui/ does not exist yet")
    bad = [f"{path.relative_to(ROOT)}: {module}" for path in files for module, _ in _imports(path)
           if _offending(module, SIM_BACKENDS)]
    assert not bad, "ui/ imports simulated backends directly: " + "; ".join(bad)

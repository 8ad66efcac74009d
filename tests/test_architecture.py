"""The house rules about who may import what (DESIGN.md sections 2 and 3), checked on the source with `ast`.

- collabvr/ (the engine) imports neither gradio nor sqlite3 nor sqlite_utils, nor storage/, ui/ or cli/,
  at module level or inside a function; the one exception is collabvr/__main__.py, which hands over to
  cli/ from inside its function.
- storage/ imports collabvr only: never gradio, ui/ or cli/.
- ui/ imports collabvr and storage, never cli/; it never reaches a backend itself: no simulated backend
  module (collabvr.sim.vgm, .vlm, .latency, SimVGM/SimVLM) and no registry call that builds one
  (build_vlm, build_vgm, backends_for). Importing the simulated *task catalog* (collabvr.sim.FAMILIES,
  make_task, ...) is allowed.
- cli/ and app.py are composition roots: nothing else imports them (ui/ and storage/ never do).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
ENGINE_FORBIDDEN = ("gradio", "sqlite3", "sqlite_utils", "storage", "ui", "cli", "app")
STORAGE_FORBIDDEN = ("gradio", "ui", "cli", "app")
UI_FORBIDDEN = ("cli", "app")
HAND_OVER = ROOT / "collabvr" / "__main__.py"
SIM_BACKENDS = ("collabvr.sim.vgm", "collabvr.sim.vlm", "collabvr.sim.latency", "collabvr.sim.SimVGM",
                "collabvr.sim.SimVLM")
BACKEND_BUILDERS = ("build_vlm", "build_vgm", "backends_for")


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


def _names_used(path: Path) -> set[str]:
    """Every attribute and bare name the file mentions (e.g. `registry.build_vlm` gives "build_vlm")."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return ({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def _offending(module: str, forbidden: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in forbidden)


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_import_finder_sees_module_and_function_level_imports():
    found = _imports(HAND_OVER)
    assert ("cli", False) in found and ("cli.main", False) in found
    assert ("sys", True) in found


def test_the_import_finder_resolves_relative_imports(tmp_path, monkeypatch):
    package = tmp_path / "pkg" / "sub"
    package.mkdir(parents=True)
    (package / "mod.py").write_text("from .. import storage\nfrom . import sibling\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = _imports(package / "mod.py")
    assert ("pkg.storage", True) in found and ("pkg.sub.sibling", True) in found


@pytest.mark.parametrize("path", _python_files("collabvr"), ids=_ids)
def test_the_engine_imports_no_ui_no_sqlite_no_storage_and_no_command_line(path):
    bad = []
    for module, top in _imports(path):
        if not _offending(module, ENGINE_FORBIDDEN):
            continue
        if path == HAND_OVER and not top and _offending(module, ("cli",)):
            continue  # `python -m collabvr` hands over to cli/, lazily
        bad.append(f"{module} ({'module level' if top else 'inside a function'})")
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


def test_python_m_collabvr_only_hands_over_to_the_command_line():
    top_level = [m for m, top in _imports(HAND_OVER) if top and m not in ("__future__", "__future__.annotations")]
    assert all(_offending(m, ("sys", "typing")) for m in top_level), top_level


@pytest.mark.parametrize("path", _python_files("storage"), ids=_ids)
def test_storage_imports_neither_gradio_nor_the_ui_nor_the_command_line(path):
    bad = [m for m, _ in _imports(path) if _offending(m, STORAGE_FORBIDDEN)]
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


@pytest.mark.parametrize("path", _python_files("ui"), ids=_ids)
def test_ui_never_imports_the_command_line_or_a_simulated_backend(path):
    bad = [m for m, _ in _imports(path) if _offending(m, UI_FORBIDDEN + SIM_BACKENDS)]
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


@pytest.mark.parametrize("path", _python_files("ui"), ids=_ids)
def test_ui_never_builds_a_backend_itself(path):
    used = sorted(_names_used(path) & set(BACKEND_BUILDERS))
    assert not used, f"{path.relative_to(ROOT)} builds backends itself ({', '.join(used)}); ask the Studio"


def test_every_package_the_rules_name_exists():
    # A rule over a folder that is gone checks nothing; fail loudly instead of passing on zero files.
    for folder in ("collabvr", "storage", "ui", "cli"):
        assert _python_files(folder), f"{folder}/ has no Python files"


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## How the code is laid out", 1)[1]
    return section.split("```", 2)[1]


def test_the_readme_layout_names_every_module_and_only_modules_that_exist():
    block = _layout_block()
    named = set(re.findall(r"[\w/]+\.(?:py|css|js|html)\b", block))
    existing = {p.name for p in ROOT.rglob("*") if p.suffix in (".py", ".css", ".js", ".html") and ".venv" not in p.parts}
    assert {Path(n).name for n in named} <= existing, "the README names files that do not exist"
    modules = [p for folder in ("cli", "collabvr", "storage", "ui") for p in (ROOT / folder).rglob("*.py")
               if p.name != "__init__.py" and "sim" not in p.relative_to(ROOT).parts[1:2]]
    # The panel handlers are listed by panel name, (new_session, control, ...); every other module by file.
    unnamed = sorted(str(p.relative_to(ROOT)) for p in modules
                     if p.name not in block and not (p.parent.name == "handlers" and p.stem in block))
    assert not unnamed, f"the README's layout does not name {', '.join(unnamed)}"

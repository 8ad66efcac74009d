"""Cheap probes behind the honest availability lines: is a package installed, is there a CUDA device, are a
model's weights in the Hugging Face cache, is an API key set.

Nothing here imports torch, diffusers, transformers or google-genai on a machine where the answer can be
read without them, so listing the backends stays fast (the app lists them when it starts). Each probe
returns "" when all is well, else a sentence a person can act on.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Sequence

API_KEY_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def missing_packages(*modules: str) -> list[str]:
    """The modules (import names) of `modules` that are not installed."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def packages_problem(*modules: str) -> str:
    missing = missing_packages(*modules)
    if not missing:
        return ""
    names = {"cosmos_guardrail": "cosmos_guardrail", "google": "google-genai"}
    listed = " ".join(names.get(m, m) for m in missing)
    return f"missing Python package{'s' if len(missing) > 1 else ''} {', '.join(missing)} (pip install {listed})"


@functools.lru_cache(maxsize=1)
def cuda_problem() -> str:
    """Why this process cannot use a CUDA GPU, or "" if it can. A CPU-only torch build is recognised from
    its version string without importing torch; otherwise torch is asked (once per process)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    if version.endswith("+cpu"):
        return f"no CUDA device: this torch ({version}) is a CPU-only build; run on a GPU machine with a CUDA build of torch"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device visible to torch on this machine"
    return ""


def torchvision_problem() -> str:
    if importlib.util.find_spec("torchvision") is None:
        return "needs torchvision on this host (pip install a torchvision that matches the installed torch)"
    return ""


def fetch_command(repo_id: str, revision: str | None = None) -> str:
    """The command that downloads a model into the Hugging Face cache (run it once, with network)."""
    return f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")


def cached_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """The path of `filename` of `repo_id` in the local Hugging Face cache, or None (never downloads)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, revision=revision)
    return Path(found) if isinstance(found, str) else None


def folder_problem(path: str | Path, marker: str) -> str:
    """"" if `path` is a saved model (a folder holding `marker`, e.g. model_index.json), else what is wrong."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return f"no model folder at {folder}"
    if not (folder / marker).is_file():
        return f"{folder} is not a saved model: it has no {marker}"
    return ""


def hub_cache_problem(repo_id: str, marker: str, revision: str | None = None) -> str:
    """"" if `marker` of `repo_id` is in the Hugging Face cache, else the command that fetches the weights."""
    if cached_file(repo_id, marker, revision) is None:
        return (f"weights of {repo_id} are not in the Hugging Face cache; fetch them with: "
                f"{fetch_command(repo_id, revision)}")
    return ""


def api_key(names: Sequence[str] = API_KEY_ENV) -> str | None:
    """The first API key set among the environment variables `names` (the key itself is never logged)."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def api_key_problem(names: Sequence[str] = API_KEY_ENV) -> str:
    if api_key(names):
        return ""
    return f"no API key: set {' or '.join(names)} (from https://aistudio.google.com/apikey)"


def join(*problems: str) -> str:
    """All the problems that apply, so a person can fix them in one go."""
    return "; ".join(p for p in problems if p)

"""Hugging Face ZeroGPU: on a Space with a ZeroGPU card, a function that uses the GPU must be wrapped with
`spaces.GPU`, which attaches a GPU for the duration of the call. Elsewhere the `spaces` package is absent and
the wrapper changes nothing."""

from __future__ import annotations

import importlib.util
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def available() -> bool:
    return importlib.util.find_spec("spaces") is not None


def gpu(function: F, duration_s: int = 300) -> F:
    """`function` wrapped with spaces.GPU(duration=duration_s) when the `spaces` package is importable."""
    if not available():
        return function
    import spaces

    return spaces.GPU(duration=duration_s)(function)  # type: ignore[return-value]

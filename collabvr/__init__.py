"""CollabVR Studio engine: the collaborative video reasoning loop, its backends and its simulated world.

This package imports neither gradio nor sqlite; storage and UI live in sibling packages.
"""

__version__ = "0.1.0"

"""Pieces every panel uses: the message line under a panel's buttons, and the hints that explain the paper's
terms (N_max, M, VLM, VGM, D1-D3, SSIM) where a person first meets them."""

from __future__ import annotations

import gradio as gr

from collabvr.decisions import MAX_NAME_CHARS, MAX_PROMPT_CHARS, MAX_TEXT_CHARS


def limit(chars: int) -> str:
    """The stated limit of a text box. Boxes carry no browser-side maxlength, which would cut a pasted text
    without a word: a longer text reaches the server and is refused there with the limit named."""
    return f"at most {chars:,} characters; a longer text is refused, never cut"


PROMPT_LIMIT, TEXT_LIMIT, NAME_LIMIT = limit(MAX_PROMPT_CHARS), limit(MAX_TEXT_CHARS), limit(MAX_NAME_CHARS)


HINTS = {
    "n_max": "most planning steps (paper: 3)",
    "m": "tries per step (paper: 3)",
    "vlm": "vision-language model: plans each step, verifies each clip, routes failures",
    "vgm": "video generation model: turns the current frame and the instruction into a clip",
    "first_seconds": "step 1 and fallback clips",
    "later_seconds": "later steps and regens",
    "latency": "per simulated call (0: fast)",
    "d1": "D1: how many steps the whole task really needs, in your judgement",
}

ANNOTATION_LEGEND = ("**D1** plan depth: the steps the task needs (whole session) · "
                     "**D2** your own verdict on the picked attempt, compared with the VLM's · "
                     "**D3** how useful its suggestion was (1 not, 3 very)")


def message_box(elem_id: str) -> gr.Textbox:
    """A panel's message ("✔ done ..." or "⚠ why not ..."). A read-only text box, not Markdown: a message
    repeats what a person typed (a name, a note), and a text box shows that as text, never as markup,
    while the API still returns the plain message."""
    # The blank placeholder lets the stylesheet fold the box away while it has nothing to say.
    return gr.Textbox("", show_label=False, container=False, interactive=False, lines=1, max_lines=8,
                      placeholder=" ", elem_id=elem_id, elem_classes=["message"])

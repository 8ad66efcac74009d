"""The session's status line and controls (step, run, pause, stop, breakpoints), the final video of a
finished session, and the timeline."""

from __future__ import annotations

import gradio as gr

from collabvr.config import BREAKPOINTS
from ui import handlers, render
from ui.widgets import message_box


def create_control() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    c["status"] = gr.HTML(render.empty_status(), elem_id="status-line")
    with gr.Row(equal_height=False, elem_id="controls"):
        c["step"] = gr.Button("Step", elem_id="btn-step", min_width=70, scale=0)
        c["run"] = gr.Button("Run", variant="primary", elem_id="btn-run", min_width=70, scale=0)
        c["pause"] = gr.Button("Pause", elem_id="btn-pause", min_width=70, scale=0)
        c["stop"] = gr.Button("Stop", variant="stop", elem_id="btn-stop", min_width=70, scale=0)
        c["breakpoints"] = gr.CheckboxGroup(
            [(handlers.BREAKPOINT_LABELS[b], b) for b in BREAKPOINTS], value=[], label="Breakpoints",
            elem_id="breakpoints", scale=3, min_width=240)
    c["message"] = message_box("control-message")
    return c


def create_final_video() -> gr.Video:
    """Shown above the timeline once the open session has finished (hidden before)."""
    return gr.Video(label="Final video: the accepted clips, joined", interactive=False, height=300,
                    visible=False, elem_id="final-video")


def create_timeline() -> gr.HTML:
    return gr.HTML(render.empty_timeline(), elem_id="timeline")

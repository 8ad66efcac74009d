"""People's decisions on the current step: flip a verdict (the panel names the attempt it acts on before a
decision is made), edit the next action, route it (regen from a chosen frame, split, fallback); and
forking from a past step."""

from __future__ import annotations

import gradio as gr

from ui import render
from ui.widgets import PROMPT_LIMIT, TEXT_LIMIT, message_box


def create_decisions() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    with gr.Accordion("Decide on the current step", open=True, elem_id="decide-panel"):
        c["attempt"] = gr.Dropdown([], value=None, label="Attempt",
                                   info="follows the attempt the loop is on; pick another to decide on it",
                                   allow_custom_value=True, elem_id="decision-attempt")
        c["focus"] = gr.HTML(render.decision_focus_empty(), elem_id="decision-focus")
        c["reason"] = gr.Textbox(label="Reason", lines=1, info=TEXT_LIMIT, elem_id="override-reason")
        c["suggestion"] = gr.Textbox(label="Suggestion for the next prompt (optional)", lines=1, info=TEXT_LIMIT,
                                     elem_id="override-suggestion")
        with gr.Row():
            c["accept"] = gr.Button("accept", elem_id="btn-override-accept", min_width=60)
            c["reject"] = gr.Button("reject", variant="stop", elem_id="btn-override-reject", min_width=60)
        c["next_action"] = gr.Textbox(label="Next action (the instruction the next clip uses)", lines=3,
                                      info=PROMPT_LIMIT, elem_id="next-action")
        c["save_action"] = gr.Button("Save action", elem_id="btn-save-action")
        with gr.Accordion("Route: regen from a frame, split, fallback", open=False, elem_id="route-panel"):
            c["frame"] = gr.Slider(0, 999, value=0, step=1, label="Regenerate from frame",
                                   info="the verifier's first failing frame is picked for you", elem_id="regen-frame")
            c["preview"] = gr.Image(None, label="That frame", interactive=False, height=140, buttons=[],
                                    elem_id="regen-preview")
            c["regen"] = gr.Button("Regen from this frame", elem_id="btn-regen")
            with gr.Row():
                c["split_steps"] = gr.Number(2, precision=0, minimum=2, maximum=8, label="Sub-steps",
                                             elem_id="split-steps", min_width=80)
                c["split"] = gr.Button("Split", elem_id="btn-split", min_width=80)
            c["fallback"] = gr.Button("Fallback (whole remaining task)", elem_id="btn-fallback")
        c["message"] = message_box("decision-message")
    with gr.Accordion("Fork from a past step", open=False, elem_id="fork-panel"):
        c["fork_step"] = gr.Dropdown([], value=None, label="Step", allow_custom_value=True, elem_id="fork-step")
        c["fork"] = gr.Button("Fork from here", elem_id="btn-fork")
    return c

"""Frame-accurate review of a clip, under the timeline: the attempts of its step side by side (each player steps
a frame, plays at 0.25x-2x and jumps to its marks), the exact frame the server decodes, jumps to the first
failing frame and to where new frames start, and a note anchored at the frame."""

from __future__ import annotations

import gradio as gr

from ui.widgets import TEXT_LIMIT, message_box


def create_review() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    c["attempt"] = gr.Dropdown([], value=None, label="Attempt to review", elem_id="review-attempt")
    c["compare"] = gr.HTML(elem_id="review-compare")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=260):
            c["frame"] = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="review-frame")
            with gr.Row(elem_id="review-buttons"):
                c["prev"] = gr.Button("◀ frame", elem_id="btn-frame-prev", min_width=60)
                c["next"] = gr.Button("frame ▶", elem_id="btn-frame-next", min_width=60)
                c["failing"] = gr.Button("first failing frame", elem_id="btn-jump-failing", min_width=100)
                c["boundary"] = gr.Button("new frames start", elem_id="btn-jump-boundary", min_width=100)
            c["info"] = gr.HTML(elem_id="review-info")
            c["note"] = gr.Textbox(label="Note at this frame", lines=2, info=TEXT_LIMIT, elem_id="review-note")
            c["note_save"] = gr.Button("Save the note at this frame", elem_id="btn-review-note")
            c["message"] = message_box("review-message")
        with gr.Column(scale=1, min_width=200):
            c["image"] = gr.Image(label="The exact frame", interactive=False, elem_id="review-image", height=260)
    return c

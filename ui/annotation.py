"""Reliability labels (D1 plan depth, D2 human verdict, D3 suggestion rating, notes) with keyboard
shortcuts, and the human-vs-VLM agreement figures."""

from __future__ import annotations

import gradio as gr

from ui import handlers
from ui.widgets import ANNOTATION_LEGEND, HINTS, TEXT_LIMIT, message_box


SHORTCUTS = """
| key | does |
|---|---|
| ← / → | previous / next attempt |
| a / r | D2: accept / reject this attempt |
| 1 / 2 / 3 | D3: rate this attempt's suggestion |
| ? | show or hide this sheet |

Shortcuts are ignored while you type in a text box.
"""


def create_annotation() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    with gr.Accordion("Annotate", open=True, elem_id="annotate-panel"):
        gr.Markdown(ANNOTATION_LEGEND, elem_id="annotation-legend")
        with gr.Row():
            c["prev"] = gr.Button("◀", elem_id="btn-prev-attempt", min_width=40, scale=0)
            c["target"] = gr.Dropdown([], value=None, label="Attempt", allow_custom_value=True,
                                      elem_id="annot-target", scale=2)
            c["next"] = gr.Button("▶", elem_id="btn-next-attempt", min_width=40, scale=0)
        with gr.Row():
            c["d2_accept"] = gr.Button("D2 accept", elem_id="btn-d2-accept", min_width=60)
            c["d2_reject"] = gr.Button("D2 reject", elem_id="btn-d2-reject", min_width=60)
        with gr.Row():
            c["d3_1"] = gr.Button("D3 1", elem_id="btn-d3-1", min_width=40)
            c["d3_2"] = gr.Button("D3 2", elem_id="btn-d3-2", min_width=40)
            c["d3_3"] = gr.Button("D3 3", elem_id="btn-d3-3", min_width=40)
        with gr.Row(equal_height=True):
            c["d1"] = gr.Number(None, precision=0, label="D1 plan depth (steps the task needs)", info=HINTS["d1"],
                                elem_id="d1", min_width=80)
            c["d1_save"] = gr.Button("Save D1", elem_id="btn-d1", min_width=60, scale=0)
        c["note"] = gr.Textbox(label="Note (on the attempt, or the session if none is picked)", lines=2,
                               info=TEXT_LIMIT, elem_id="note")
        c["note_save"] = gr.Button("Save note", elem_id="btn-note")
        c["message"] = message_box("annotation-message")
        with gr.Accordion("Keyboard shortcuts", open=False, elem_id="shortcuts"):
            gr.Markdown(SHORTCUTS)
    return c


def create_agreement() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    with gr.Row(equal_height=True):
        c["scope"] = gr.Radio(list(handlers.SCOPES), value=handlers.SCOPES[0], label="Scope",
                              elem_id="agreement-scope")
        c["compute"] = gr.Button("Compute agreement", elem_id="btn-agreement", scale=0, min_width=180)
    c["message"] = message_box("agreement-message")
    c["table"] = gr.Dataframe(headers=["label", "figure", "value"], value=[], interactive=False,
                              elem_id="agreement-table")
    with gr.Row():
        c["chart_seconds"] = gr.Plot(label="VGM seconds", elem_id="chart-seconds")
        c["chart_confusion"] = gr.Plot(label="Human vs VLM (D2)", elem_id="chart-confusion")
        c["chart_verdicts"] = gr.Plot(label="Verdicts", elem_id="chart-verdicts")
    return c

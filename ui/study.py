"""The Study tab: pick or make a study, its progress, the blind labelling queue (keyboard first, its keys listed
on the page), adjudication of disagreements, the figures (Tables 6-7, plotly) and the export."""

from __future__ import annotations

import gradio as gr

from ui import handlers
from ui.widgets import TEXT_LIMIT, message_box


STUDY_SHORTCUTS = """
| key | does |
|---|---|
| n | next item (the one on screen goes back to the queue) |
| b | back: the item you labelled before |
| a / r | D2: accept / reject the clip |
| 1 / 2 / 3 | D3: rate the suggestion |
| 1 - 6 | D1: the steps the task needs |
| , / . | previous / next frame of the clip |
| o | open the note box |
| ? | show or hide the key sheet |

Keys are ignored while you type in a text box (Esc leaves it).
"""


def create_study_tab() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    with gr.Column(elem_id="study-panel"):
        with gr.Row(equal_height=True):
            c["pick"] = gr.Dropdown([], value=None, label="Study", allow_custom_value=False, elem_id="study-pick",
                                    scale=3)
            c["refresh"] = gr.Button("Refresh", elem_id="btn-study-refresh", scale=0, min_width=90)
        c["progress"] = gr.HTML(elem_id="study-progress")
        with gr.Accordion("New study", open=False, elem_id="study-new"):
            with gr.Row():
                c["name"] = gr.Textbox(label="Name", placeholder="pilot-1", elem_id="study-name",
                                       info="1 to 64 letters, digits, '_' or '-'")
                c["sessions"] = gr.Textbox("all", label="Sessions ('all' or ids, comma-separated)",
                                           elem_id="study-sessions")
            with gr.Row():
                c["labels"] = gr.CheckboxGroup(list(handlers.study.LABEL_CHOICES), value=["D1", "D2", "D3"],
                                               label="Labels", elem_id="study-labels")
                c["per_item"] = gr.Number(2, precision=0, minimum=1, maximum=10, label="Annotators per item",
                                          elem_id="study-per-item")
            with gr.Row():
                c["annotators"] = gr.Textbox(label="Annotators (comma-separated; empty: anyone)",
                                             elem_id="study-annotators")
                c["blind"] = gr.Checkbox(True, label="Blind (hide the VLM's verdict and others' labels)",
                                         elem_id="study-blind")
            c["create"] = gr.Button("Make the study", variant="primary", elem_id="btn-study-create")
            c["create_message"] = message_box("study-create-message")
        with gr.Accordion("Label", open=True, elem_id="study-label-panel"):
            c["item"] = gr.HTML(elem_id="study-item")
            # Only the buttons of the item's label kind are shown (ui/wiring.py _wire_study).
            with gr.Row(elem_id="study-buttons-d2", visible=False) as c["row_d2"]:
                c["accept"] = gr.Button("accept (a)", elem_id="btn-q-accept", min_width=70)
                c["reject"] = gr.Button("reject (r)", elem_id="btn-q-reject", min_width=70)
            with gr.Row(elem_id="study-buttons-d3", visible=False) as c["row_d3"]:
                c["r1"] = gr.Button("1 poor", elem_id="btn-q-1", min_width=60)
                c["r2"] = gr.Button("2 moderate", elem_id="btn-q-2", min_width=60)
                c["r3"] = gr.Button("3 well-suited", elem_id="btn-q-3", min_width=60)
            with gr.Row(elem_id="study-depth", visible=False) as c["row_d1"]:
                c["depth_buttons"] = [gr.Button(str(n), elem_id=f"btn-q-depth-{n}", min_width=40) for n in range(1, 7)]
                c["depth"] = gr.Number(None, precision=0, label="D1 steps (1-12)", elem_id="q-d1", min_width=80)
                c["depth_save"] = gr.Button("Save D1", elem_id="btn-q-d1", min_width=70)
            with gr.Row(elem_id="study-nav"):
                c["back"] = gr.Button("◀ back (b)", elem_id="btn-q-back", min_width=80)
                c["next"] = gr.Button("next (n) ▶", variant="primary", elem_id="btn-q-next", min_width=80)
            c["note"] = gr.Textbox(label="Note on this item (o)", lines=2, info=TEXT_LIMIT, elem_id="q-note")
            c["note_save"] = gr.Button("Save note", elem_id="btn-q-note")
            c["message"] = message_box("study-message")
            gr.Markdown(STUDY_SHORTCUTS, elem_id="study-shortcuts")
        with gr.Accordion("Adjudicate disagreements", open=False, elem_id="study-adjudicate"):
            c["list_disagreements"] = gr.Button("Show disagreements", elem_id="btn-disagreements")
            c["disagreements"] = gr.Dataframe(headers=handlers.study.DISAGREEMENT_COLUMNS, value=[], interactive=False,
                                              wrap=True, elem_id="study-disagreements")
            with gr.Row(equal_height=True):
                c["adj_item"] = gr.Dropdown([], value=None, label="Item", elem_id="adj-item", scale=3)
                c["adj_value"] = gr.Textbox(label="Final label (accept/reject, or a number)", elem_id="adj-value",
                                            scale=1)
            c["adj_reason"] = gr.Textbox(label="Reason (required)", info=TEXT_LIMIT, elem_id="adj-reason")
            c["adjudicate"] = gr.Button("Record the final label", variant="primary", elem_id="btn-adjudicate")
            c["adj_message"] = message_box("adj-message")
        with gr.Accordion("Figures and export", open=False, elem_id="study-figures-panel"):
            with gr.Row():
                c["compute"] = gr.Button("Compute figures", elem_id="btn-study-figures")
                c["export"] = gr.Button("Export JSONL", elem_id="btn-study-export")
            c["figures_message"] = message_box("study-figures-message")
            c["tables"] = gr.HTML(elem_id="study-tables")
            with gr.Row():
                c["chart_kappa"] = gr.Plot(label="Agreement", elem_id="chart-study-kappa")
                c["chart_confusion"] = gr.Plot(label="Consensus vs VLM (D2)", elem_id="chart-study-confusion")
            c["export_file"] = gr.File(label="Study export (one row per item)", interactive=False,
                                       elem_id="study-export-file")
    return c

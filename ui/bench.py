"""The Bench tab: a benchmark run's summary table and score-against-cost figure, and its samples, each one
click away from its session's timeline."""

from __future__ import annotations

import gradio as gr

from ui import handlers
from ui.widgets import message_box


def create_bench() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    with gr.Row(equal_height=True):
        c["run"] = gr.Dropdown([], value=None, label="Benchmark run", allow_custom_value=True, elem_id="bench-run",
                               scale=3)
        c["refresh"] = gr.Button("Refresh", elem_id="btn-bench-refresh", scale=0, min_width=120)
    c["message"] = message_box("bench-message")
    c["table"] = gr.HTML("", elem_id="bench-table")
    c["figure"] = gr.Plot(label="Score against seconds of video generated per sample", elem_id="bench-figure")
    gr.Markdown("Click a sample to open its session's timeline.")
    c["samples"] = gr.Dataframe(headers=handlers.BENCH_SAMPLE_COLUMNS, value=[], interactive=False, wrap=True,
                                elem_id="bench-samples")
    return c

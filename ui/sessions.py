"""The sessions view: a list that keeps itself current, with search and status filter (the status badge's
words); open (which brings the Session tab forward), resume, delete, export."""

from __future__ import annotations

import gradio as gr

from storage.sqlite_store import MAX_SEARCH_CHARS
from ui import handlers
from ui.widgets import message_box


def create_sessions() -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    with gr.Row(equal_height=True):
        c["search"] = gr.Textbox(label=f"Search title or prompt (at most {MAX_SEARCH_CHARS} characters)",
                                 elem_id="session-search", scale=3)
        c["status"] = gr.Dropdown(list(handlers.STATUS_FILTERS), value="all", label="Status",
                                  elem_id="session-status", scale=1)
        c["list"] = gr.Button("Refresh now", elem_id="btn-list-sessions", scale=0, min_width=140)
    c["table"] = gr.Dataframe(headers=handlers.SESSION_COLUMNS, value=[], interactive=False, wrap=True,
                              elem_id="sessions-table")
    with gr.Row(equal_height=True):
        c["pick"] = gr.Dropdown([], value=None, label="Session", allow_custom_value=True, elem_id="session-pick",
                                scale=2)
        c["open"] = gr.Button("Open", variant="primary", elem_id="btn-open", min_width=80, scale=0)
        c["resume"] = gr.Button("Resume (Run)", elem_id="btn-resume", min_width=120, scale=0)
        c["export"] = gr.Button("Export", elem_id="btn-export", min_width=80, scale=0)
        c["confirm"] = gr.Checkbox(False, label="yes, delete", elem_id="confirm-delete", scale=0, min_width=120)
        c["delete"] = gr.Button("Delete", variant="stop", elem_id="btn-delete", min_width=80, scale=0)
    c["message"] = message_box("sessions-message")
    c["files"] = gr.File(label="Export (JSONL rows + zip with logs and clips)", file_count="multiple",
                         interactive=False, elem_id="export-files")
    return c

"""The new-session panel: a simulated task (family, difficulty, seed, with a live preview) or an uploaded
image and prompt (the preview then shows the upload); the backends, each unavailable one marked before it
is picked and every reason the chosen pair cannot run named at once; the budgets and breakpoints."""

from __future__ import annotations

import gradio as gr

from collabvr.config import BREAKPOINTS, LoopConfig
from ui import handlers
from ui.widgets import HINTS, PROMPT_LIMIT, message_box


def create_new_session(default_latency: float = 0.0) -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    families, difficulties = handlers.families(), handlers.difficulties()
    image, prompt = handlers.preview_task(families[0], difficulties[0], 0)
    defaults = LoopConfig()
    vlms, vgms = handlers.backend_choices("vlm"), handlers.backend_choices("vgm")
    with gr.Row(equal_height=False, elem_id="new-session-main"):
        with gr.Column(scale=3, min_width=300):
            c["source"] = gr.Radio([("Simulated task", "sim"), ("Upload an image", "upload")], value="sim",
                                   label="Task", elem_id="task-source")
            with gr.Group(visible=True) as sim_group:
                with gr.Row(elem_id="sim-task-row"):
                    c["family"] = gr.Dropdown(families, value=families[0], label="Family", elem_id="family",
                                              min_width=110)
                    c["difficulty"] = gr.Radio(difficulties, value=difficulties[0], label="Difficulty",
                                               elem_id="difficulty", min_width=140)
                    c["seed"] = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="seed", min_width=80)
            with gr.Group(visible=False) as upload_group:
                c["upload_image"] = gr.File(label="Image (PNG or JPEG, at most 4096 px a side)",
                                            file_types=["image"], type="filepath", elem_id="upload-image",
                                            height=120)
                c["upload_prompt"] = gr.Textbox(label="Task prompt", lines=2, info=PROMPT_LIMIT,
                                                placeholder="What should happen in the video?",
                                                elem_id="upload-prompt")
            c["sim_group"], c["upload_group"] = sim_group, upload_group
            with gr.Row(elem_id="backend-row"):
                c["vlm"] = gr.Dropdown(vlms, value=vlms[0][1], label="VLM (planner and verifier)",
                                       info=HINTS["vlm"], elem_id="vlm-choice", min_width=200)
                c["vgm"] = gr.Dropdown(vgms, value=vgms[0][1], label="VGM (video generator)", info=HINTS["vgm"],
                                       elem_id="vgm-choice", min_width=200)
            c["backend_check"] = gr.Markdown(handlers.backend_check("sim", vlms[0][1], vgms[0][1]),
                                             elem_id="backend-check")
            with gr.Row(elem_id="budget-row"):
                c["n_max"] = gr.Number(defaults.n_max, precision=0, minimum=1, maximum=12, label="N_max (steps)",
                                       info=HINTS["n_max"], elem_id="n-max", min_width=110)
                c["m"] = gr.Number(defaults.m, precision=0, minimum=1, maximum=10, label="M (attempts)",
                                   info=HINTS["m"], elem_id="m", min_width=110)
                c["first_seconds"] = gr.Number(defaults.first_step_seconds, minimum=0.5, maximum=60,
                                               label="First clip (s)", info=HINTS["first_seconds"],
                                               elem_id="first-seconds", min_width=110)
                c["later_seconds"] = gr.Number(defaults.later_seconds, minimum=0.5, maximum=60,
                                               label="Later clips (s)", info=HINTS["later_seconds"],
                                               elem_id="later-seconds", min_width=110)
                c["latency"] = gr.Number(default_latency, minimum=0, maximum=600, label="Sim latency (s)",
                                         info=HINTS["latency"], elem_id="sim-latency", min_width=110)
            c["new_breakpoints"] = gr.CheckboxGroup(
                [(handlers.BREAKPOINT_LABELS[b], b) for b in BREAKPOINTS], value=[],
                label="Pause at (a breakpoint holds the loop until you Step or Run)", elem_id="new-breakpoints")
        with gr.Column(scale=1, min_width=220, elem_id="task-preview-column"):
            c["preview"] = gr.Image(image, label="Input image (simulated task)", interactive=False, height=170,
                                    buttons=[], elem_id="task-preview")
            c["prompt"] = gr.Textbox(prompt, label="Task prompt (simulated task)", interactive=False, lines=2,
                                     elem_id="task-prompt")
            with gr.Accordion("Which backends can run here, and why not", open=False, elem_id="backend-list"):
                c["availability"] = gr.Markdown(handlers.availability_markdown(), elem_id="backend-availability")
    # Last in the panel, and kept in view at the bottom of the screen while the panel is scrolled.
    with gr.Row(elem_id="start-row", equal_height=True):
        c["start"] = gr.Button("Start session", variant="primary", elem_id="start-session", scale=0,
                               min_width=180)
        c["message"] = message_box("new-session-message")
    return c

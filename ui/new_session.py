"""The new-session panel: a simulated task (family, difficulty, seed, with a live preview) or an uploaded
image and prompt; the backends with an honest availability line; the budgets and breakpoints."""

from __future__ import annotations

import gradio as gr

from collabvr.config import BREAKPOINTS, LoopConfig
from ui import handlers


def create_new_session(default_latency: float = 0.0) -> dict[str, gr.Component]:
    c: dict[str, gr.Component] = {}
    families, difficulties = handlers.families(), handlers.difficulties()
    image, prompt = handlers.preview_task(families[0], difficulties[0], 0)
    defaults = LoopConfig()
    vlms, vgms = handlers.backend_choices("vlm"), handlers.backend_choices("vgm")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            c["source"] = gr.Radio([("Simulated task", "sim"), ("Upload an image", "upload")], value="sim",
                                   label="Task", elem_id="task-source")
            with gr.Group(visible=True) as sim_group:
                with gr.Row():
                    c["family"] = gr.Dropdown(families, value=families[0], label="Family", elem_id="family")
                    c["difficulty"] = gr.Radio(difficulties, value=difficulties[0], label="Difficulty",
                                               elem_id="difficulty")
                    c["seed"] = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="seed")
            with gr.Group(visible=False) as upload_group:
                c["upload_image"] = gr.File(label="Image (PNG or JPEG, at most 4096 px a side)",
                                            file_types=["image"], type="filepath", elem_id="upload-image")
                c["upload_prompt"] = gr.Textbox(label="Task prompt", lines=2, max_length=4000,
                                                placeholder="What should happen in the video?",
                                                elem_id="upload-prompt")
            c["sim_group"], c["upload_group"] = sim_group, upload_group
            with gr.Row():
                c["vlm"] = gr.Dropdown(vlms, value=vlms[0][1], label="VLM (planner and verifier)",
                                       elem_id="vlm-choice")
                c["vgm"] = gr.Dropdown(vgms, value=vgms[0][1], label="VGM (video generator)", elem_id="vgm-choice")
            with gr.Accordion("Which backends can run here", open=False):
                c["availability"] = gr.Markdown(handlers.availability_markdown(), elem_id="backend-availability")
        with gr.Column(scale=1, min_width=220):
            c["preview"] = gr.Image(image, label="Input image", interactive=False, height=200,
                                    buttons=[], elem_id="task-preview")
            c["prompt"] = gr.Textbox(prompt, label="Task prompt (simulated task)", interactive=False, lines=3,
                                     elem_id="task-prompt")
    with gr.Row():
        c["n_max"] = gr.Number(defaults.n_max, precision=0, minimum=1, maximum=12, label="N_max (steps)",
                               elem_id="n-max")
        c["m"] = gr.Number(defaults.m, precision=0, minimum=1, maximum=10, label="M (attempts per step)",
                           elem_id="m")
        c["first_seconds"] = gr.Number(defaults.first_step_seconds, minimum=0.5, maximum=60,
                                       label="First clip (s)", elem_id="first-seconds")
        c["later_seconds"] = gr.Number(defaults.later_seconds, minimum=0.5, maximum=60, label="Later clips (s)",
                                       elem_id="later-seconds")
        c["latency"] = gr.Number(default_latency, minimum=0, maximum=600, label="Simulated latency (s per call)",
                                 elem_id="sim-latency")
    c["new_breakpoints"] = gr.CheckboxGroup(
        [(handlers.BREAKPOINT_LABELS[b], b) for b in BREAKPOINTS], value=[], label="Pause at",
        elem_id="new-breakpoints")
    with gr.Row():
        c["start"] = gr.Button("Start session", variant="primary", elem_id="start-session", scale=0,
                               min_width=180)
        c["message"] = gr.Markdown("", elem_id="new-session-message")
    return c

"""The UI's handlers, called directly with a Studio on temporary folders (no browser, no server)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from collabvr.engine import Engine
from collabvr.events import TaskSpec
from collabvr.loop import Kind
from collabvr.studio import Studio
from scripted import ScriptedVGM, ScriptedVLM, plan, reject
from storage import open_data_dir
from ui import handlers, render
from ui.handlers import Services


ANN = "ana"


@pytest.fixture
def svc(tmp_path):
    store, artifacts = open_data_dir(tmp_path / "data")
    return Services.create(Studio(store, artifacts), store, tmp_path / "data")


def start(svc, *, family="maze", seed=1, n_max=2, m=2, breakpoints=("after_verify",), vgm="sim:legacy"):
    sid, message = handlers.new_session(svc, "sim", family, "easy", seed, None, "", "sim:gemini-2.5-pro", vgm,
                                        n_max, m, 2.0, 1.0, list(breakpoints), 0.0)
    assert sid, message
    return sid


def drive(svc, sid, until_wait=True, limit=20):
    """Step until the loop waits for a person (or finishes)."""
    for _ in range(limit):
        command = svc.studio.next_command(sid)
        if command.kind is Kind.DONE or (until_wait and command.kind is Kind.WAIT):
            return command
        assert not handlers.is_problem(handlers.step(svc, sid))
        handlers.wait_idle(svc, sid)
    raise AssertionError("the loop never waited")


def test_preview_shows_the_sim_task_image_and_prompt():
    image, prompt = handlers.preview_task("maze", "easy", 3)
    assert isinstance(image, np.ndarray) and image.ndim == 3
    assert prompt and not handlers.is_problem(prompt)


def test_availability_is_honest_about_real_backends():
    text = handlers.availability_markdown()
    assert "✔ available" in text
    assert "GEMINI_API_KEY" in text and "hf download" in text  # what a person does to make a real one run
    labels = [label for label, _ in handlers.backend_choices("vgm")]
    assert any(label.startswith("✘") and "(unavailable here)" in label for label in labels)
    assert not labels[0].startswith("✘"), "a backend that can run here comes first"


def test_every_reason_the_chosen_backends_cannot_run_is_named_before_start():
    problems = handlers.backend_problems("sim", "gemini", "wan2.2-ti2v-5b")
    assert len(problems) == 2 and problems[0].startswith("VLM") and problems[1].startswith("VGM")
    assert all("cannot run here" in p for p in problems)
    assert handlers.backend_problems("sim", "sim:gemini-2.5-pro", "sim:legacy") == []
    upload = handlers.backend_problems("upload", "sim:gemini-2.5-pro", "sim:legacy")
    assert len(upload) == 2 and all("only understands the simulated world" in p for p in upload)
    assert handlers.backend_check("sim", "sim:gemini-2.5-pro", "sim:legacy").startswith("✔")
    assert handlers.backend_check("sim", "gemini", "wan2.2-ti2v-5b").count("⚠") == 2


def test_new_sim_session_steps_and_runs_to_the_end(svc):
    sid = start(svc, breakpoints=())
    assert handlers.step(svc, sid).startswith("✔")
    handlers.wait_idle(svc, sid)
    assert svc.studio.state(sid).current_step is not None
    assert handlers.run(svc, sid).startswith("✔")
    handlers.wait_idle(svc, sid)
    view = handlers.session_view(svc, sid)
    assert view.finished and view.final_video and Path(view.final_video).is_file()
    assert 'class="session-finished"' in view.timeline and "simulated-label" in view.timeline
    assert re.search(r'<video class="clip" controls[^>]*src="/gradio_api/file=/', view.timeline)
    assert handlers.is_problem(handlers.run(svc, sid))  # finished: fork to continue


def test_timeline_marks_frames_verdicts_ssim_and_caches_frame_pngs(svc):
    sid = start(svc)
    drive(svc, sid)
    view = handlers.session_view(svc, sid)
    html = view.timeline
    assert 'class="step-card' in html and 'data-step="1"' in html
    assert re.search(r'class="attempt-row[^"]*" data-step="1" data-attempt="1"', html)
    assert re.search(r'class="verdict-badge (accept|reject)"', html)
    assert 'class="ssim"' in html and 'class="prompt-diff' in html
    frames = list((svc.data_dir / "cache" / "frames").glob("*.png"))
    assert frames, "verification frames are extracted into the cache"
    assert "waiting: breakpoint" in view.status
    assert view.decision_attempts == ["step:1/attempt:1"]


def test_override_reject_then_accept_is_shown_with_who_and_why(svc):
    sid = start(svc)
    drive(svc, sid)
    message = handlers.override(svc, sid, "step:1/attempt:1", "reject", "the disc went right", "go left", ANN)
    assert message.startswith("✔"), message
    html = handlers.session_view(svc, sid).timeline
    assert 'class="human-decision override current"' in html and "overridden to <b>reject</b> by ana" in html
    assert "the disc went right" in html
    assert 'class="verdict-badge reject"' in html


def test_decisions_need_a_name_and_a_session(svc):
    sid = start(svc)
    drive(svc, sid)
    assert "Annotator" in handlers.override(svc, sid, "step:1/attempt:1", "accept", "", "", "  ")
    assert "no session" in handlers.step(svc, "")
    assert handlers.is_problem(handlers.override(svc, sid, "nonsense", "accept", "", "", ANN))
    assert handlers.is_problem(handlers.annotate(svc, sid, "step:9/attempt:1", "D2", "accept", ANN))


def test_edit_action_is_used_by_the_next_generation(svc):
    sid = start(svc, breakpoints=("before_generate",))
    command = drive(svc, sid)
    assert command.held.kind is Kind.GENERATE
    assert handlers.edit_action(svc, sid, "Move the red disc up.", ANN).startswith("✔")
    handlers.step(svc, sid)
    handlers.wait_idle(svc, sid)
    state = svc.studio.state(sid)
    assert state.steps[0].attempts[0].prompt == "Move the red disc up."
    assert "action edited by ana" in handlers.session_view(svc, sid).timeline
    assert handlers.is_problem(handlers.edit_action(svc, sid, "", ANN))
    assert handlers.is_problem(handlers.edit_action(svc, sid, "x" * 5000, ANN))


def test_regen_from_a_chosen_frame_starts_the_next_attempt_there(svc):
    sid = start(svc)
    drive(svc, sid)
    last, suggested = handlers.regen_source(svc, sid, "step:1/attempt:1")
    assert last > 3 and 0 <= suggested <= last
    preview = handlers.regen_preview(svc, sid, "step:1/attempt:1", 3)
    assert preview and Image.open(preview).size[0] > 0
    if svc.studio.state(sid).steps[0].attempts[0].effective_verdict == "accept":
        assert "override it to reject first" in handlers.route_regen(svc, sid, "step:1/attempt:1", 3, "", ANN)
        handlers.override(svc, sid, "step:1/attempt:1", "reject", "not quite", "", ANN)
    assert handlers.route_regen(svc, sid, "step:1/attempt:1", 3, "slower", ANN).startswith("✔")
    drive(svc, sid, limit=6)
    attempts = svc.studio.state(sid).steps[0].attempts
    regen = [a for a in attempts if a.purpose == "regen"]
    assert regen and regen[0].generated.start.frame_index == 3
    assert 'class="route by-human"' in handlers.session_view(svc, sid).timeline
    assert handlers.is_problem(handlers.route_regen(svc, sid, "step:1/attempt:1", 10_000, "", ANN))


def test_split_and_fallback_are_recorded_as_routes(svc):
    sid = start(svc)
    drive(svc, sid)
    handlers.override(svc, sid, "step:1/attempt:1", "reject", "not quite", "", ANN)
    fork_id = svc.studio.fork(sid, len(svc.store.read(sid)))
    assert handlers.route_split(svc, sid, 3, ANN).startswith("✔")
    assert svc.studio.state(sid).steps[0].status == "split"
    assert handlers.route_fallback(svc, fork_id, ANN).startswith("✔")
    assert svc.studio.state(fork_id).steps[0].routes[-1].decision.action == "fallback"
    assert handlers.is_problem(handlers.route_split(svc, fork_id, 1, ANN))


def test_annotations_and_agreement(svc):
    sid = start(svc)
    drive(svc, sid)
    target = "step:1/attempt:1"
    assert handlers.annotate(svc, sid, target, "D2", "reject", ANN).startswith("✔")
    assert handlers.annotate(svc, sid, "session", "D1", 2, ANN).startswith("✔")
    assert handlers.annotate(svc, sid, target, "note", "looks odd <b>", ANN).startswith("✔")
    assert handlers.is_problem(handlers.annotate(svc, sid, target, "D2", "maybe", ANN))
    html = handlers.session_view(svc, sid).timeline
    assert "D2 human verdict: <b>reject</b> by ana" in html and "looks odd &lt;b&gt;" in html
    result = handlers.agreement(svc, sid, "this session")
    assert result.message.startswith("✔"), result.message
    figures = dict((row[1], row[2]) for row in result.table)
    assert figures["labels"] == 1 and "Cohen's kappa" in figures
    assert handlers.agreement(svc, sid, "all sessions").message.startswith("✔")


def test_previous_and_next_attempt_stay_at_the_ends():
    targets = ["step:1/attempt:1", "step:1/attempt:2", "step:2/attempt:1"]
    assert handlers.neighbour(targets, targets[0], -1) == targets[0]
    assert handlers.neighbour(targets, targets[0], +1) == targets[1]
    assert handlers.neighbour(targets, targets[2], +1) == targets[2]
    assert handlers.neighbour(targets, None, +1) == targets[0]


def test_list_open_fork_export_and_delete(svc):
    sid = start(svc, breakpoints=())
    handlers.run(svc, sid)
    handlers.wait_idle(svc, sid)
    table, ids = handlers.list_sessions(svc, "", "all")
    assert ids == [sid] and table[0][2] == "finished"
    assert handlers.list_sessions(svc, "no such title", "all")[1] == []
    assert handlers.list_sessions(svc, "", "failed")[1] == []
    view, message = handlers.open_session(svc, sid)
    assert view is not None and message.startswith("✔")

    fork_id, message = handlers.fork(svc, sid, "step 1")
    assert fork_id and message.startswith("✔"), message
    forked = svc.studio.state(fork_id)
    assert forked.started.fork.parent_session == sid
    assert forked.current_step.number == 1 and not forked.steps[0].attempts  # re-runs step 1 from its start
    assert svc.studio.next_command(fork_id).kind is Kind.GENERATE

    paths, message = handlers.export_session(svc, sid)
    assert message.startswith("✔"), message
    assert {Path(p).suffix for p in paths} == {".jsonl", ".zip"} and all(Path(p).is_file() for p in paths)

    assert handlers.is_problem(handlers.delete_session(svc, fork_id, False))
    assert handlers.delete_session(svc, fork_id, True).startswith("✔")
    assert handlers.list_sessions(svc, "", "all")[1] == [sid]


def test_interrupted_sessions_are_flagged_after_a_restart(svc, tmp_path):
    sid = start(svc, breakpoints=())
    handlers.step(svc, sid)
    handlers.wait_idle(svc, sid)
    store, artifacts = open_data_dir(tmp_path / "data")
    restarted = Services.create(Studio(store, artifacts), store, tmp_path / "data")
    table, _ = handlers.list_sessions(restarted, "", "interrupted")
    assert [row[0] for row in table] == [sid] and table[0][2] == "interrupted"
    assert "interrupted" in handlers.session_view(restarted, sid).status
    handlers.run(restarted, sid)
    handlers.wait_idle(restarted, sid)
    assert restarted.studio.state(sid).finished is not None


def test_bad_inputs_give_messages_and_record_nothing(svc, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    huge = tmp_path / "huge.png"
    Image.new("RGB", (5000, 20)).save(huge)
    small = tmp_path / "ok.png"
    Image.new("RGB", (64, 64), "white").save(small)

    def upload(path, prompt, vlm="gemini", vgm="diffusers"):
        return handlers.new_session(svc, "upload", "maze", "easy", 0, str(path) if path else None, prompt, vlm, vgm,
                                    2, 2, 2.0, 1.0, [], 0.0)

    assert "not an image" in upload(not_image, "do it")[1]
    assert "at most 4096" in upload(huge, "do it")[1]
    assert "empty" in upload(small, "   ")[1]
    assert "at most" in upload(small, "x" * 5000)[1]
    assert "cannot run here" in upload(small, "do it")[1]
    assert "choose an image" in upload(None, "do it")[1]
    sid, message = handlers.new_session(svc, "sim", "maze", "easy", 0, None, "", "gemini", "sim:legacy",
                                        2, 2, 2.0, 1.0, [], 0.0)
    assert not sid and "cannot run here" in message
    sid, message = handlers.new_session(svc, "sim", "maze", "easy", 0, None, "", "sim:gemini-2.5-pro",
                                        "sim:legacy", 99, 2, 2.0, 1.0, [], 0.0)
    assert not sid and "n_max" in message
    assert handlers.list_sessions(svc, "", "all")[1] == []


def test_model_written_text_is_escaped(svc):
    evil = '<script>alert("x")</script>'
    vlm = ScriptedVLM(plans=[plan(evil)], verdicts=[reject(0.5, suggestion=evil, reason=evil)])
    engine = Engine.start(svc.store, svc.artifacts, vlm, ScriptedVGM(), task=TaskSpec(prompt=evil, source="upload"),
                          input_image=np.full((32, 32, 3), 128, np.uint8), title=evil)
    engine.step()  # plan
    engine.step()  # generate
    engine.step()  # verify
    state = svc.studio.state(engine.session_id)
    html = render.render_timeline(state, svc.links)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="failing"' in html  # a reject at good_fraction 0.5 marks a failing frame
    assert "<script>" not in render.render_status(state, svc.studio.next_command(engine.session_id),
                                                   svc.studio.activity(engine.session_id))


def test_word_diff_marks_removed_and_added_words():
    html = render.word_diff("move the red disc left", "move the <b> disc right")
    assert "<del>red</del>" in html and "<ins>&lt;b&gt;</ins>" in html
    assert "<del>left</del>" in html and "<ins>right</ins>" in html


@pytest.mark.parametrize("bad", ["../x", "../../etc/passwd", "a/b", "x" * 65])
def test_a_malformed_session_id_is_refused_with_a_message_and_nothing_is_written(svc, bad):
    messages = [handlers.open_session(svc, bad)[1], handlers.export_session(svc, bad)[1], handlers.step(svc, bad),
                handlers.delete_session(svc, bad, True), handlers.annotate(svc, bad, "session", "D1", 2, ANN)]
    for message in messages:
        assert handlers.is_problem(message) and "is not a valid session id" in message, message
    assert not (svc.data_dir / "exports").exists()
    assert not (svc.data_dir.parent / "x").exists()


def test_the_browser_key_moves_out_of_the_served_folder_and_is_kept(tmp_path):
    from ui.wiring import _browser_secret

    data = tmp_path / "data"
    data.mkdir()
    (data / "browser-state.key").write_text("kept-from-an-older-version\n")
    assert _browser_secret(data) == "kept-from-an-older-version"
    assert not (data / "browser-state.key").exists()
    assert (data / "private" / "browser-state.key").read_text().strip() == "kept-from-an-older-version"
    assert _browser_secret(data) == "kept-from-an-older-version"  # the next launch reads the same key


def badge_of(view) -> str:
    return re.search(r'class="status-badge status-(\w+)"', view.status).group(1)


def test_the_badge_says_what_is_true_and_never_running_while_nothing_runs(svc):
    sid = start(svc, breakpoints=())
    assert badge_of(handlers.session_view(svc, sid)) == "idle"
    handlers.step(svc, sid)
    handlers.wait_idle(svc, sid)
    view = handlers.session_view(svc, sid)
    assert badge_of(view) == "idle" and "running" not in view.status
    assert view.worker_note == "✔ Step ended: ran plan step 1"
    handlers.set_breakpoints(svc, sid, ["after_verify"], ANN)
    drive(svc, sid)
    view = handlers.session_view(svc, sid)
    assert badge_of(view) == "held" and "running" not in view.status
    assert handlers.list_sessions(svc, "", "held")[1] == [sid] and handlers.list_sessions(svc, "", "idle")[1] == []
    handlers.set_breakpoints(svc, sid, [], ANN)
    handlers.run(svc, sid)
    handlers.wait_idle(svc, sid)
    view = handlers.session_view(svc, sid)
    assert badge_of(view) == "finished" and view.worker_note.startswith("✔ Run ended: finished")
    assert handlers.list_sessions(svc, "", "all")[0][0][2] == "finished"


def test_decisions_follow_the_attempt_the_loop_is_on_and_name_it(svc):
    sid = start(svc, m=3)
    drive(svc, sid)
    assert handlers.session_view(svc, sid).focus_attempt == "step:1/attempt:1"
    assert handlers.override(svc, sid, "step:1/attempt:1", "reject", "short", "", ANN).startswith("✔")
    drive(svc, sid)  # evolve, generate and verify attempt 2: held after verification again
    view = handlers.session_view(svc, sid)
    assert view.focus_attempt == "step:1/attempt:2" and view.decision_attempts[-1] == "step:1/attempt:2"
    line, accept, reject = handlers.decision_focus(svc, sid, view.focus_attempt)
    assert "step 1, attempt 2" in line and "The loop is on this attempt." in line
    assert (accept, reject) == ("accept step 1 · attempt 2", "reject step 1 · attempt 2")
    line, _, _ = handlers.decision_focus(svc, sid, "step:1/attempt:1")
    assert "The loop is on step 1, attempt 2, not this one." in line


def test_every_override_of_an_attempt_stays_in_the_timeline_in_order(svc):
    sid = start(svc)
    drive(svc, sid)
    handlers.override(svc, sid, "step:1/attempt:1", "reject", "first look", "", ANN)
    handlers.override(svc, sid, "step:1/attempt:1", "accept", "second look", "", "bo")
    html = handlers.session_view(svc, sid).timeline
    first, second = html.index("first look"), html.index("second look")
    assert first < second
    assert "overridden to <b>reject</b> by ana" in html and "overridden to <b>accept</b> by bo" in html
    handlers.set_breakpoints(svc, sid, [], ANN)
    handlers.step(svc, sid)  # the loop accepts the attempt a person accepted
    handlers.wait_idle(svc, sid)
    step_status = re.search(r'<span class="step-status">([^<]*)</span>', handlers.session_view(svc, sid).timeline)
    assert re.fullmatch(r"accepted \(attempt 1, accepted by bo at [-\d]+ [:\d]+\)", step_status.group(1))


def test_a_fork_is_listed_with_the_step_it_was_forked_at(svc):
    sid = start(svc, breakpoints=())
    handlers.run(svc, sid)
    handlers.wait_idle(svc, sid)
    fork_id, _ = handlers.fork(svc, sid, "step 2")
    rows = {row[0]: row for row in handlers.list_sessions(svc, "", "all")[0]}
    assert rows[fork_id][4] == f"{sid} (step 2)" and rows[fork_id][1].endswith("(fork at step 2)")
    html = handlers.session_view(svc, fork_id).timeline
    assert f"forked from <code>{sid}</code> at step 2 (event" in html
    assert "[SIMULATED]" not in html.split('<div class="session-title">', 1)[1].split("</div>", 1)[0]


def test_a_decision_made_while_a_run_is_in_flight_is_recorded_at_once(svc):
    sid, _ = handlers.new_session(svc, "sim", "maze", "easy", 1, None, "", "sim:gemini-2.5-pro", "sim:legacy",
                                  2, 2, 2.0, 1.0, [], 0.4)
    assert handlers.run(svc, sid).startswith("✔")
    for _ in range(100):  # until the planner has proposed step 1, while the run goes on
        if svc.studio.state(sid).current_step is not None:
            break
        svc.studio.wait(sid, 0.05)
    assert svc.studio.is_running(sid)
    message = handlers.edit_action(svc, sid, "Move the red disc left to column 3.", ANN)
    assert message.startswith("✔"), message
    assert any(e.type == "ActionEdited" for e in svc.store.read(sid))  # in the log before the run ends
    assert svc.studio.is_running(sid)
    handlers.stop(svc, sid)
    handlers.wait_idle(svc, sid)


def test_an_empty_bench_tab_says_how_to_record_a_run_in_this_data_folder(svc):
    html, figure, samples, message = handlers.bench_view(svc, None)
    assert figure is None and samples == []
    assert not handlers.is_problem(message)  # a first visit is not an error
    command = (f"python -m collabvr bench --methods single,pass@4,collabvr --seeds 0-4 --out bench-out "
               f"--data-dir {svc.data_dir}")
    assert "No benchmark run here yet" in message and command in html
    _, _, _, message = handlers.bench_view(svc, "no-such-run")
    assert handlers.is_problem(message) and "no benchmark run 'no-such-run'" in message

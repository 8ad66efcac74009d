"""The timeline's HTML (ui/render.py + ui/templates/): every string a model or a person wrote is shown,
escaped, and no such string ever becomes markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np

from collabvr.backends import Plan, RouteDecision
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import BackendFailed, CommandFailed, ResultDiscarded, TaskSpec, attempt_target
from collabvr.loop import next_command
from collabvr.state import fold
from collabvr.store import MemoryEventStore
from collabvr.artifacts import ArtifactFolder
from collabvr.studio import Activity
from scripted import FlakyError, ScriptedVGM, ScriptedVLM, accept, reject
from ui import render


def evil(name: str) -> str:
    """A string that would open a <u-NAME> element if it reached the page unescaped."""
    return f'<u-{name} title="x">{name} & \'{name}\'</u-{name}>'


class Links:
    def clip_url(self, artifact):
        return f"/file={artifact.sha256}.mp4"

    def image_url(self, artifact):
        return f"/file={artifact.sha256}.png"

    def frame_urls(self, clip, indices):
        return {i: f"/file={clip.sha256}_{i}.png" for i in indices}

    def poster_url(self, clip):
        return f"/file={clip.sha256}_0_full.png"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)


def _planned(name: str) -> Plan:
    return Plan(observation=evil(f"{name}-observation"), remaining_goal=evil(f"{name}-remaining"),
                task_complete=False, instruction=evil(f"{name}-instruction"), target_state=evil(f"{name}-target"),
                estimated_steps_remaining=1)


def _a_session_written_by_hostile_models_and_people(tmp_path):
    """Step 1: a failed generation, a reject, every kind of label, an edit, a regen a person asked for.
    Step 2: a reject a person overrides to accept. Step 3: two rejects, a route by the VLM, an accept."""
    vlm = ScriptedVLM(plans=[_planned("step1"), _planned("step2"), _planned("step3")],
                      verdicts=[reject(0.5, suggestion=evil("suggestion1"), reason=evil("reason1")),
                                accept(evil("accept-reason")),
                                reject(0.0, suggestion=evil("suggestion2"), reason=evil("reason2")),
                                reject(0.0, suggestion=evil("suggestion3"), reason=evil("reason3")),
                                reject(0.4, suggestion=evil("suggestion4"), reason=evil("reason4")),
                                accept(evil("accept-reason3"))],
                      routes=[RouteDecision(action="regen", reason=evil("router-reason"),
                                            suggestion=evil("router-suggestion"))])
    vgm = ScriptedVGM(failures=[FlakyError(evil("failure"))])
    store = MemoryEventStore()
    engine = Engine.start(store, ArtifactFolder(tmp_path / "artifacts"), vlm, vgm,
                          task=TaskSpec(prompt=evil("task"), source="upload"),
                          input_image=np.full((32, 64, 3), 128, np.uint8), title=evil("title"),
                          config=LoopConfig(n_max=3, m=2, breakpoints=("on_reject",)))
    engine.run()  # plan, a failed generation and its retry, verify: rejected, held
    first = attempt_target(1, 1)
    engine.annotate(first, "note", evil("note"), actor=evil("annotator"))
    engine.annotate(first, "D2", "reject", actor=evil("labeller"))
    engine.annotate(first, "D3", 2, actor=evil("rater"))
    engine.annotate("session", "note", evil("session-note"), actor=evil("sess-annotator"))
    engine.edit_action(1, evil("edited-action"), actor=evil("editor"), reason=evil("edit-reason"))
    engine.request_route(1, "regen", actor=evil("route-person"), attempt=1, frame_index=1,
                         suggestion=evil("route-suggestion"), reason=evil("route-reason"))
    engine.run()  # the regen is accepted; step 2 is planned, generated, rejected: held
    engine.override_verdict(2, 1, "accept", actor=evil("overrider"), reason=evil("override-reason"),
                            suggestion=evil("override-suggestion"))
    engine.set_breakpoints([], actor="ana")
    engine.run()  # step 3: rejected twice, routed by the VLM, accepted; the end
    assert engine.state.finished is not None, "precondition: the scripted session runs to its end"
    return store, engine.session_id


# Every string a model or a person wrote into that session.
EVIL_FIELDS = [
    "title", "task", "step1-observation", "step1-remaining", "step1-instruction", "step1-target",
    "step2-instruction", "step3-instruction", "failure", "reason1", "suggestion1", "accept-reason", "reason2",
    "suggestion2", "reason3", "suggestion3", "reason4", "suggestion4", "accept-reason3", "note", "annotator", "labeller",
    "rater", "session-note", "sess-annotator", "edited-action", "editor", "edit-reason", "overrider",
    "override-reason", "override-suggestion", "router-reason", "router-suggestion", "route-suggestion",
    "route-reason", "route-person",
]


def test_every_model_and_person_written_string_is_shown_escaped_and_never_as_markup(tmp_path):
    store, session_id = _a_session_written_by_hostile_models_and_people(tmp_path)
    events = store.read(session_id)
    state = fold(events)
    html = render.render_timeline(state, Links(), [e for e in events if isinstance(e, BackendFailed)])
    parser = Tags()
    parser.feed(html)
    assert not {t for t in parser.tags if t.startswith("u-")}, "a written string became an element"
    shown = {name for name in EVIL_FIELDS if f"&lt;u-{name}" in html}
    assert shown == set(EVIL_FIELDS), f"not shown (escaped): {sorted(set(EVIL_FIELDS) - shown)}"
    # The prompt diff escapes the words it marks, too.
    assert re.search(r"<ins>[^<]*&lt;u-suggestion3", html)
    assert 'class="route by-vlm"' in html and 'class="route by-human"' in html
    assert re.search(r'requested by &lt;u-route-person.*? at [-\d]+ [:\d]+</span> \(done\): &lt;u-route-reason', html)
    assert "by a person" not in html


def test_the_status_line_escapes_what_the_worker_reports(tmp_path):
    store, session_id = _a_session_written_by_hostile_models_and_people(tmp_path)
    state = fold(store.read(session_id))
    running = Activity(session_id, running=True, mode="run", command=evil("command"), done=1, total=3)
    failed = Activity(session_id, error=evil("worker-error"))
    for activity, name in ((running, "command"), (failed, "worker-error")):
        html = render.render_status(state, next_command(state), activity)
        parser = Tags()
        parser.feed(html)
        assert not {t for t in parser.tags if t.startswith("u-")} and f"&lt;u-{name}" in html


def test_autoescaping_is_on_and_no_template_switches_it_off():
    assert render._env.autoescape is True
    assert render._env.from_string("{{ text }}").render(text="<b>") == "&lt;b&gt;"
    names = render._env.list_templates()
    assert {"timeline.html", "parts.html", "status_line.html"} <= set(names)
    for name in names:
        source = (render.TEMPLATES / name).read_text()
        assert not re.search(r"\|\s*safe|autoescape\s+false|Markup", source), f"{name} bypasses escaping"


def test_a_failure_of_the_engine_itself_is_shown_like_a_backend_failure(tmp_path):
    store, session_id = _a_session_written_by_hostile_models_and_people(tmp_path)
    state = fold(store.read(session_id))
    failed = CommandFailed(role="accept", step=2, attempt=1, error="FileNotFoundError",
                           message=evil("command-failure"))
    html = render.render_timeline(state, Links(), [failed])
    card = html.split('data-step="2"', 1)[1].split("</section>", 1)[0]
    assert '<div class="backend-failed"><b>accept step 2 attempt 1 failed</b>' in " ".join(card.split())
    assert "&lt;u-command-failure" in card and "FileNotFoundError, not retryable" in card


def test_a_discarded_result_is_shown_in_its_step_with_its_cost(tmp_path):
    store, session_id = _a_session_written_by_hostile_models_and_people(tmp_path)
    state = fold(store.read(session_id))
    discarded = ResultDiscarded(role="generate", step=2, attempt=1, reason=evil("discard-reason"), vgm_seconds=3.0)
    html = render.render_timeline(state, Links(), [], [discarded])
    card = " ".join(html.split('data-step="2"', 1)[1].split("</section>", 1)[0].split())
    assert '<div class="result-discarded"><b>generate step 2 attempt 1 result discarded</b>' in card
    assert "&lt;u-discard-reason" in card and "it cost 3.0 s of video" in card


def test_the_badge_and_the_decision_line_escape_and_never_say_running(tmp_path):
    store, session_id = _a_session_written_by_hostile_models_and_people(tmp_path)
    state = fold(store.read(session_id))
    command = next_command(state)
    assert render.badge(state, command, Activity(session_id)).word == "finished"
    working = render.badge(state, command, Activity(session_id, running=True, mode="run", command="verify step 3",
                                                    done=2, total=5))
    assert (working.word, working.detail) == ("working", "run: verify step 3, 2 of 5 done")
    assert set(render.BADGE_HINTS) == {"idle", "working", "held", "failed", "interrupted", "finished"}
    line = render.decision_focus(state, command, attempt_target(2, 1))
    parser = Tags()
    parser.feed(line)
    assert not {t for t in parser.tags if t.startswith("u-")} and "&lt;u-overrider" in line
    assert "step 2, attempt 1" in line


def test_a_simulated_sessions_title_and_a_forks_event_number_are_not_repeated_in_the_header(tmp_path):
    store, session_id = _a_session_written_by_hostile_models_and_people(tmp_path)
    state = fold(store.read(session_id))
    state.started = state.started.model_copy(update={"title": "[SIMULATED] maze/easy/seed 0 (fork @6)"})
    assert render.is_simulated(state)  # the scripted backends say they are simulated
    assert render.display_title(state) == "maze/easy/seed 0"  # the SIMULATED label is shown on its own
    assert render.list_title("maze (fork @6)", 2) == "maze (fork at step 2)"
    assert render.list_title("maze", None) == "maze"


def test_an_accept_of_partial_progress_says_that_partial_progress_is_accepted(tmp_path):
    partial = accept("The instructed motion was carried out (47% of it).").model_copy(update={"progress": "partial"})
    vlm = ScriptedVLM(plans=[_planned("one")], verdicts=[partial])
    engine = Engine.start(MemoryEventStore(), ArtifactFolder(tmp_path / "artifacts"), vlm, ScriptedVGM(),
                          task=TaskSpec(prompt="p", source="upload"), input_image=np.full((32, 64, 3), 128, np.uint8),
                          config=LoopConfig(n_max=1, m=1))
    engine.run()
    html = render.render_timeline(engine.state, Links())
    assert 'class="verdict-badge accept"' in html and "carried out (47% of it)" in html
    assert '<div class="partial-progress">Partial progress: the verifier accepts an action carried out in part' in html

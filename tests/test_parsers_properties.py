"""Property-based tests of every parser of untrusted text: a model's answer (extract_json, parse_answer for
each role's schema), an event line of a log or an archive (event_from_json), an attempt target, a users
file. Whatever the input, a parser returns a valid value or raises its own clear error (ValueError or a
pydantic ValidationError): never another exception, never a hang."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel, ValidationError

from collabvr.backends.prompted import extract_json, parse_answer
from collabvr.backends.schemas import Plan, RouteDecision, Selection, Verdict
from collabvr.events import event_from_json, event_to_json, parse_attempt_target
from collabvr.replay import ImpossibleHistory, check_history
from ui.access import AccessError, Users

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20)


@FAST
@given(st.text(max_size=400))
def test_extract_json_returns_a_json_object_or_says_there_is_none(text):
    try:
        found = extract_json(text)
    except ValueError as exc:
        assert "JSON" in str(exc)
        return
    assert found.startswith("{") and found.endswith("}")


@FAST
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6), st.text(max_size=40), st.text(max_size=40),
       st.booleans())
def test_an_object_wrapped_in_prose_or_fences_is_found_whole(obj, before, after, fenced):
    body = json.dumps(obj)
    prose = lambda s: s.replace("{", "(").replace("}", ")").replace("`", "'")  # noqa: E731
    text = prose(before) + ("\n```json\n" + body + "\n```\n" if fenced else " " + body + " ") + prose(after)
    assert json.loads(extract_json(text)) == obj


@FAST
@given(st.sampled_from([Plan, Verdict, RouteDecision, Selection]),
       st.dictionaries(st.sampled_from(["verdict", "action_executed", "progress", "confidence", "reason",
                                        "suggestion", "good_fraction", "observation", "remaining_goal",
                                        "task_complete", "instruction", "estimated_steps_remaining", "action",
                                        "estimated_steps", "best_index"]), json_values, max_size=10))
def test_parse_answer_gives_a_valid_value_or_a_value_error(schema: type[BaseModel], fields):
    try:
        value = parse_answer("Here you go: " + json.dumps(fields), schema)
    except ValueError as exc:
        assert schema.__name__ in str(exc) or "JSON" in str(exc)
        return
    assert isinstance(value, schema)
    schema.model_validate(value.model_dump())  # what came out satisfies its own rules


@FAST
@given(st.text(max_size=300) | st.builds(json.dumps, st.dictionaries(st.text(max_size=10), json_values, max_size=6)))
def test_an_event_line_parses_or_is_refused_as_invalid(line):
    try:
        event = event_from_json(line)
    except ValidationError:
        return
    assert event_from_json(event_to_json(event)) == event


@FAST
@given(st.text(max_size=60))
def test_an_attempt_target_parses_to_positive_numbers_or_is_refused(text):
    try:
        step, attempt = parse_attempt_target(text)
    except ValueError:
        return
    assert step >= 1 and attempt >= 1 and text == f"step:{step}/attempt:{attempt}"


@FAST
@given(st.text(max_size=300))
def test_a_users_file_parses_or_says_where_it_is_wrong(text):
    try:
        users = Users.parse(text, "users.txt")
    except AccessError as exc:
        assert str(exc).startswith("users.txt")
        return
    assert all(name and ":" not in name and name != "engine" for name in users.entries)


def _log():
    from collabvr.artifacts import ArtifactFolder
    import tempfile

    from scripted import ScriptedVLM, accept, plan, reject, start_engine
    engine = start_engine(ArtifactFolder(tempfile.mkdtemp()),
                          ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[reject(0.4), accept(), accept()]),
                          n_max=2)
    engine.run()
    return engine.store.read(engine.session_id)


LOG = _log()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(LOG) - 1), min_size=1, max_size=len(LOG) + 3))
def test_any_reshuffled_log_replays_or_is_refused_as_impossible(order):
    events = [LOG[i] for i in order]
    try:
        check_history(events)
    except ImpossibleHistory as exc:
        assert "event" in str(exc) or "SessionStarted" in str(exc)
        return
    # What replays is the engine's own log, or a prefix of it.
    assert events == LOG[:len(events)]

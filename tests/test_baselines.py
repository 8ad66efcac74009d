"""The baselines and ablations as sessions: each method's control flow and cost, with scripted backends (and,
for what only the simulated VLM does, the simulated world)."""

from __future__ import annotations

import pytest

from collabvr.artifacts import ArtifactFolder
from collabvr.backends import BackendInfo, Critique, Selection
from collabvr.engine import DecisionError
from collabvr.eval.methods import DEFAULT_METHODS, parse_method, parse_methods
from collabvr.events import ClipsCritiqued, ClipsSelected, StepAccepted, StepPlanned
from scripted import ScriptedVGM, ScriptedVLM, accept, frame_code, plan, reject, start_engine

TASK = "Stack the blocks."


def _events(engine, kind):
    return [e for e in engine.store.read(engine.session_id) if isinstance(e, kind)]


def _run(tmp_path, vlm, method: str, vgm=None):
    engine = start_engine(ArtifactFolder(tmp_path), vlm, vgm or ScriptedVGM(), prompt=TASK,
                          **parse_method(method).updates)
    engine.run()
    return engine


def test_single_inference_is_one_clip_of_the_raw_prompt_with_no_model_call(tmp_path):
    vlm, vgm = ScriptedVLM(), ScriptedVGM()
    engine = _run(tmp_path, vlm, "single", vgm)
    state = engine.state
    assert state.finished is not None and vlm.calls == []
    assert [r.prompt for r in vgm.requests] == [TASK] and vgm.requests[0].seconds == 6.0
    planned = _events(engine, StepPlanned)
    assert len(planned) == 1 and planned[0].by == "method" and planned[0].usage.calls == 0
    assert _events(engine, StepAccepted)[0].by == "method"
    assert state.cost.vgm_seconds == 6.0 and state.cost.vlm_calls == 0 and state.cost.clips == 1
    final = engine.artifacts.load_clip(state.finished.final_video)
    assert frame_code(final[0])[0] == 1 and len(final) == 49


def test_pass_at_k_makes_k_clips_and_keeps_the_one_the_selector_picks(tmp_path):
    vlm, vgm = ScriptedVLM(selections=[Selection(best_index=2, reason="clip 2 ends at the goal")]), ScriptedVGM()
    engine = _run(tmp_path, vlm, "pass@4", vgm)
    state = engine.state
    assert [r.prompt for r in vgm.requests] == [TASK] * 4
    assert len({r.seed for r in vgm.requests}) == 4, "each clip has a seed of its own"
    assert [name for name, _ in vlm.calls] == ["select"]
    assert len(vlm.requests("select")[0].clips) == 4
    selected = _events(engine, ClipsSelected)[0]
    assert selected.attempts == [1, 2, 3, 4] and selected.best_attempt == 3
    accepted = _events(engine, StepAccepted)[0]
    assert accepted.attempt == 3 and accepted.by == "selector"
    assert state.cost.vgm_seconds == 24.0 and state.cost.vlm_calls == 1 and state.cost.clips == 4
    final = engine.artifacts.load_clip(state.finished.final_video)
    assert frame_code(final[0])[0] == 3, "the final video is the selected clip"


def test_a_selection_out_of_range_is_a_backend_failure_not_a_guess(tmp_path):
    vlm = ScriptedVLM(selections=[Selection(best_index=7, reason="no such clip")])
    engine = _run(tmp_path, vlm, "pass@2")
    assert engine.state.finished is None
    assert engine.state.failures[-1].role == "select" and "there are 2" in engine.state.failures[-1].message


def test_videotpo_runs_two_rounds_of_two_clips_with_rewrites_then_a_final_clip(tmp_path):
    rewrites = [Critique(better_index=1, critique="clip 1 moved the right block", prompt="Stack the blocks, red on top."),
                Critique(better_index=0, critique="both close", prompt="Stack the blocks, red on top, slowly.")]
    vlm, vgm = ScriptedVLM(critiques=list(rewrites)), ScriptedVGM()
    engine = _run(tmp_path, vlm, "videotpo", vgm)
    state = engine.state
    prompts = [r.prompt for r in vgm.requests]
    assert prompts == [TASK, TASK, rewrites[0].prompt, rewrites[0].prompt, rewrites[1].prompt]
    seeds = [r.seed for r in vgm.requests]
    assert seeds[0] == seeds[2] and seeds[1] == seeds[3], "a round's clips reuse their seeds in every round"
    assert seeds[4] not in seeds[:4] and seeds[0] != seeds[1]
    assert [name for name, _ in vlm.calls] == ["critique", "critique"]
    first, second = vlm.requests("critique")
    assert first.prompt == TASK and len(first.clips) == 2 and first.round == 1 and second.round == 2
    critiqued = _events(engine, ClipsCritiqued)
    assert [c.attempts for c in critiqued] == [[1, 2], [3, 4]] and critiqued[0].better_attempt == 2
    assert critiqued[1].before == rewrites[0].prompt and critiqued[1].after == rewrites[1].prompt
    accepted = _events(engine, StepAccepted)[0]
    assert accepted.attempt == 5 and accepted.by == "method"
    assert state.cost.vgm_seconds == 30.0 and state.cost.clips == 5 and state.cost.vlm_calls == 2
    assert frame_code(engine.artifacts.load_clip(state.finished.final_video)[0])[0] == 5


def test_videotpo_with_a_vlm_that_cannot_critique_fails_with_a_clear_message(tmp_path):
    class NoCritic:
        info = BackendInfo(name="plain-vlm", role="vlm", simulated=True)

        def select(self, request):  # pragma: no cover - not reached
            raise AssertionError

    engine = start_engine(ArtifactFolder(tmp_path), NoCritic(), prompt=TASK, **parse_method("videotpo").updates)
    engine.run()
    failure = engine.state.failures[-1]
    assert failure.role == "critique" and "cannot critique" in failure.message
    assert engine.state.cost.clips == 2, "the first round was generated before the critique failed"


def test_a_baseline_session_refuses_loop_decisions_but_takes_notes(tmp_path):
    engine = _run(tmp_path, ScriptedVLM(), "pass@2")
    engine2 = start_engine(ArtifactFolder(tmp_path / "b"), ScriptedVLM(), prompt=TASK, **parse_method("pass@2").updates)
    engine2.step()
    engine2.step()
    with pytest.raises(DecisionError, match="Pass@2 baseline session"):
        engine2.edit_action(1, "something else", "Ada")
    engine.annotate("session", "note", "the selector was right", "Ada")
    assert engine.state.annotations[-1].value == "the selector was right"


def test_plan_only_takes_one_attempt_per_step_and_never_routes(tmp_path):
    vlm = ScriptedVLM(plans=[plan("move left", remaining=2), plan("move up", remaining=1), plan("move right")],
                      verdicts=[reject(0.5), accept(), accept()])
    engine = _run(tmp_path, vlm, "plan-only")
    names = [name for name, _ in vlm.calls]
    assert names == ["plan", "verify", "plan", "verify", "plan", "verify"]
    assert engine.state.steps[0].status == "propagated" and len(engine.state.steps[0].attempts) == 1
    assert engine.state.cost.clips == 3 and engine.state.cost.vgm_seconds == 12.0


def test_verify_only_plans_the_whole_task_once_and_propagates_after_m_rejections(tmp_path):
    vlm = ScriptedVLM(plans=[plan("do everything")], verdicts=[reject(0.0), reject(0.0), reject(0.1)])
    engine = _run(tmp_path, vlm, "verify-only")
    planned = vlm.requests("plan")
    assert len(planned) == 1 and planned[0].is_last and planned[0].max_steps == 1
    assert [name for name, _ in vlm.calls].count("route") == 0, "the router is off: no split can add steps"
    state = engine.state
    assert len(state.steps) == 1 and state.steps[0].status == "propagated" and state.cost.clips == 3
    assert state.finished is not None and state.cost.vgm_seconds == 18.0


def test_fixed_n_tells_the_planner_to_take_every_step(tmp_path):
    vlm = ScriptedVLM(plans=[plan("a"), plan("b"), plan("c")], verdicts=[accept(), accept(), accept()])
    engine = _run(tmp_path, vlm, "fixed-n")
    assert all(r.exact_steps for r in vlm.requests("plan")) and len(engine.state.steps) == 3


def test_no_router_propagates_the_best_attempt_after_m_rejections(tmp_path):
    vlm = ScriptedVLM(plans=[plan("a", remaining=1), plan("b")],
                      verdicts=[reject(0.3), reject(0.6), reject(0.1), accept()])
    engine = _run(tmp_path, vlm, "no-router:n=2")
    first = engine.state.steps[0]
    assert first.status == "propagated" and first.result_attempt == 2, "the largest good_fraction goes on"
    assert "route" not in [name for name, _ in vlm.calls]


def test_the_full_method_routes_after_m_rejections(tmp_path):
    from scripted import route

    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0), reject(0.0), reject(0.0), accept()],
                      routes=[route("fallback")])
    engine = _run(tmp_path, vlm, "collabvr:n=1")
    assert [name for name, _ in vlm.calls].count("route") == 1
    assert engine.state.steps[0].attempts[-1].purpose == "fallback"


def test_method_names_map_to_their_configs():
    assert parse_method("single").config().samples == 1
    assert parse_method("pass@4").config().method == "resample" and parse_method("pass@4").config().samples == 4
    tpo = parse_method("videotpo").config()
    assert (tpo.method, tpo.tpo_rounds, tpo.tpo_clips) == ("videotpo", 2, 2)
    assert parse_method("plan-only").config().m == 1 and not parse_method("plan-only").config().router
    verify = parse_method("verify-only:m=5").config()
    assert (verify.n_max, verify.m, verify.router) == (1, 5, False)
    assert parse_method("verify-only:m=5").name == "verify-only:m=5" and parse_method("verify-only:m=5").slug == "verify-only-m5"
    assert parse_method("fixed-n").config().exact_steps
    assert [m.name for m in parse_methods("all")] == list(DEFAULT_METHODS)


@pytest.mark.parametrize("text, message", [("pass@0", "k between"), ("magic", "unknown method"),
                                          ("collabvr:x=2", "budget override"), ("single,single", "twice"),
                                          ("collabvr:m=99", "less than or equal")])
def test_bad_method_names_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_methods(text)


# ----- the simulated VLM's part in the baselines --------------------------------------------------------

def test_simulated_sessions_of_every_method_finish_with_the_paper_cost(tmp_path):
    from collabvr.config import LoopConfig
    from collabvr.sim.calibration import run_session, world
    from collabvr.state import fold

    expected = {"single": 6.0, "pass@4": 24.0, "videotpo": 30.0}
    for name, seconds in expected.items():
        state = fold(run_session("blocks", "easy", 2, parse_method(name).config(LoopConfig()), world("paper"),
                                 tmp_path / name))
        assert state.finished is not None and state.finished.score is not None
        assert state.cost.vgm_seconds == seconds


def test_the_simulated_critic_appends_the_corrections_of_the_clips_it_finds_wrong(tmp_path):
    from collabvr.config import LoopConfig
    from collabvr.sim.calibration import run_session, world
    from collabvr.state import fold

    for seed in range(6):
        events = run_session("maze", "hard", seed, parse_method("videotpo").config(LoopConfig()), world("paper"),
                             tmp_path / str(seed))
        for critique in [e for e in events if isinstance(e, ClipsCritiqued)]:
            assert critique.after.startswith(critique.before)
            added = critique.after[len(critique.before):]
            if added.strip():  # a correction already in the prompt is not appended again
                assert "weakness" in critique.critique and "Correction:" in added
            if "weakness" not in critique.critique:
                assert not added.strip()
        assert fold(events).finished is not None


def test_the_simulated_planner_of_fixed_n_asks_for_a_still_clip_once_the_task_is_done(tmp_path):
    from collabvr.config import LoopConfig
    from collabvr.sim.calibration import run_session, world
    from collabvr.sim.vlm import HOLD_INSTRUCTION
    from collabvr.state import fold

    config = parse_method("fixed-n").config(LoopConfig())
    states = [fold(run_session("blocks", "easy", seed, config, world("perfect", "perfect"), tmp_path / str(seed)))
              for seed in range(4)]
    assert all(len(s.steps) == 3 and not any(step.plan.task_complete for step in s.steps) for s in states)
    held = [step for s in states for step in s.steps if step.plan.instruction == HOLD_INSTRUCTION]
    assert held, "an easy task done before step 3 is held still until step 3"
    assert all(s.finished.success for s in states), "a perfect world keeps the solved scene through the still clips"


def test_replay_accepts_a_baselines_history_and_refuses_a_forged_critique(tmp_path):
    from collabvr.backends import CriterionScore, RubricJudgement
    from collabvr.events import VideoJudged
    from collabvr.replay import ImpossibleHistory, check_history

    rewrites = [Critique(better_index=0, critique="c", prompt="Stack the blocks, red on top."),
                Critique(better_index=1, critique="c", prompt="Stack them, red on top.")]
    engine = _run(tmp_path, ScriptedVLM(critiques=rewrites), "videotpo")
    events = engine.store.read(engine.session_id)
    judged = VideoJudged(actor="bench-judge", judge="a judge", rubric="1. done (0 or 1)", score=1.0, success=True,
                         judgement=RubricJudgement(criteria=[CriterionScore(criterion="done", score=1, max_score=1,
                                                                            reason="it is")]))
    assert check_history(events + [judged]).judged is not None
    pass_events = _run(tmp_path / "p", ScriptedVLM(), "pass@2").store
    assert check_history(pass_events.read(pass_events.session_ids()[0])).finished is not None
    index = next(i for i, e in enumerate(events) if isinstance(e, ClipsCritiqued))
    forged = events[:index] + [events[index].model_copy(update={"attempts": [2, 3]})] + events[index + 1:]
    with pytest.raises(ImpossibleHistory, match="not the round that was due"):
        check_history(forged)
    with pytest.raises(ImpossibleHistory, match="had not finished"):
        check_history(events[:index] + [judged])

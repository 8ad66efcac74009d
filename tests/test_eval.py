"""The benchmark's numbers against hand-computed values, the bench and reliability commands, the bench runner
on processes and on a local Ray (the same table as in process), and the overhead measurement."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cli import main
from collabvr.artifacts import ArtifactFolder
from collabvr.eval.methods import parse_methods
from collabvr.eval.reliability import reliability, table
from collabvr.eval.runner import BenchBackends, SampleResult, jobs_for, ray_available, run_bench
from collabvr.eval.scoring import bootstrap_ci, comparisons, paired, summaries, summarize
from collabvr.eval.suites import folder_suite, parse_seeds, sim_suite
from collabvr.events import attempt_target
from collabvr.sim.calibration import verifier_accuracy
from collabvr.store import MemoryEventStore
from storage import SQLiteEventStore
from scripted import ScriptedVLM, accept, plan, reject, start_engine


def _row(method: str, seed: int, score: float | None, success: bool | None = None, seconds: float = 6.0,
         group: str = "maze") -> SampleResult:
    return SampleResult(method=method, group=group, level="easy", seed=seed, key=f"{group}/easy/{seed}",
                        session_id=f"{method}-{seed}", finished=score is not None, score=score,
                        success=success if success is not None else score == 1.0, vgm_seconds=seconds, clips=1,
                        vlm_calls=0, wall_s=0.1, simulated=True)


# ----- scoring ------------------------------------------------------------------------------------------

def test_the_bootstrap_interval_of_identical_scores_is_that_score():
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    assert bootstrap_ci([]) is None
    low, high = bootstrap_ci([0.0, 1.0] * 20)
    assert 0.3 < low < 0.5 < high < 0.7
    assert bootstrap_ci([0.0, 1.0] * 20) == (low, high), "a fixed seed gives the same interval"


def test_a_summary_counts_an_unscored_sample_as_zero_and_unsolved():
    s = summarize([_row("single", 0, 1.0), _row("single", 1, 0.0), _row("single", 2, 0.5), _row("single", 3, None)])
    assert s.n == 4 and s.score == pytest.approx(0.375) and s.success_rate == 0.25 and s.unscored == 1
    assert s.vgm_seconds == 6.0


def test_summaries_give_each_family_then_the_overall_row_per_method():
    rows = [_row("a", 0, 1.0), _row("a", 0, 0.0, group="blocks"), _row("b", 0, 0.5)]
    table = [(s.method, s.group, s.score) for s in summaries(rows, by="family")]
    assert table == [("a", "maze", 1.0), ("a", "blocks", 0.0), ("a", "all", 0.5), ("b", "maze", 0.5),
                     ("b", "all", 0.5)]


def test_paired_comparison_counts_wins_each_way_and_gives_the_sign_test():
    a = [_row("full", s, 1.0) for s in range(5)] + [_row("full", 5, 0.5)]
    b = [_row("single", s, 0.0) for s in range(5)] + [_row("single", 5, 0.5)]
    result = paired(a + b, "full", "single")
    assert (result.n, result.a_wins, result.b_wins, result.ties) == (6, 5, 0, 1)
    assert result.p_value == pytest.approx(0.0625)  # two-sided: 2 * 0.5 ** 5
    assert result.mean_difference == pytest.approx(5 / 6)
    assert paired(a, "full", "single").p_value is None
    assert [(p.a, p.b) for p in comparisons(a + b, reference="full")] == [("full", "single")]


def test_seed_lists_and_the_simulated_suite():
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    with pytest.raises(ValueError):
        parse_seeds("3-1")
    suite = sim_suite([0, 1])
    assert len(suite) == 12 and suite[0].key == "maze/easy/0"
    with pytest.raises(ValueError, match="unknown task family"):
        sim_suite([0], families=["chess"])


def test_a_vbvr_folder_is_read_as_a_suite(tmp_path):
    import numpy as np

    from collabvr import media

    for index in ("00000", "00001"):
        folder = tmp_path / "In-Domain_50" / "O-30_bookshelf" / index
        folder.mkdir(parents=True)
        media.save_png(np.zeros((16, 16, 3), dtype=np.uint8), folder / "first_frame.png")
        (folder / "prompt.txt").write_text("Put the green book on the shelf.")
    samples = folder_suite(tmp_path)
    assert [s.key for s in samples] == ["In-Domain_50/O-30_bookshelf/0", "In-Domain_50/O-30_bookshelf/1"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no task folder"):
        folder_suite(tmp_path / "empty")


# ----- reliability --------------------------------------------------------------------------------------

def _labelled_session(tmp_path):
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0), reject(0.0), reject(0.0), accept()])
    engine = start_engine(ArtifactFolder(tmp_path), vlm, n_max=1, m=4, router=False)
    engine.run()
    ada = ["accept", "accept", "reject", "reject"]
    bob = ["accept", "reject", "reject", "reject"]
    for attempt, (a, b) in enumerate(zip(ada, bob), start=1):
        engine.annotate(attempt_target(1, attempt), "D2", a, "Ada")
        engine.annotate(attempt_target(1, attempt), "D2", b, "Bob")
    engine.annotate("session", "D1", 2, "Ada")
    return engine


def test_person_to_person_kappa_matches_the_hand_computed_value(tmp_path):
    engine = _labelled_session(tmp_path)
    report = reliability([engine.store.read(engine.session_id)])
    (pair,) = report.human_human
    assert (pair.first, pair.second, pair.d2.n) == ("Ada", "Bob", 4)
    # p_o = 3/4; p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2
    assert pair.d2.agreement == 0.75 and pair.d2.kappa == pytest.approx(0.5)
    assert pair.d2.matrix == [[1, 1], [0, 2]]
    # The VLM rejected attempts 1-3 and accepted 4; Ada accepted 1-2: her accept-recall is 0, reject-recall 1/2.
    ada = report.by_annotator["Ada"].d2
    assert ada.accept_recall == 0.0 and ada.reject_recall == 0.5
    assert report.by_annotator["Ada"].d1.mae == 1.0, "the VLM planned 1 step, Ada said 2"
    assert set(report.by_vlm) == {"scripted-vlm"} and report.by_vlm["scripted-vlm"].d2.n == 8
    assert "Ada vs Bob" in table(report)


def test_the_verifier_is_measured_against_the_simulators_ground_truth_with_no_person(tmp_path):
    from collabvr.config import LoopConfig
    from collabvr.sim.calibration import run_session, world

    logs = [run_session("maze", "hard", seed, LoopConfig(), world("paper"), tmp_path / str(seed)) for seed in range(3)]
    report = reliability(logs)
    (name, d2), = report.ground_truth.items()
    assert name.startswith("sim-vlm/")
    expected = {}
    for events in logs:
        for key, n in verifier_accuracy(events).counts.items():
            expected[key] = expected.get(key, 0) + n
    assert d2.n == sum(expected.values())
    assert d2.confusion["accept"]["accept"] == expected.get(("accept", "accept"), 0)
    assert d2.confusion["reject"]["accept"] == expected.get(("reject", "accept"), 0)
    assert report.overall.d2.n == 0 and any("no person" in n for n in report.notes)


def test_the_reliability_command_prints_the_table_and_writes_its_files(tmp_path, capsys):
    store = SQLiteEventStore(tmp_path / "db.sqlite")
    vlm = ScriptedVLM(plans=[plan("a")], verdicts=[reject(0.0), accept()])
    engine = start_engine(ArtifactFolder(tmp_path / "artifacts"), vlm, store=store, n_max=1, m=2, router=False)
    engine.run()
    engine.annotate(attempt_target(1, 1), "D2", "accept", "Ada")
    engine.annotate(attempt_target(1, 1), "D3", 3, "Ada")
    assert main(["reliability", "--db", str(tmp_path / "db.sqlite"), "--out", str(tmp_path / "rel")]) == 0
    out = capsys.readouterr().out
    assert "people vs VLM" in out and "annotator Ada" in out
    assert {p.name for p in (tmp_path / "rel").iterdir()} == {"reliability.json", "reliability.csv", "reliability.html"}
    assert main(["reliability", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no database" in capsys.readouterr().err


# ----- the bench command and runner --------------------------------------------------------------------

TINY = ["--methods", "single,pass@2", "--seeds", "0", "--families", "maze,shapes", "--difficulties", "easy"]


def test_bench_records_every_sample_as_a_session_and_skips_them_on_a_rerun(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", *TINY, "--out", str(out), "--json", "--no-progress"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["simulated"] and len(document["samples"]) == 4
    assert {s["method"] for s in document["summary"]} == {"single", "pass@2"}
    for name in ("samples.csv", "summary.csv", "paired.csv", "results.json", "figure.html"):
        assert (out / name).is_file()
    store = SQLiteEventStore(out / "collabvr.sqlite")
    ids = set(store.session_ids())
    assert ids == {s["session_id"] for s in document["samples"]}
    run = store.bench_run(document["run_id"])
    assert run.document["samples"] == document["samples"]
    single = next(s for s in document["samples"] if s["method"] == "single")
    assert single["vgm_seconds"] == 6.0 and single["score"] is not None
    assert main(["bench", *TINY, "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "[SIMULATED]" in text and "pass@2" in text and set(store.session_ids()) == ids


@pytest.mark.parametrize("args, message", [
    (["--methods", "pass@x"], "k between"), (["--seeds", "nine"], "seeds are like"),
    (["--suite", "/nonexistent/suite"], "does not exist"), (["--vgm-profile", "dreamy"], "unknown simulated VGM"),
    (["--workers", "0"], "at least 1"), ([], "needs --out")])
def test_bench_refuses_bad_input_with_a_message(tmp_path, capsys, args, message):
    argv = ["bench", *args] + ([] if message == "needs --out" else ["--out", str(tmp_path / "o")])
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def _tiny_jobs():
    return jobs_for(parse_methods("single,pass@2,collabvr:n=2"), sim_suite([0], families=["blocks"],
                                                                          difficulties=["easy"]), BenchBackends())


def _table(results):
    return [replace(s, wall_s=0.0) for s in summaries(results)]


def test_worker_processes_give_the_same_table_as_the_run_in_process(tmp_path):
    local = run_bench(_tiny_jobs(), MemoryEventStore(), ArtifactFolder(tmp_path / "a"))
    store = MemoryEventStore()
    pooled = run_bench(_tiny_jobs(), store, ArtifactFolder(tmp_path / "b"), workers=2)
    assert _table(pooled) == _table(local)
    assert all(ArtifactFolder(tmp_path / "b").path(a).is_file()
               for sid in store.session_ids() for e in store.read(sid) for a in _artifacts(e))


def _artifacts(event):
    from collabvr.events import artifacts_in

    return list(artifacts_in(event))


@pytest.mark.skipif(bool(ray_available()), reason="Ray is not installed (pip install ray); it is in requirements.txt")
def test_ray_tasks_on_a_local_ray_give_the_same_table_as_the_run_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    local = run_bench(_tiny_jobs(), MemoryEventStore(), ArtifactFolder(tmp_path / "a"))
    store = SQLiteEventStore(tmp_path / "ray.sqlite")
    remote = run_bench(_tiny_jobs(), store, ArtifactFolder(tmp_path / "b"), workers=2, executor="ray")
    assert _table(remote) == _table(local)
    assert [r.session_id for r in remote] == [r.session_id for r in local]
    assert len(store.session_ids()) == len(local), "the driver appended every session the Ray workers ran"


# ----- overhead -----------------------------------------------------------------------------------------

def test_the_overhead_measurement_compares_an_attempt_with_the_encode_alone():
    from collabvr.eval.overhead import measure, overhead_text, synthetic_clip

    result = measure("tiny", synthetic_clip(64, 48, 17), 8.0, repeats=1)
    assert result.encode_s > 0 and result.attempt_s > 0
    assert result.ratio == pytest.approx(result.attempt_s / result.encode_s, rel=0.01)
    assert set(result.commands_s) == {"plan", "generate", "verify", "accept", "finish"}
    assert "tiny" in overhead_text([result])

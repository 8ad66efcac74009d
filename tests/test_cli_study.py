"""`python -m collabvr study ...`, run as a user runs it: make a study, follow it, print its figures, export it."""

from __future__ import annotations

import json

from collabvr.engine import Engine
from collabvr import registry
from collabvr.state import fold
from storage.data_dir import open_data_dir
from storage.study_store import StudyStore
from test_cli import cli


def test_study_create_status_figures_and_export(tmp_path):
    data = tmp_path / "data"
    for seed in ("0", "4"):
        result = cli("run", "--family", "maze", "--seed", seed, "--n-max", "2", "--m", "2", "--vgm-profile", "legacy",
                     "--verifier-profile", "gemini-2.5-pro", "--data-dir", str(data), "--json")
        assert result.returncode == 0, result.stderr
    made = cli("study", "create", "pilot", "--sessions", "all", "--labels", "d1,d2,notes", "--per-item", "2",
               "--annotators", "ana,bo", "--data-dir", str(data), "--json")
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert report["by_label"]["D1"] == 2 and report["items"] == report["by_label"]["D1"] + report["by_label"]["D2"]

    # ana labels two items through the queue, as the app would
    store, artifacts = open_data_dir(data)
    studies = StudyStore(store)
    engines = {}

    def annotate(session_id, target, label, value, actor, study=None):
        if session_id not in engines:
            started = fold(store.read(session_id)).started
            engines[session_id] = Engine(store, artifacts, *registry.backends_for(started.vlm, started.vgm), session_id)
        return engines[session_id].annotate(target, label, value, actor, study=study)

    for _ in range(2):
        item = studies.open_next("pilot", "ana").item
        studies.label("pilot", item.key, 2 if item.label == "D1" else "accept", "ana", annotate)
    studies.open_next("pilot", "bo")

    status = cli("study", "status", "pilot", "--data-dir", str(data), "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["labels"] == 2 and shown["per_annotator"] == {"ana": 2, "bo": 0} and "bo" in shown["held"]
    text = cli("study", "status", "pilot", "--data-dir", str(data))
    assert "0 of" in text.stdout and "ana: 2 labels" in text.stdout and "bo: 0 labels (has" in text.stdout

    figures = cli("study", "figures", "pilot", "--resamples", "50", "--data-dir", str(data))
    assert figures.returncode == 0, figures.stderr
    assert "Table 6" in figures.stdout and "Table 7" in figures.stdout and "[SIMULATED sessions]" in figures.stdout

    out = tmp_path / "pilot.jsonl"
    exported = cli("study", "export", "pilot", "--out", str(out), "--data-dir", str(data))
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == report["items"] and sum(len(r["labels"]) for r in rows) == 2
    assert all(set(r) >= {"item", "labels", "adjudicated", "final", "vlm_value", "truth"} for r in rows)

    listed = cli("study", "list", "--data-dir", str(data), "--json")
    assert [r["name"] for r in json.loads(listed.stdout)] == ["pilot"]


def test_study_commands_refuse_bad_input_with_exit_status_2(tmp_path):
    data = tmp_path / "data"
    result = cli("run", "--family", "maze", "--seed", "0", "--n-max", "1", "--m", "1", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    for args, why in ((("create", "bad name", "--sessions", "all"), "not a valid study name"),
                      (("create", "s", "--sessions", "nope"), "no session 'nope'"),
                      (("create", "s", "--sessions", "all", "--labels", "d9"), "unknown label"),
                      (("status", "nope"), "no study 'nope'"),
                      (("export", "nope", "--out", str(tmp_path / "x.txt")), "must end in .jsonl")):
        refused = cli("study", *args, "--data-dir", str(data))
        assert refused.returncode == 2 and why in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert "study" in cli("--help").stdout

"""The studio's plotly charts carry the numbers of the session or report, and empty input never raises."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from collabvr.agreement import agreement, d2_report
from collabvr.artifacts import ArtifactFolder
from collabvr.config import LoopConfig
from collabvr.engine import Engine
from collabvr.events import TaskSpec, attempt_target
from collabvr.store import MemoryEventStore
from ui.charts import NO_CLIPS, NO_LABELS, NO_VERDICTS, confusion_chart, vgm_seconds_chart, verdicts_chart

from scripted import ScriptedVGM, ScriptedVLM, accept, plan, reject


TASK = TaskSpec(prompt="Sort the blocks.", source="upload")
IMAGE = np.full((32, 64, 3), 200, dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    return ArtifactFolder(tmp_path / "artifacts")


@pytest.fixture
def session(folder) -> Engine:
    """Step 1: rejected, overridden to accept by ana; step 2: rejected, then accepted. ScriptedVGM clips last
    round(s * 8) + 1 frames at 8 fps: 6.125 s on step 1, 3.125 s later."""
    vlm = ScriptedVLM(plans=[plan("a"), plan("b")], verdicts=[reject(0.4), reject(0.0), accept()])
    engine = Engine.start(MemoryEventStore(), folder, vlm, ScriptedVGM(), task=TASK, input_image=IMAGE,
                          config=LoopConfig(n_max=2, breakpoints=("on_reject",)), seed=3)
    engine.run()
    engine.override_verdict(1, 1, "accept", actor="ana")
    engine.set_breakpoints([], actor="ana")
    engine.run()
    return engine


def annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_vgm_seconds_chart_plots_the_cumulative_seconds_per_step(session):
    fig = vgm_seconds_chart(session.state)
    (trace,) = fig.data
    assert list(trace.x) == [1, 2]
    assert list(trace.y) == pytest.approx([6.0, 6.0 + 2 * 3.0])  # nominal clip lengths
    assert fig.layout.xaxis.title.text == "step" and fig.layout.yaxis.title.text == "generated seconds"
    assert "seconds" in fig.layout.title.text


def test_verdicts_chart_stacks_vlm_verdicts_and_marks_overrides(session):
    fig = verdicts_chart(session.state)
    by_name = {trace.name: trace for trace in fig.data}
    assert list(by_name["VLM accept"].y) == [0, 1]
    assert list(by_name["VLM reject"].y) == [1, 1]
    # A marker only where a person overrode: none drawn at 0 for step 2.
    assert list(by_name["overridden by a person"].x) == [1] and list(by_name["overridden by a person"].y) == [1]
    assert list(by_name["VLM accept"].x) == [1, 2]
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.title.text == "attempts"


def test_verdicts_chart_of_a_session_without_overrides_draws_no_override_markers(folder):
    vlm = ScriptedVLM(plans=[plan("step one")], verdicts=[accept()])
    engine = Engine.start(MemoryEventStore(), folder, vlm, ScriptedVGM(), task=TASK, input_image=IMAGE,
                          config=LoopConfig(n_max=1, m=1))
    engine.run()
    names = [trace.name for trace in verdicts_chart(engine.state).data]
    assert names == ["VLM accept", "VLM reject"]


def test_the_confusion_charts_title_is_short_and_its_figures_sit_under_it():
    fig = confusion_chart(d2_report([("accept", "accept"), ("reject", "reject")]))
    title = fig.layout.title.text
    assert title.split("<br>")[0] == "Human vs VLM (D2)" and "<sup>n=2" in title


def test_confusion_chart_puts_people_on_y_and_the_vlm_on_x_with_counts():
    pairs = ([("accept", "accept")] * 106 + [("reject", "accept")] * 43 + [("accept", "reject")] * 19
             + [("reject", "reject")] * 82)
    fig = confusion_chart(d2_report(pairs))
    (heatmap,) = fig.data
    assert [list(row) for row in heatmap.z] == [[106, 19], [43, 82]]  # rows: human accept, human reject
    assert list(heatmap.x) == ["accept", "reject"] and list(heatmap.y) == ["accept", "reject"]
    assert fig.layout.xaxis.title.text == "VLM verdict" and fig.layout.yaxis.title.text == "human verdict"
    assert "n=250" in fig.layout.title.text and "kappa 0.504" in fig.layout.title.text
    assert "agreement 0.752" in fig.layout.title.text


def test_confusion_chart_takes_a_whole_report_and_shows_undefined_kappa_as_na(session):
    session.annotate(attempt_target(1, 1), "D2", "reject", actor="bo")  # VLM reject
    fig = confusion_chart(agreement([session.state]))
    assert [list(row) for row in fig.data[0].z] == [[0, 0], [0, 1]]
    assert "kappa n/a" in fig.layout.title.text  # one pair: kappa is undefined


def test_confusion_chart_without_labels_says_so(session):
    fig = confusion_chart(agreement([session.state]))
    assert fig.data == () and annotation_texts(fig) == [NO_LABELS]


def test_charts_of_a_session_without_clips_say_so(folder):
    state = Engine.start(MemoryEventStore(), folder, ScriptedVLM(), ScriptedVGM(), task=TASK,
                         input_image=IMAGE).state
    assert annotation_texts(vgm_seconds_chart(state)) == [NO_CLIPS]
    assert annotation_texts(verdicts_chart(state)) == [NO_VERDICTS]
    assert vgm_seconds_chart(state).data == () and verdicts_chart(state).data == ()

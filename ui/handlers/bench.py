"""The results view of benchmark runs (python -m collabvr bench): the runs in the store, one run's summary
table, its score-against-cost figure, and its samples, each naming the session to open."""

from __future__ import annotations

from typing import Any

from collabvr.eval.report import cost_figure, summaries_of
from collabvr.eval.scoring import Summary
from ui import render
from ui.handlers.common import Services, ok, problem

SAMPLE_COLUMNS = ["session", "method", "task", "score", "solved", "VGM s", "VLM calls"]


def bench_runs(svc: Services) -> list[str]:
    """The ids of the recorded benchmark runs, most recent first."""
    return [row.id for row in svc.store.bench_runs()]


def bench_view(svc: Services, run_id: str | None) -> tuple[str, Any, list[list[Any]], str]:
    """(summary table HTML, figure, sample rows, message) of one run; a message starting with ⚠ when there
    is no such run."""
    if not run_id:
        runs = bench_runs(svc)
        if not runs:
            command = (f"python -m collabvr bench --methods single,pass@4,collabvr --seeds 0-4 "
                       f"--out bench-out --data-dir {svc.data_dir}")
            # A first visit is not an error: the page says how to record a run, and the message line is a hint.
            return (render.empty_bench(command), None, [],
                    "No benchmark run here yet: the command below records one.")
        run_id = runs[0]
    try:
        run = svc.store.bench_run(run_id)
    except KeyError:
        return render.empty_bench(), None, [], problem(f"no benchmark run {run_id!r} in this store")
    document = run.document
    rows: list[Summary] = summaries_of(document)
    simulated = bool(document.get("simulated"))
    figure = cost_figure(rows, simulated=simulated)
    samples = [[s["session_id"], s["method"], s["key"], _score(s["score"]),
                {True: "yes", False: "no", None: "-"}[s["success"]], s["vgm_seconds"], s["vlm_calls"]]
               for s in document.get("samples", [])]
    html = render.bench_table(run.id, rows, document.get("spec", {}), simulated)
    return html, figure, samples, ok(f"benchmark run {run.id}: {len(samples)} samples; click a sample to open "
                                     "its session")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

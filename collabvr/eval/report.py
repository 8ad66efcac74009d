"""A benchmark's files: the samples and the summaries as CSV, everything as JSON, and the paper's figure
(score against seconds of video generated per sample, one point per method, with its 95% interval) as a
self-contained plotly HTML page. The app's results view draws the same figure (`cost_figure`)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from collabvr.eval.runner import SampleResult
from collabvr.eval.scoring import OVERALL, Paired, Summary, comparisons, summaries

SIMULATED_NOTE = "SIMULATED: the simulated world's models and tasks, not real ones"


def bench_document(results: Sequence[SampleResult], spec: dict[str, Any]) -> dict[str, Any]:
    """Everything a benchmark run says, JSON-able: what ran, each sample, the summaries, the comparisons."""
    simulated = any(r.simulated for r in results)
    return {
        "simulated": simulated,
        "note": SIMULATED_NOTE if simulated else "",
        "spec": spec,
        "samples": [asdict(r) for r in results],
        "summary": [asdict(s) for s in summaries(results, by="family")],
        "summary_by_level": [asdict(s) for s in summaries(results, by="group")],
        "paired": [asdict(p) for p in comparisons(results)],
    }


def cost_figure(rows: Sequence[Summary], title: str = "Score against generated video per sample",
                simulated: bool = False) -> Any:
    """Score (mean, 95% interval) against mean VGM seconds per sample, one point per method (overall rows)."""
    import plotly.graph_objects as go

    overall = [s for s in rows if s.group == OVERALL]
    fig = go.Figure()
    for s in overall:
        fig.add_trace(go.Scatter(
            x=[s.vgm_seconds], y=[s.score], mode="markers+text", name=s.method, text=[s.method],
            textposition="top center",
            error_y={"type": "data", "symmetric": False, "array": [s.ci_high - s.score],
                     "arrayminus": [s.score - s.ci_low]},
            hovertemplate=(f"{s.method}<br>score %{{y:.3f}} [{s.ci_low:.3f}, {s.ci_high:.3f}]<br>"
                           f"%{{x:.1f}} s of video per sample<br>success {s.success_rate:.1%}<br>"
                           f"{s.vlm_calls:.2f} VLM calls<extra></extra>")))
    label = f"[SIMULATED] {title}" if simulated else title
    fig.update_layout(title=label, xaxis_title="seconds of video generated per sample (VGM cost)",
                      yaxis_title="mean score", showlegend=False, template="plotly_white", height=480)
    return fig


def write_reports(document: dict[str, Any], out: Path) -> dict[str, Path]:
    """samples.csv, summary.csv (per family and overall), summary_by_level.csv (per family and difficulty),
    paired.csv, results.json and figure.html in `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"samples": out / "samples.csv", "summary": out / "summary.csv",
             "summary_by_level": out / "summary_by_level.csv", "paired": out / "paired.csv",
             "json": out / "results.json", "figure": out / "figure.html"}
    _write_csv(paths["samples"], document["samples"])
    _write_csv(paths["summary"], document["summary"])
    _write_csv(paths["summary_by_level"], document["summary_by_level"])
    _write_csv(paths["paired"], document["paired"])
    paths["json"].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    rows = [Summary(**s) for s in document["summary"]]
    figure = cost_figure(rows, simulated=bool(document.get("simulated")))
    paths["figure"].write_text(figure.to_html(include_plotlyjs=True, full_html=True), encoding="utf-8")
    return paths


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summaries_of(document: dict[str, Any]) -> list[Summary]:
    return [Summary(**s) for s in document["summary"]]


def paired_of(document: dict[str, Any]) -> list[Paired]:
    return [Paired(**p) for p in document["paired"]]

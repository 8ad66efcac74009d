"""Plotly figures for the studio: generated seconds per step, verdicts per step, and the D2 confusion matrix.

Pure functions: each takes a folded `SessionState` or an agreement report and returns a `go.Figure`; none
reads files or calls a model. Empty input gives a figure that says why it is empty (an annotation) instead of
raising, so a page can render a chart for a session that has not generated anything yet.
"""

from __future__ import annotations

import plotly.graph_objects as go

from collabvr.agreement import AgreementReport, D2Report, cumulative_vgm_seconds, verdicts_per_step
from collabvr.study_stats import StudyFigures
from collabvr.state import SessionState


NO_LABELS = "no labels yet"
NO_CLIPS = "no clips generated yet"
NO_VERDICTS = "no verified clips yet"

ACCEPT_COLOUR = "#2e7d32"
REJECT_COLOUR = "#c62828"
OVERRIDE_COLOUR = "#1565c0"


def _empty(title: str, message: str, x_title: str = "", y_title: str = "") -> go.Figure:
    """A figure with no traces and `message` in the middle; axes hidden so nothing looks like data."""
    fig = go.Figure()
    fig.update_layout(title=title, xaxis={"visible": False, "title": x_title},
                      yaxis={"visible": False, "title": y_title})
    fig.add_annotation(text=message, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font={"size": 16})
    return fig


def vgm_seconds_chart(state: SessionState) -> go.Figure:
    """Cumulative seconds of video generated after each step (all attempts, retries included)."""
    title = "Generated video seconds, cumulative"
    series = cumulative_vgm_seconds(state)
    if not series or series[-1][1] == 0:
        return _empty(title, NO_CLIPS, "step", "generated seconds")
    steps = [step for step, _ in series]
    seconds = [value for _, value in series]
    fig = go.Figure(go.Scatter(x=steps, y=seconds, mode="lines+markers", name="generated seconds",
                               hovertemplate="step %{x}: %{y:.2f} s<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "step", "tickmode": "array", "tickvals": steps},
                      yaxis={"title": "generated seconds", "rangemode": "tozero"})
    return fig


def verdicts_chart(state: SessionState) -> go.Figure:
    """The VLM's accepts and rejects per step as stacked bars, and people's overrides as markers, only at
    the steps that have any (a marker at 0 reads as data where there is none).

    Overrides are not stacked on the bars: every overridden attempt already has a VLM verdict, so stacking
    would count it twice and make the bar taller than the number of attempts.
    """
    title = "Verifier verdicts per step"
    rows = verdicts_per_step(state)
    if not any(r["vlm_accept"] or r["vlm_reject"] for r in rows):
        return _empty(title, NO_VERDICTS, "step", "attempts")
    steps = [r["step"] for r in rows]
    traces = [
        go.Bar(x=steps, y=[r["vlm_accept"] for r in rows], name="VLM accept", marker_color=ACCEPT_COLOUR),
        go.Bar(x=steps, y=[r["vlm_reject"] for r in rows], name="VLM reject", marker_color=REJECT_COLOUR),
    ]
    overridden = [r for r in rows if r["human_override"]]
    if overridden:
        traces.append(go.Scatter(x=[r["step"] for r in overridden], y=[r["human_override"] for r in overridden],
                                 name="overridden by a person", mode="markers",
                                 marker={"symbol": "diamond", "size": 12, "color": OVERRIDE_COLOUR}))
    fig = go.Figure(traces)
    fig.update_layout(title=title, barmode="stack",
                      xaxis={"title": "step", "tickmode": "array", "tickvals": steps},
                      yaxis={"title": "attempts", "rangemode": "tozero", "dtick": 1})
    return fig


def confusion_chart(report: AgreementReport | D2Report) -> go.Figure:
    """Heatmap of the D2 confusion matrix: people's verdict on y, the VLM's own verdict on x, counts in the
    cells. A short title, with n, agreement and kappa (or "n/a" where a statistic is undefined) on a line of
    their own under it, so that neither is cut off in a chart a third of the page wide."""
    d2 = report.d2 if isinstance(report, AgreementReport) else report
    if d2.n == 0:
        return _empty("Human vs VLM (D2)", NO_LABELS, "VLM verdict", "human verdict")
    summary = [f"n={d2.n}", f"agreement {_fmt(d2.agreement)}", f"kappa {_fmt(d2.kappa)}"]
    fig = go.Figure(go.Heatmap(
        z=d2.matrix, x=d2.labels, y=d2.labels, text=d2.matrix, texttemplate="%{text}",
        colorscale="Blues", zmin=0, showscale=False,
        hovertemplate="human %{y}, VLM %{x}: %{z}<extra></extra>",
    ))
    fig.update_layout(title={"text": "Human vs VLM (D2)<br><sup>" + ", ".join(summary) + "</sup>"},
                      margin={"t": 80},
                      xaxis={"title": "VLM verdict", "side": "bottom"},
                      # accept first from the top, as the matrix is written
                      yaxis={"title": "human verdict", "autorange": "reversed"})
    return fig


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def study_kappa_chart(figures: StudyFigures) -> go.Figure:
    """Every kappa of a study (annotator pairs, each rater against the VLM and, for simulated clips, against the
    ground truth) and alpha of all annotators, as points with their 95% bootstrap intervals; a figure with no
    interval has no bar, one with no value is left out."""
    title = "Agreement with 95% intervals"
    rows = []
    for p in figures.between + figures.vs_vlm + figures.vs_truth:
        if p.kappa is not None:
            rows.append((f"{p.kind} {p.first} vs {p.second}", p.kappa, p.ci, "κ"))
    for g in figures.groups:
        if g.alpha is not None:
            rows.append((f"{g.kind} all annotators (α)", g.alpha, g.ci, "α"))
    if not rows:
        return _empty(title, NO_LABELS, "value", "")
    names = [r[0] for r in rows]
    values = [r[1] for r in rows]
    plus = [(r[2].high - r[1]) if r[2] else 0 for r in rows]
    minus = [(r[1] - r[2].low) if r[2] else 0 for r in rows]
    fig = go.Figure(go.Scatter(
        x=values, y=names, mode="markers", marker={"size": 10, "color": OVERRIDE_COLOUR},
        error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "kappa / alpha", "range": [-1, 1]},
                      yaxis={"autorange": "reversed", "automargin": True},
                      height=max(300, 60 + 28 * len(rows)), margin={"l": 10})
    return fig


def study_confusion_chart(figures: StudyFigures) -> go.Figure:
    """Table 7 as a heatmap: the D2 consensus against the VLM of the study's first VLM column."""
    columns = [c for c in figures.columns if c.d2.n]
    if not columns:
        return _empty("People's consensus vs the VLM (D2)", NO_LABELS, "VLM verdict", "human verdict")
    return confusion_chart(columns[0].d2)

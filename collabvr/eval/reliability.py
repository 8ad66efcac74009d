"""The paper's reliability study (section 4.4, Tables 6-7) from what a store holds: people's labels against
the VLM's decisions, and, on simulated tasks, the VLM's verdicts against the simulator's ground truth.

- D1 plan depth (exact match, MAE), D2 verification (accept-recall, reject-recall, agreement, reject F1,
  Cohen's kappa, confusion matrix) and D3 suggestion quality (mean, share >= 2, share = 3): overall, per
  VLM backend and per annotator, by the counting rules of collabvr.agreement (which computes them).
- Human-to-human: for every two annotators who both gave a D2 verdict to the same attempts, their
  agreement and Cohen's kappa on those attempts.
- Ground truth (no person needed): every verified attempt of a simulated clip, the VLM's own verdict
  against the verdict a verifier that sees the clip right would give (collabvr.sim.calibration), as the
  same D2 figures, per VLM backend. A real VLM judging simulated clips is measured this way too.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from collabvr.agreement import AgreementReport, D2Report, agreement, d2_report, latest_labels
from collabvr.events import Event
from collabvr.sim.calibration import verifier_accuracy
from collabvr.state import SessionState, fold


@dataclass
class HumanPair:
    """Two annotators' D2 verdicts on the attempts both labelled (the first named is the rows)."""

    first: str
    second: str
    d2: D2Report


@dataclass
class ReliabilityReport:
    sessions: int
    overall: AgreementReport
    by_vlm: dict[str, AgreementReport] = field(default_factory=dict)
    by_annotator: dict[str, AgreementReport] = field(default_factory=dict)
    human_human: list[HumanPair] = field(default_factory=list)
    ground_truth: dict[str, D2Report] = field(default_factory=dict)  # per VLM: its verdicts vs the sim's truth
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reliability(logs: Sequence[Sequence[Event]]) -> ReliabilityReport:
    """The report over sessions given as their event logs."""
    states = [fold(events) for events in logs]
    report = ReliabilityReport(sessions=len(states), overall=agreement(states))
    for name in sorted({s.started.vlm.name for s in states}):
        report.by_vlm[name] = agreement([s for s in states if s.started.vlm.name == name])
    for person in report.overall.annotators:
        report.by_annotator[person] = agreement(states, annotator=person)
    report.human_human = human_pairs(states)
    for name in sorted({s.started.vlm.name for s in states}):
        pairs = truth_pairs([events for events, state in zip(logs, states) if state.started.vlm.name == name])
        if pairs:
            report.ground_truth[name] = d2_report(pairs)
    if not report.overall.annotators:
        report.notes.append("no person has labelled these sessions: only the ground-truth figures of simulated "
                            "clips are shown")
    if not report.ground_truth:
        report.notes.append("no verified simulated clip: there is no ground truth to measure the verifier against")
    return report


def human_pairs(states: Sequence[SessionState]) -> list[HumanPair]:
    """Every two annotators with D2 verdicts on the same attempts: their verdicts as (first, second) pairs."""
    verdicts: dict[tuple[str, str], dict[str, str]] = {}
    for row in latest_labels(states, labels=("D2",)):
        verdicts.setdefault((row.session_id, row.target), {})[row.annotator] = str(row.value)
    people = sorted({person for item in verdicts.values() for person in item})
    pairs = []
    for first, second in itertools.combinations(people, 2):
        both = [(item[first], item[second]) for item in verdicts.values() if first in item and second in item]
        if both:
            pairs.append(HumanPair(first, second, d2_report(both)))
    return pairs


def truth_pairs(logs: Sequence[Sequence[Event]]) -> list[tuple[str, str]]:
    """(ground truth, the VLM's verdict) for every verified simulated clip of the sessions."""
    pairs: list[tuple[str, str]] = []
    for events in logs:
        for (truth, verdict), n in verifier_accuracy(events).counts.items():
            pairs.extend([(truth, verdict)] * n)
    return pairs


# ----- a table and a figure ------------------------------------------------------------------------------

def rows(report: ReliabilityReport) -> list[dict[str, Any]]:
    """One row per group (overall, each VLM, each annotator, each pair of people, each ground truth)."""
    out = [_agreement_row("people vs VLM", "all", report.overall)]
    out += [_agreement_row("people vs VLM", f"VLM {name}", r) for name, r in report.by_vlm.items()]
    out += [_agreement_row("people vs VLM", f"annotator {name}", r) for name, r in report.by_annotator.items()]
    out += [_d2_row("person vs person", f"{p.first} vs {p.second}", p.d2) for p in report.human_human]
    out += [_d2_row("ground truth vs VLM (SIMULATED clips)", f"VLM {name}", d2)
            for name, d2 in report.ground_truth.items()]
    return out


def _d2_row(kind: str, who: str, d2: D2Report) -> dict[str, Any]:
    return {"comparison": kind, "group": who, "d2_n": d2.n, "accept_recall": d2.accept_recall,
            "reject_recall": d2.reject_recall, "agreement": d2.agreement, "reject_f1": d2.reject_f1,
            "kappa": d2.kappa, "confusion": d2.matrix}


def _agreement_row(kind: str, who: str, r: AgreementReport) -> dict[str, Any]:
    row = _d2_row(kind, who, r.d2)
    row.update({"d1_n": r.d1.n, "d1_exact": r.d1.exact_match, "d1_mae": r.d1.mae, "d3_n": r.d3.n,
                "d3_mean": r.d3.mean, "d3_at_least_2": r.d3.share_at_least_2, "d3_3": r.d3.share_3})
    return row


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if percent else f"{value:.3f}"
    return str(value)


def table(report: ReliabilityReport) -> str:
    """The report as text: the D2 figures of every group, then D1 and D3 where people labelled."""
    header = (f"{'comparison':<40}{'group':<34}{'n':>5}{'acc-rec':>9}{'rej-rec':>9}{'agree':>8}{'F1':>7}"
              f"{'kappa':>8}  confusion [[aa, ar], [ra, rr]]")
    lines = [f"{report.sessions} session(s). D2: rows are the first side (people, or the ground truth), "
             "columns the second (the VLM, or the second person).", header, "-" * len(header)]
    all_rows = rows(report)
    for row in all_rows:
        lines.append(f"{row['comparison']:<40}{row['group'][:33]:<34}{row['d2_n']:>5}"
                     f"{_fmt(row['accept_recall'], True):>9}{_fmt(row['reject_recall'], True):>9}"
                     f"{_fmt(row['agreement'], True):>8}{_fmt(row['reject_f1']):>7}{_fmt(row['kappa']):>8}"
                     f"  {row['confusion']}")
    labelled = [r for r in all_rows if r.get("d1_n") or r.get("d3_n")]
    if labelled:
        lines += ["", f"{'D1 / D3':<40}{'group':<34}{'D1 n':>6}{'exact':>8}{'MAE':>7}{'D3 n':>6}{'mean':>7}"
                      f"{'>=2':>8}{'=3':>8}"]
        for r in labelled:
            lines.append(f"{r['comparison']:<40}{r['group'][:33]:<34}{r['d1_n']:>6}{_fmt(r['d1_exact'], True):>8}"
                         f"{_fmt(r['d1_mae']):>7}{r['d3_n']:>6}{_fmt(r['d3_mean']):>7}"
                         f"{_fmt(r['d3_at_least_2'], True):>8}{_fmt(r['d3_3'], True):>8}")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def figure(report: ReliabilityReport) -> Any:
    """D2 figures per group as grouped bars (accept-recall, reject-recall, agreement, kappa)."""
    import plotly.graph_objects as go

    data = [r for r in rows(report) if r["d2_n"]]
    labels = [f"{r['group']} ({r['comparison']})" for r in data]
    fig = go.Figure()
    for key, name in (("accept_recall", "accept-recall"), ("reject_recall", "reject-recall"),
                      ("agreement", "agreement"), ("kappa", "Cohen's kappa")):
        fig.add_trace(go.Bar(name=name, x=labels, y=[r[key] for r in data]))
    fig.update_layout(barmode="group", title="D2 verification reliability (ground-truth rows: SIMULATED clips)",
                      yaxis_title="share / kappa", template="plotly_white", height=480)
    return fig

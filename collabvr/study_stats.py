"""A study's figures: agreement between annotators and of people with the VLM (and, for simulated clips, with
the simulator's ground truth), each with a bootstrap confidence interval, laid out as the paper's Tables 6-7.

Statistics come from kept libraries: Cohen's kappa from scikit-learn for every pair of raters, Krippendorff's
alpha from `krippendorff` for all annotators of a label at once (it allows items that only some annotators
labelled, as a study with more annotators than `per_item` has). D2 is nominal (accept, reject); D1 (plan depth)
and D3 (1-3 rating) are ordinal for alpha. Kappa is unweighted throughout, as the paper reports it.

Counting rules, stated once:

* Human-human: a pair of annotators is compared on the items both labelled; alpha uses every item with at
  least two labels.
* Human-VLM (D1, D2; D3 has no VLM answer): each annotator on their own items, and the consensus (an item's
  final label: adjudicated, else unanimous) on the items that have one. Items whose annotators disagree and
  that were not adjudicated are left out of the consensus, and the notes say how many.
* Confidence intervals: percentile bootstrap over items (`BOOTSTRAP` resamples, seeded, so a figure is the
  same every time it is computed); a resample where the statistic is undefined (say, every label the same)
  is dropped, and with fewer than half left the interval is None, never made up.
* A statistic with no data is None with a note, never NaN (NaN does not survive JSON).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, TypeVar

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from collabvr.agreement import D1Report, D2Report, D3Report, d1_report, d2_report, d3_report
from collabvr.study import (
    Adjudication, ItemKey, StudyItem, StudyLabel, StudySnapshot, final_label, labels_by_item, latest_adjudications,
)


BOOTSTRAP = 1000
CONFIDENCE = 0.95
LEVELS = {"D1": "ordinal", "D2": "nominal", "D3": "ordinal"}
DOMAINS: dict[str, list[Any]] = {"D1": list(range(1, 13)), "D2": ["accept", "reject"], "D3": [1, 2, 3]}
CONSENSUS = "consensus"
VLM = "VLM"

U = TypeVar("U")
Value = int | str


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    resamples: int  # how many of the bootstrap resamples gave a value


# ----- the statistics -------------------------------------------------------------------------------------------

def cohen_kappa(first: Sequence[Value], second: Sequence[Value]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (scikit-learn); None when it is undefined: fewer
    than 2 items, or chance agreement already 1 (both gave one and the same label throughout)."""
    if len(first) != len(second):
        raise ValueError("kappa compares two raters on the same items: the two lists differ in length")
    if len(first) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0 comes back as NaN with a RuntimeWarning
        value = float(cohen_kappa_score([str(v) for v in first], [str(v) for v in second]))
    return None if math.isnan(value) else value


def krippendorff_alpha(units: Sequence[Mapping[str, Value]], kind: str) -> float | None:
    """Krippendorff's alpha of the annotators' labels (one mapping annotator -> value per item), at the
    label's level of measurement; None when no item has two labels or alpha is undefined (no variation)."""
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        return None
    domain = DOMAINS[kind]
    code = {value: index for index, value in enumerate(domain)}
    raters = sorted({name for unit in pairable for name in unit})
    matrix = np.full((len(raters), len(pairable)), np.nan)
    for column, unit in enumerate(pairable):
        for name, value in unit.items():
            matrix[raters.index(name), column] = code[value]
    if len({v for unit in pairable for v in unit.values()}) < 2:
        return None  # every label the same: no disagreement to measure against, alpha is 0/0
    try:
        value = float(krippendorff.alpha(reliability_data=matrix, value_domain=list(range(len(domain))),
                                         level_of_measurement=LEVELS[kind]))
    except (ValueError, ZeroDivisionError):
        return None
    return None if math.isnan(value) else value


def bootstrap(units: Sequence[U], statistic: Callable[[Sequence[U]], float | None], resamples: int = BOOTSTRAP,
              seed: int = 0, confidence: float = CONFIDENCE) -> Interval | None:
    """Percentile bootstrap interval of `statistic` over `units` resampled with replacement (see the module
    docstring for undefined resamples)."""
    if len(units) < 2 or resamples < 1:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(units), size=(resamples, len(units)))
    values = [statistic([units[i] for i in row]) for row in draws]
    valid = [v for v in values if v is not None]
    if len(valid) < resamples / 2:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(valid, [tail, 100 - tail])
    return Interval(float(low), float(high), len(valid))


def _kappa_of_pairs(pairs: Sequence[tuple[Value, Value]]) -> float | None:
    return cohen_kappa([a for a, _ in pairs], [b for _, b in pairs])


def _agreement(pairs: Sequence[tuple[Value, Value]]) -> float | None:
    return sum(1 for a, b in pairs if a == b) / len(pairs) if pairs else None


# ----- the figures -----------------------------------------------------------------------------------------------

@dataclass
class PairFigure:
    """Two raters on the items both labelled: raw agreement and Cohen's kappa with its interval."""

    kind: str
    first: str
    second: str
    n: int
    agreement: float | None
    kappa: float | None
    ci: Interval | None


@dataclass
class GroupFigure:
    """All annotators of one label kind: Krippendorff's alpha with its interval."""

    kind: str
    annotators: list[str]
    n: int  # items with at least two labels
    alpha: float | None
    ci: Interval | None
    level: str


@dataclass
class VLMColumn:
    """One VLM's column of Table 6 (and its confusion matrix, Table 7): the consensus labels against it."""

    vlm: str
    sessions: int
    d1: D1Report
    d2: D2Report
    d2_kappa_ci: Interval | None
    d3: D3Report


@dataclass
class StudyFigures:
    between: list[PairFigure] = field(default_factory=list)  # human-human pairs
    groups: list[GroupFigure] = field(default_factory=list)  # human-human, all annotators
    vs_vlm: list[PairFigure] = field(default_factory=list)  # each annotator and the consensus against the VLM
    vs_truth: list[PairFigure] = field(default_factory=list)  # D2 against the simulator's ground truth
    columns: list[VLMColumn] = field(default_factory=list)  # Tables 6 and 7
    notes: list[str] = field(default_factory=list)


def _pair(kind: str, first: str, second: str, pairs: list[tuple[Value, Value]], resamples: int,
          seed: int) -> PairFigure:
    return PairFigure(kind, first, second, len(pairs), _agreement(pairs), _kappa_of_pairs(pairs),
                      bootstrap(pairs, _kappa_of_pairs, resamples, seed))


def study_figures(items: Sequence[StudyItem], labels: Iterable[StudyLabel], adjudications: Iterable[Adjudication],
                  vlm_values: Mapping[ItemKey, Value | None], vlm_names: Mapping[str, str],
                  truths: Mapping[ItemKey, str] | None = None, *, resamples: int = BOOTSTRAP,
                  seed: int = 0) -> StudyFigures:
    """Every figure of a study. `vlm_values` holds the VLM's answer per D1/D2 item (collabvr.study.vlm_value),
    `vlm_names` the VLM of each session (Table 6 has one column per VLM), `truths` the simulator's verdict per
    D2 item of a simulated clip."""
    by_item = labels_by_item(labels)
    decided = latest_adjudications(adjudications)
    truths = truths or {}
    figures = StudyFigures()
    kinds = [k for k in ("D1", "D2", "D3") if any(i.label == k for i in items)]
    finals: dict[ItemKey, Value] = {}
    unresolved = {k: 0 for k in kinds}
    for item in items:
        given = by_item.get(item.key, {})
        if not given and item.key not in decided:
            continue
        final = final_label(given, decided.get(item.key))
        if final is None:
            unresolved[item.label] += 1
        else:
            finals[item.key] = final
    for kind in kinds:
        mine = [i for i in items if i.label == kind]
        units = [{name: row.value for name, row in by_item.get(i.key, {}).items()} for i in mine]
        names = sorted({name for unit in units for name in unit})
        for first, second in combinations(names, 2):
            shared = [(u[first], u[second]) for u in units if first in u and second in u]
            figures.between.append(_pair(kind, first, second, shared, resamples, seed))
        if len(names) >= 2:
            pairable = [u for u in units if len(u) >= 2]
            figures.groups.append(GroupFigure(
                kind, names, len(pairable), krippendorff_alpha(pairable, kind),
                bootstrap(pairable, lambda us, kind=kind: krippendorff_alpha(us, kind), resamples, seed),
                LEVELS[kind]))
        if unresolved[kind]:
            figures.notes.append(f"{kind}: {unresolved[kind]} item(s) where the annotators disagree and nobody "
                                 f"adjudicated are left out of the consensus")
        if kind in ("D1", "D2"):
            for name in names + [CONSENSUS]:
                pairs = []
                for item, unit in zip(mine, units):
                    vlm = vlm_values.get(item.key)
                    mine_value = finals.get(item.key) if name == CONSENSUS else unit.get(name)
                    if vlm is not None and mine_value is not None:
                        pairs.append((mine_value, vlm))
                figures.vs_vlm.append(_pair(kind, name, VLM, pairs, resamples, seed))
        if kind == "D2" and any(i.key in truths for i in mine):
            for name in names + [CONSENSUS, VLM]:
                pairs = []
                for item, unit in zip(mine, units):
                    truth = truths.get(item.key)
                    if name == VLM:
                        value = vlm_values.get(item.key)
                    elif name == CONSENSUS:
                        value = finals.get(item.key)
                    else:
                        value = unit.get(name)
                    if truth is not None and value is not None:
                        pairs.append((value, truth))
                figures.vs_truth.append(_pair(kind, name, "truth", pairs, resamples, seed))
    figures.columns = _columns(items, finals, vlm_values, vlm_names, resamples, seed)
    return figures


def snapshot_figures(snap: StudySnapshot, resamples: int = BOOTSTRAP, seed: int = 0) -> StudyFigures:
    """Every figure of a study as read from the store (the items of deleted sessions left out)."""
    figures = study_figures(snap.present_items, snap.labels, snap.adjudications, snap.vlm_values(),
                            snap.vlm_names(), snap.truths, resamples=resamples, seed=seed)
    if snap.missing:
        figures.notes.append(f"{len(snap.missing)} session(s) of the study were deleted; their items are left out")
    return figures


def _columns(items: Sequence[StudyItem], finals: Mapping[ItemKey, Value], vlm_values: Mapping[ItemKey, Value | None],
             vlm_names: Mapping[str, str], resamples: int, seed: int) -> list[VLMColumn]:
    """Table 6's columns: per VLM, the consensus labels of its sessions against it (D3: the ratings)."""
    columns = []
    for vlm in sorted(set(vlm_names.values())):
        sessions = {s for s, name in vlm_names.items() if name == vlm}
        mine = [i for i in items if i.session_id in sessions and i.key in finals]
        d1 = [(i.session_id, int(finals[i.key]), int(vlm_values[i.key])) for i in mine
              if i.label == "D1" and vlm_values.get(i.key) is not None]
        d2 = [(str(finals[i.key]), str(vlm_values[i.key])) for i in mine
              if i.label == "D2" and vlm_values.get(i.key) is not None]
        d3 = [int(finals[i.key]) for i in mine if i.label == "D3"]
        columns.append(VLMColumn(vlm, len(sessions), d1_report(d1), d2_report(d2),
                                 bootstrap(d2, _kappa_of_pairs, resamples, seed), d3_report(d3)))
    return columns


# ----- tables ---------------------------------------------------------------------------------------------------

def fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.3f}"


def fmt_ci(value: float | None, ci: Interval | None) -> str:
    """"0.676 [0.52, 0.81]"; the interval left out when it is undefined."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci.low:.2f}, {ci.high:.2f}]" if ci is not None else "")


def table6(figures: StudyFigures) -> tuple[list[str], list[list[str]]]:
    """The paper's Table 6: one row per figure, one column per VLM (the consensus labels against it)."""
    header = ["Axis"] + [f"{c.vlm} ({c.sessions} session{'s' if c.sessions != 1 else ''})" for c in figures.columns]

    def row(name: str, cell: Callable[[VLMColumn], str]) -> list[str]:
        return [name] + [cell(c) for c in figures.columns]

    rows = [
        row("D1 exact-match (n)", lambda c: f"{fmt(c.d1.exact_match, True)} ({c.d1.n})"),
        row("D1 MAE", lambda c: fmt(c.d1.mae)),
        row("D2 accept-recall / reject-recall / overall (n)",
            lambda c: f"{fmt(c.d2.accept_recall, True)} / {fmt(c.d2.reject_recall, True)} / "
                      f"{fmt(c.d2.agreement, True)} ({c.d2.n})"),
        row("D2 Cohen's κ [95% CI]", lambda c: fmt_ci(c.d2.kappa, c.d2_kappa_ci)),
        row("D3 mean, ≥2 share, =3 share (n)",
            lambda c: f"{fmt(c.d3.mean)}, {fmt(c.d3.share_at_least_2, True)}, {fmt(c.d3.share_3, True)} "
                      f"({c.d3.n})"),
    ]
    return header, rows


def table7(figures: StudyFigures) -> tuple[list[str], list[list[str]]]:
    """The paper's Table 7: the D2 confusion matrix per VLM, the VLM's verdict (pred) against people's."""
    header = ["VLM", "pred accept / human accept", "pred accept / human reject", "pred reject / human accept",
              "pred reject / human reject"]
    rows = []
    for c in figures.columns:
        m = c.d2.confusion  # [human][vlm]
        rows.append([c.vlm, str(m["accept"]["accept"]), str(m["reject"]["accept"]), str(m["accept"]["reject"]),
                     str(m["reject"]["reject"])])
    return header, rows


def agreement_rows(figures: StudyFigures) -> tuple[list[str], list[list[str]]]:
    """Every pairwise and group figure as one table: label, who, against whom, n, agreement, statistic."""
    header = ["label", "rater", "against", "n", "agreement", "statistic [95% CI]"]
    rows = []
    for p in figures.between + figures.vs_vlm + figures.vs_truth:
        rows.append([p.kind, p.first, p.second, str(p.n), fmt(p.agreement, True),
                     "κ " + fmt_ci(p.kappa, p.ci)])
    for g in figures.groups:
        rows.append([g.kind, ", ".join(g.annotators), "each other", str(g.n), "",
                     f"α ({g.level}) " + fmt_ci(g.alpha, g.ci)])
    return header, rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table for the command line."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)

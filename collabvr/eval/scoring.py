"""What a benchmark's results say: per method, per group (family) and overall, the mean score with a 95%
bootstrap interval, the success rate and the cost; and paired comparisons of methods on the same samples.

Counting rules, stated once:
- A sample that did not finish, or that nothing could score, counts as score 0 and not solved (a method
  that fails to produce a judged video has not solved the task); `unscored` says how many there were.
- Cost per sample is what its session recorded: nominal seconds of video generated (the paper's cost, every
  clip included), VLM calls, and wall time (the models' own time).
- The bootstrap resamples samples with replacement (percentile interval, fixed seed: the same results
  give the same interval). Paired comparisons use the samples both methods ran; a sign test (scipy's
  binomtest, two-sided) on the wins, ties left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.stats import binomtest

from collabvr.eval.runner import SampleResult

OVERALL = "all"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean; None for no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


@dataclass(frozen=True)
class Summary:
    """One method on one group of samples (or all of them)."""

    method: str
    group: str
    n: int
    score: float
    ci_low: float
    ci_high: float
    success_rate: float
    vgm_seconds: float  # mean per sample
    vlm_calls: float  # mean per sample
    clips: float  # mean per sample
    wall_s: float  # mean per sample
    unscored: int


def _score(result: SampleResult) -> float:
    return float(result.score) if result.score is not None else 0.0


def summarize(results: Sequence[SampleResult], group: str = OVERALL) -> Summary:
    """The summary of one method's results (all given results must be of one method)."""
    methods = {r.method for r in results}
    if len(methods) != 1:
        raise ValueError(f"summarize takes the results of one method, not {sorted(methods)}")
    scores = [_score(r) for r in results]
    low, high = bootstrap_ci(scores) or (0.0, 0.0)
    return Summary(
        method=results[0].method, group=group, n=len(results), score=float(np.mean(scores)), ci_low=low, ci_high=high,
        success_rate=float(np.mean([bool(r.success) for r in results])),
        vgm_seconds=float(np.mean([r.vgm_seconds for r in results])),
        vlm_calls=float(np.mean([r.vlm_calls for r in results])), clips=float(np.mean([r.clips for r in results])),
        wall_s=float(np.mean([r.wall_s for r in results])), unscored=sum(r.score is None for r in results))


def group_of(result: SampleResult) -> str:
    """The group a sample's row falls in: its family (or task), and its difficulty (or split) when known."""
    return f"{result.group}/{result.level}" if result.level else result.group


def summaries(results: Iterable[SampleResult], by: str = "group") -> list[Summary]:
    """Per method (in first-seen order): one summary per group, then the overall one. `by` is "group"
    (family and difficulty), "family" (family only) or "none" (overall only)."""
    results = list(results)
    methods = list(dict.fromkeys(r.method for r in results))
    rows: list[Summary] = []
    for method in methods:
        mine = [r for r in results if r.method == method]
        if by != "none":
            key = group_of if by == "group" else (lambda r: r.group)
            for group in dict.fromkeys(key(r) for r in mine):
                rows.append(summarize([r for r in mine if key(r) == group], group))
        rows.append(summarize(mine, OVERALL))
    return rows


@dataclass(frozen=True)
class Paired:
    """Method `a` against method `b` on the samples both ran: wins each way, ties, the sign test."""

    a: str
    b: str
    n: int
    a_wins: int
    b_wins: int
    ties: int
    mean_difference: float  # mean of a's score minus b's
    p_value: float | None  # two-sided sign test on the wins; None when there was no win either way


def paired(results: Iterable[SampleResult], a: str, b: str) -> Paired:
    by_key: dict[tuple[str, str], dict[str, float]] = {}
    for r in results:
        if r.method in (a, b):
            by_key.setdefault((group_of(r), f"{r.key}"), {})[r.method] = _score(r)
    both = [v for v in by_key.values() if a in v and b in v]
    a_wins = sum(v[a] > v[b] for v in both)
    b_wins = sum(v[b] > v[a] for v in both)
    deciding = a_wins + b_wins
    p_value = float(binomtest(a_wins, deciding, 0.5).pvalue) if deciding else None
    diff = float(np.mean([v[a] - v[b] for v in both])) if both else 0.0
    return Paired(a, b, len(both), a_wins, b_wins, len(both) - deciding, diff, p_value)


def comparisons(results: Sequence[SampleResult], reference: str | None = None) -> list[Paired]:
    """Every other method against `reference` (default: "collabvr" if it ran, else the last method)."""
    methods = list(dict.fromkeys(r.method for r in results))
    if not methods:
        return []
    if reference is None:
        reference = "collabvr" if "collabvr" in methods else methods[-1]
    return [paired(results, reference, m) for m in methods if m != reference]


# ----- text tables ---------------------------------------------------------------------------------------

def summary_table(rows: Sequence[Summary]) -> str:
    """The summaries as a fixed-width table, one line each."""
    header = (f"{'method':<18}{'group':<14}{'n':>5}{'score':>8}{'95% CI':>16}{'success':>9}{'VGM s':>8}"
              f"{'VLM calls':>11}{'clips':>7}{'wall s':>8}")
    lines = [header, "-" * len(header)]
    for s in rows:
        ci = f"[{s.ci_low:.3f}, {s.ci_high:.3f}]"
        note = f"  ({s.unscored} unscored)" if s.unscored else ""
        lines.append(f"{s.method:<18}{s.group:<14}{s.n:>5}{s.score:>8.3f}{ci:>16}{s.success_rate:>9.1%}"
                     f"{s.vgm_seconds:>8.1f}{s.vlm_calls:>11.2f}{s.clips:>7.2f}{s.wall_s:>8.2f}{note}")
    return "\n".join(lines)


def paired_table(rows: Sequence[Paired]) -> str:
    header = f"{'A vs B':<34}{'n':>5}{'A wins':>8}{'B wins':>8}{'ties':>6}{'mean A-B':>10}{'sign test p':>13}"
    lines = [header, "-" * len(header)]
    for p in rows:
        value = "n/a" if p.p_value is None else (f"{p.p_value:.2g}" if p.p_value < 0.001 else f"{p.p_value:.3f}")
        lines.append(f"{p.a + ' vs ' + p.b:<34}{p.n:>5}{p.a_wins:>8}{p.b_wins:>8}{p.ties:>6}{p.mean_difference:>10.3f}"
                     f"{value:>13}")
    return "\n".join(lines)

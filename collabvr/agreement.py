"""Human-vs-VLM agreement over annotated sessions (CollabVR, Kim et al. 2026, section 4.4).

People label sessions with `Engine.annotate`; the labels are `Annotated` events in each session's log:

* D1 - plan depth of the whole session (target "session"): the number of steps N the person thinks the task
  needs, compared with the VLM's N by exact match and mean absolute error.
* D2 - a person's accept/reject verdict of one attempt ("step:<t>/attempt:<j>"), compared with the VLM's OWN
  verdict (`attempt.vlm_verdict`), never the effective one: an override is a person's decision in the loop,
  and comparing against it would make every overridden attempt agree with the person who overrode it.
* D3 - a 1-3 rating of the verifier's suggestion on an attempt: mean, share >= 2, share == 3.

Everything here is a pure function of folded `SessionState`s (or of plain pairs, for the `d*_report`
functions): no I/O, no model calls. Kappa and the confusion matrix come from scikit-learn.

Counting rules, stated once:

* Only the latest label per (session, target, annotator, label) counts: a later `Annotated` event of the same
  person replaces the earlier one. "Later" means later in the session's log, which is append-only; the `at`
  timestamps are not used to order, as two events may carry the same time.
* With `annotator=None`, every (item, annotator) pair is one comparison: an attempt that three people labelled
  counts three times in D2. This weights items by how many people labelled them; pass `annotator=` to get
  one person's comparisons only. Inter-annotator agreement is not computed here.
* Labels whose attempt no longer exists or was never verified are skipped and reported in `notes` (the engine
  refuses such labels, so this only happens with hand-made logs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

from collabvr.events import parse_attempt_target
from collabvr.state import AttemptState, SessionState, StepState


VERDICTS = ("accept", "reject")  # the order of rows and columns in every confusion matrix here
RELIABILITY_LABELS = ("D1", "D2", "D3")


# ----- labels ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelRow:
    """One person's current label of one item. `step` and `attempt` are None for session targets."""

    session_id: str
    target: str
    step: int | None
    attempt: int | None
    annotator: str
    label: str
    value: int | str
    at: float


def parse_target(target: str) -> tuple[int | None, int | None]:
    """(step, attempt) of "step:<t>/attempt:<j>"; (None, None) for "session" or anything unparseable."""
    try:
        return parse_attempt_target(target)
    except ValueError:
        return None, None


def latest_labels(states: Iterable[SessionState], labels: Sequence[str] = RELIABILITY_LABELS,
                  annotator: str | None = None) -> list[LabelRow]:
    """The latest label per (session, target, annotator, label), in session order, then log order.

    Free-text notes are left out by default (`labels` does not include "note"): a note adds to the earlier
    ones rather than correcting them, so "latest wins" would lose information. Pass `labels=("note",)` to get
    the last note of each person per target anyway.
    """
    rows: list[LabelRow] = []
    for state in states:
        latest: dict[tuple[str, str, str], tuple[int, LabelRow]] = {}
        for index, event in enumerate(state.annotations):
            if event.label not in labels or (annotator is not None and event.actor != annotator):
                continue
            step, attempt = parse_target(event.target)
            row = LabelRow(session_id=state.session_id, target=event.target, step=step, attempt=attempt,
                           annotator=event.actor, label=event.label, value=event.value, at=event.at)
            latest[(event.target, event.actor, event.label)] = (index, row)
        rows.extend(row for _, row in sorted(latest.values(), key=lambda item: item[0]))
    return rows


# ----- what the VLM did ----------------------------------------------------------------------------------

def planned_steps(state: SessionState) -> list[StepState]:
    """The steps that carry an action: every planned step except "task complete" plans."""
    return [s for s in state.steps if not s.plan.task_complete]


def vlm_plan_depth(state: SessionState) -> int:
    """The VLM's plan depth N: the number of steps the planner planned that were not `task_complete` plans.

    Choices, so that D1 compares like with like:
    * The closing "task complete" plan is not a step: no action was planned in it.
    * A split counts its sub-steps as steps, and the split step itself stays counted: it was planned and
      attempted before the residual was re-planned. So a 2-step plan whose step 2 is split into 2 sub-steps
      has N = 4.
    * An unfinished session gives the steps planned so far, a lower bound on its final N; `agreement` notes
      how many D1 comparisons rest on unfinished sessions.
    """
    return len(planned_steps(state))


def _attempt(state: SessionState, step: int | None, attempt: int | None) -> AttemptState | None:
    if step is None or attempt is None:
        return None
    try:
        return state.step(step).attempt(attempt)
    except KeyError:
        return None


# ----- reports -----------------------------------------------------------------------------------------

@dataclass
class D1Report:
    """Plan depth: people's N against the VLM's N, one pair per (session, annotator)."""

    n: int
    exact_match: float | None  # share of pairs with human N == VLM N
    mae: float | None  # mean |human N - VLM N|, in steps
    pairs: list[tuple[str, int, int]]  # (session id, human N, VLM N)
    notes: list[str] = field(default_factory=list)


@dataclass
class D2Report:
    """Verdicts: people's accept/reject against the VLM's own verdict, one pair per (attempt, annotator).

    `confusion[human][vlm]` counts pairs; `matrix` is the same numbers as rows = human, columns = VLM, in the
    order of `labels` (accept, reject). A statistic whose denominator is empty is None, with a note saying
    why, never NaN (NaN does not survive JSON).
    """

    n: int
    confusion: dict[str, dict[str, int]]
    matrix: list[list[int]]
    labels: list[str]
    accept_recall: float | None  # of the clips people accepted, the share the VLM accepted
    reject_recall: float | None  # of the clips people rejected, the share the VLM rejected
    agreement: float | None  # share of pairs where the two verdicts are equal
    kappa: float | None  # Cohen's kappa (scikit-learn), chance-corrected agreement
    reject_f1: float | None  # F1 of the VLM's rejects, people's verdicts taken as the truth
    notes: list[str] = field(default_factory=list)


@dataclass
class D3Report:
    """Suggestion ratings on a 1-3 scale, one rating per (attempt, annotator)."""

    n: int
    mean: float | None
    share_at_least_2: float | None
    share_3: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class AgreementReport:
    """D1, D2 and D3 over a set of sessions. `notes` holds what concerns the selection as a whole (skipped
    labels, unfinished sessions); each part keeps its own notes on its statistics. `dataclasses.asdict` of
    it is JSON-serialisable."""

    sessions: int
    annotator: str | None  # the person whose labels were used; None: everybody's
    annotators: list[str]  # who contributed labels to this report
    d1: D1Report
    d2: D2Report
    d3: D3Report
    notes: list[str] = field(default_factory=list)


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def d1_report(pairs: Iterable[tuple[str, int, int]]) -> D1Report:
    """Exact match and MAE of (session id, human N, VLM N) pairs."""
    pairs = [(session, int(human), int(vlm)) for session, human, vlm in pairs]
    n = len(pairs)
    notes = [] if n else ["D1: no plan-depth labels, so exact match and MAE are undefined"]
    exact = _share(sum(1 for _, h, v in pairs if h == v), n)
    mae = sum(abs(h - v) for _, h, v in pairs) / n if n else None
    return D1Report(n=n, exact_match=exact, mae=mae, pairs=pairs, notes=notes)


def d2_report(pairs: Iterable[tuple[str, str]]) -> D2Report:
    """Confusion matrix, recalls, agreement, kappa and reject F1 of (human verdict, VLM verdict) pairs.

    Kappa is None (with a note) when there are fewer than 2 pairs, or when it is 0/0: both sides gave one and
    the same verdict throughout, so chance agreement is already 1.
    """
    pairs = list(pairs)
    for human, vlm in pairs:
        if human not in VERDICTS or vlm not in VERDICTS:
            raise ValueError(f"a D2 pair must be two of {VERDICTS}, not ({human!r}, {vlm!r})")
    human = [h for h, _ in pairs]
    vlm = [v for _, v in pairs]
    n = len(pairs)
    labels = list(VERDICTS)
    notes: list[str] = []
    if n:
        matrix = confusion_matrix(human, vlm, labels=labels).tolist()
    else:  # scikit-learn refuses empty input
        matrix = [[0, 0], [0, 0]]
    confusion = {h: {v: int(matrix[i][j]) for j, v in enumerate(labels)} for i, h in enumerate(labels)}
    human_accepts = sum(confusion["accept"].values())
    human_rejects = sum(confusion["reject"].values())
    accept_recall = _share(confusion["accept"]["accept"], human_accepts)
    reject_recall = _share(confusion["reject"]["reject"], human_rejects)
    agreement = _share(confusion["accept"]["accept"] + confusion["reject"]["reject"], n)
    if n == 0:
        notes.append("D2: no verdict labels, so no statistic is defined")
    else:
        if accept_recall is None:
            notes.append("D2: people accepted no clip, so accept-recall is undefined")
        if reject_recall is None:
            notes.append("D2: people rejected no clip, so reject-recall is undefined")

    kappa: float | None = None
    if n == 1:
        notes.append("D2: kappa needs at least 2 verdict pairs; there is 1")
    elif n >= 2:
        with warnings.catch_warnings():
            # 0/0 kappa comes back as NaN with a RuntimeWarning; it is reported as None and a note instead.
            warnings.simplefilter("ignore")
            value = float(cohen_kappa_score(human, vlm, labels=labels))
        if math.isnan(value):
            only = human[0]
            notes.append(f"D2: kappa is undefined: people and the VLM both said {only!r} to every clip, "
                         f"so chance agreement is already 1")
        else:
            kappa = value

    reject_f1: float | None = None
    if human_rejects or confusion["accept"]["reject"]:
        reject_f1 = float(f1_score(human, vlm, labels=labels, pos_label="reject", average="binary",
                                   zero_division=0.0))
    elif n:
        notes.append("D2: neither people nor the VLM rejected a clip, so reject F1 is undefined")
    return D2Report(n=n, confusion=confusion, matrix=[[int(x) for x in row] for row in matrix], labels=labels,
                    accept_recall=accept_recall, reject_recall=reject_recall, agreement=agreement, kappa=kappa,
                    reject_f1=reject_f1, notes=notes)


def d3_report(ratings: Iterable[int]) -> D3Report:
    """Mean and shares of 1-3 suggestion ratings."""
    ratings = [int(r) for r in ratings]
    for r in ratings:
        if r not in (1, 2, 3):
            raise ValueError(f"a D3 rating must be 1, 2 or 3, not {r}")
    n = len(ratings)
    notes = [] if n else ["D3: no suggestion ratings, so mean and shares are undefined"]
    return D3Report(n=n, mean=sum(ratings) / n if n else None,
                    share_at_least_2=_share(sum(1 for r in ratings if r >= 2), n),
                    share_3=_share(sum(1 for r in ratings if r == 3), n), notes=notes)


def agreement(states: Iterable[SessionState], annotator: str | None = None) -> AgreementReport:
    """D1, D2 and D3 of the latest labels in `states`, of one annotator or (None) of everybody.

    See the module docstring for the counting rules: latest label per person wins, every (item, annotator)
    pair is one comparison, D2 compares against the VLM's own verdict.
    """
    states = list(states)
    by_id = {s.session_id: s for s in states}
    rows = latest_labels(states, annotator=annotator)
    notes: list[str] = []
    d1_pairs: list[tuple[str, int, int]] = []
    d2_pairs: list[tuple[str, str]] = []
    ratings: list[int] = []
    skipped = 0
    unfinished_d1 = 0
    for row in rows:
        state = by_id[row.session_id]
        if row.label == "D1":
            d1_pairs.append((row.session_id, int(row.value), vlm_plan_depth(state)))
            unfinished_d1 += state.finished is None
            continue
        attempt = _attempt(state, row.step, row.attempt)
        if attempt is None or attempt.vlm_verdict is None:
            skipped += 1
            continue
        if row.label == "D2":
            d2_pairs.append((str(row.value), attempt.vlm_verdict.verdict))
        else:
            ratings.append(int(row.value))
    if skipped:
        notes.append(f"{skipped} D2/D3 label(s) name an attempt that does not exist or was not verified; "
                     f"they were skipped")
    if unfinished_d1:
        notes.append(f"{unfinished_d1} D1 comparison(s) are on unfinished sessions, whose VLM plan depth is "
                     f"the steps planned so far")
    return AgreementReport(sessions=len(states), annotator=annotator,
                           annotators=sorted({row.annotator for row in rows}),
                           d1=d1_report(d1_pairs), d2=d2_report(d2_pairs), d3=d3_report(ratings), notes=notes)


# ----- per-step series for charts ------------------------------------------------------------------------

def cumulative_vgm_seconds(state: SessionState) -> list[tuple[int, float]]:
    """(step number, generated seconds of all attempts up to and including that step), per planned step.

    Seconds are `ClipGenerated.seconds`, the nominal length each clip asked for (the paper's cost; a partial
    regeneration's kept prefix is not counted again). Generations that failed or were discarded are in the
    session's cost but not here. "Task complete" plans are left out (they generate nothing).
    """
    total = 0.0
    series = []
    for step in planned_steps(state):
        total += sum(a.generated.seconds for a in step.attempts)
        series.append((step.number, round(total, 6)))
    return series


def verdicts_per_step(state: SessionState) -> list[dict[str, int]]:
    """Per planned step: how many attempts the VLM accepted and rejected, and how many of those verdicts a
    person overrode. An overridden attempt is counted in both its VLM column and `human_override`;
    unverified attempts are in neither VLM column."""
    rows = []
    for step in planned_steps(state):
        verdicts = [a.vlm_verdict.verdict for a in step.attempts if a.vlm_verdict is not None]
        rows.append({"step": step.number, "vlm_accept": verdicts.count("accept"),
                     "vlm_reject": verdicts.count("reject"),
                     "human_override": sum(1 for a in step.attempts if a.override is not None)})
    return rows

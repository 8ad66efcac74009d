"""A reliability study of two simulated annotators with known error rates. A script, not a test.

    python bench/bench_study.py [--sessions 20] [--errors 0.1,0.25] [--seed 0] [--data-dir DIR] [--resamples 1000]

Records `--sessions` simulated sessions (the calibrated `paper` world, hard tasks, families in turn, N_max 3,
M 3) in a SQLite store, makes a blind D2 study over them with 2 annotators per item, and lets two simulated
annotators work through the study's queue as people would (open the next item, label it, which ends the hold):
each gives the simulator's true verdict of the clip (`info["truth"]`, what a verifier that sees it right would
say), flipped with their error rate, drawn from a seeded generator. Then it prints the study's figures: the
annotators' kappa against each other, against the VLM and against the ground truth, with 95% bootstrap
intervals, and the paper's Tables 6-7.

Everything here is SIMULATED: the sessions, the VLM (a verifier with Gemini 2.5 Pro's measured recalls) and the
annotators. What to expect: an annotator who flips a share e of the labels at random agrees with the truth on
1 - e of the clips, which is a kappa of 1 - 2e when accept and reject are equally common (lower otherwise); two
such annotators agree with each other less than either does with the truth.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collabvr.config import LoopConfig  # noqa: E402
from collabvr.sim_session import NewSimSession  # noqa: E402
from collabvr.studio import Studio  # noqa: E402
from collabvr.study import make_spec  # noqa: E402
from collabvr.study_stats import agreement_rows, snapshot_figures, table6, table7, text_table  # noqa: E402
from storage.data_dir import ARTIFACTS_NAME, DATABASE_NAME, open_store_at  # noqa: E402
from storage.study_store import StudyStore  # noqa: E402

FAMILIES = ("maze", "blocks", "shapes")
STUDY = "simulated-annotators"


def record_sessions(studio: Studio, n: int, difficulty: str) -> list[str]:
    ids = []
    for index in range(n):
        spec = NewSimSession(family=FAMILIES[index % len(FAMILIES)], difficulty=difficulty, seed=index,
                             config=LoopConfig(n_max=3, m=3))
        session_id = studio.new_sim_session(spec)
        studio.engine(session_id).run()
        ids.append(session_id)
    return ids


def simulate_annotators(studio: Studio, studies: StudyStore, errors: dict[str, float], seed: int) -> dict[str, int]:
    """The annotators take turns at the queue until it has nothing left for any of them; each label is the
    clip's true verdict, flipped with the annotator's error rate. Returns the labels each gave."""
    truths = studies.snapshot(STUDY).truths
    rngs = {name: np.random.default_rng([seed, index]) for index, name in enumerate(errors)}
    given = {name: 0 for name in errors}
    busy = True
    while busy:
        busy = False
        for name, error in errors.items():
            answer = studies.open_next(STUDY, name)
            if answer.item is None:
                continue
            truth = truths[answer.item.key]
            flipped = rngs[name].random() < error
            value = ("reject" if truth == "accept" else "accept") if flipped else truth
            studies.label(STUDY, answer.item.key, value, name, studio.annotate)
            given[name] += 1
            busy = True
    return given


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--difficulty", default="hard", choices=("easy", "hard"))
    parser.add_argument("--errors", default="0.1,0.25", help="the two annotators' error rates (default 0.1,0.25)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the annotators' errors (default 0)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the store here (default: a temp folder)")
    args = parser.parse_args(argv)
    rates = [float(x) for x in args.errors.split(",")]
    if len(rates) != 2 or not all(0 <= r <= 1 for r in rates):
        parser.error("--errors takes two rates between 0 and 1, e.g. 0.1,0.25")
    errors = {f"annotator-{chr(ord('a') + i)} (errs {r:.0%})": r for i, r in enumerate(rates)}

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-study-"))
    began = time.perf_counter()
    try:
        store, artifacts = open_store_at(root / DATABASE_NAME, root / ARTIFACTS_NAME)
        studio = Studio(store, artifacts)
        ids = record_sessions(studio, args.sessions, args.difficulty)
        studies = StudyStore(store)
        items = studies.create(make_spec(STUDY, ids, "d2", per_item=2, annotators=list(errors)))
        given = simulate_annotators(studio, studies, errors, args.seed)
        snap = studies.snapshot(STUDY)
        figures = snapshot_figures(snap, args.resamples)
        print(f"[SIMULATED] {len(ids)} {args.difficulty} sessions, {len(items)} D2 items (clips), "
              f"{len(snap.truths)} with ground truth; labels given: "
              + ", ".join(f"{name} {n}" for name, n in given.items()))
        print("\nD2 agreement (κ Cohen's kappa, α Krippendorff's alpha; 95% bootstrap intervals)")
        print(text_table(*agreement_rows(figures)))
        print("\nTable 6: the consensus (the items both annotators agree on) against the VLM")
        print(text_table(*table6(figures)))
        print("\nTable 7: D2 confusion, the VLM's verdict (pred) against people's")
        print(text_table(*table7(figures)))
        for note in figures.notes:
            print(f"note: {note}")
        print(f"\n({time.perf_counter() - began:.0f} s; store in {root})")
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

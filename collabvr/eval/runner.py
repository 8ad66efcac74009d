"""The bench runner: every (method, sample) of a benchmark as one session, run in this process, in worker
processes or as Ray tasks, and recorded in the driver's store.

A worker never opens the driver's store: `run_job` runs the session in memory with a scratch artifact
folder and returns its events (JSON) and the files they name (bytes); the driver (`run_bench`) copies the
files into its artifact folder by their content-addressed paths and appends the events, so a SQLite file
is written by one process only, however many machines run samples. Sessions get ids derived from what
they run (method, sample, backends), so a re-run finds the samples already done and skips them; an
unfinished one is discarded and run again.

A folder task (collabvr.eval.suites) has no pixel test: once its session finishes, the rubric judge (a
VLM that can judge, e.g. Gemini) grades the final video, recorded as a `VideoJudged` event.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from collabvr import media
from collabvr.artifacts import ArtifactFolder
from collabvr import registry
from collabvr.backends import ClipView, JudgeRequest, RubricJudge
from collabvr.config import LoopConfig
from collabvr.engine import Engine, derive_seed
from collabvr.eval.methods import Method
from collabvr.eval.suites import Sample, default_rubric, read_folder_task
from collabvr.events import (
    Event, TaskSpec, UsageInfo, VideoJudged, artifacts_in, event_from_json, event_to_json,
)
from collabvr.state import SessionState, fold
from collabvr.store import EventStore, MemoryEventStore

Executor = Literal["local", "ray"]
ProgressFn = Callable[[int, int, "SampleResult | None"], None]  # (done, total, the result just recorded)
MAX_COMMANDS = 2000
RAY_OBJECT_STORE_BYTES = 200 * 1024 * 1024


class BenchError(RuntimeError):
    """The benchmark cannot run as asked; the message says why."""


@dataclass(frozen=True)
class BenchBackends:
    """The models every method of a benchmark uses. Simulated tasks get the simulated VGM and VLM of their
    family (with these profiles) unless real specs are given; folder tasks need real specs. `judge_spec`
    is the rubric judge of folder tasks (default: the VLM)."""

    vgm_profile: str = "paper"
    verifier_profile: str | None = None  # default: the one the VGM profile was calibrated with
    vlm_spec: dict[str, Any] | None = None
    vgm_spec: dict[str, Any] | None = None
    judge_spec: dict[str, Any] | None = None

    def verifier(self) -> str:
        from collabvr.sim import verifier_for

        return self.verifier_profile or verifier_for(self.vgm_profile)

    def describe(self) -> dict[str, Any]:
        return {"vgm_profile": self.vgm_profile, "verifier_profile": self.verifier(), "vlm_spec": self.vlm_spec,
                "vgm_spec": self.vgm_spec, "judge_spec": self.judge_spec}


@dataclass(frozen=True)
class Job:
    """One method on one sample: what a worker runs. Picklable (processes, Ray)."""

    method: Method
    sample: Sample
    backends: BenchBackends
    base: LoopConfig = field(default_factory=LoopConfig)

    @property
    def session_id(self) -> str:
        """A stable id from everything the session depends on: the same job always maps to the same session."""
        what = json.dumps({"method": self.method.config(self.base).model_dump(mode="json"),
                           "sample": asdict(self.sample), "backends": self.backends.describe()},
                          sort_keys=True, default=str)
        digest = hashlib.sha256(what.encode()).hexdigest()[:10]
        where = f"{self.sample.group}-{self.sample.level}-{self.sample.seed}" if self.sample.level else \
            f"{self.sample.group}-{self.sample.seed}"
        readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"b-{self.method.slug}-{where}")
        return f"{readable[:64 - len(digest) - 1]}-{digest}"


@dataclass(frozen=True)
class SampleOutput:
    """What a worker hands back: the session's events as JSON and the bytes of every file they name."""

    session_id: str
    events: list[str]
    files: dict[str, bytes]
    wall_s: float


@dataclass(frozen=True)
class SampleResult:
    """One sample of one method, as the tables count it (read from its session). `score` and `success` are
    None when the session did not finish or nothing could judge it."""

    method: str
    group: str
    level: str
    seed: int
    key: str
    session_id: str
    finished: bool
    score: float | None
    success: bool | None
    vgm_seconds: float
    clips: int
    vlm_calls: int
    wall_s: float
    simulated: bool


# ----- one sample, in a worker ---------------------------------------------------------------------------

def run_job(job: Job) -> SampleOutput:
    """Run one job to the end in memory (scratch artifacts) and return what the driver records."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="collabvr-bench-") as scratch:
        folder = ArtifactFolder(scratch)
        store = MemoryEventStore()
        engine = _start(job, store, folder)
        engine.run(max_commands=MAX_COMMANDS)
        if job.sample.source == "folder" and engine.state.finished is not None:
            _judge(job, engine, store)
        events = store.read(job.session_id)
        files = {a.path: folder.path(a).read_bytes() for a in _unique_artifacts(events)}
    return SampleOutput(job.session_id, [event_to_json(e) for e in events], files,
                        round(time.perf_counter() - started, 4))


def _start(job: Job, store: EventStore, folder: ArtifactFolder) -> Engine:
    config = job.method.config(job.base)
    title = f"[bench] {job.method.name} · {job.sample.key}"
    if job.sample.source == "sim":
        from collabvr.sim import SIMULATED_LABEL
        from collabvr.sim_session import NewSimSession, start_sim_session

        spec = NewSimSession(family=job.sample.group, difficulty=job.sample.level, seed=job.sample.seed,
                             vlm_profile=job.backends.verifier(), vgm_profile=job.backends.vgm_profile,
                             config=config, vlm_spec=job.backends.vlm_spec, session_id=job.session_id,
                             title=f"[{SIMULATED_LABEL}] {title}")
        return start_sim_session(store, folder, spec)
    if job.backends.vlm_spec is None or job.backends.vgm_spec is None:
        raise BenchError("a folder suite needs a real VLM and VGM (--vlm and --vgm)")
    task = read_folder_task(job.sample)
    vlm, vgm = registry.build_vlm(job.backends.vlm_spec), registry.build_vgm(job.backends.vgm_spec)
    return Engine.start(store, folder, vlm, vgm, task=TaskSpec(prompt=task.prompt, source="upload"),
                        input_image=media.load_image(task.first_frame), config=config, seed=job.sample.seed,
                        session_id=job.session_id, title=title, vlm_label=registry.label(vlm, job.backends.vlm_spec),
                        vgm_label=registry.label(vgm, job.backends.vgm_spec))


def _judge(job: Job, engine: Engine, store: EventStore) -> None:
    """Grade a folder task's final video with the rubric judge and record it as VideoJudged."""
    state = engine.state
    video = state.finished.final_video if state.finished else None
    if video is None:
        return
    spec = job.backends.judge_spec or job.backends.vlm_spec
    judge = registry.build_vlm(spec or {})
    if not isinstance(judge, RubricJudge):
        raise BenchError(f"{judge.info.name} cannot judge a video against a rubric; pick a prompted VLM as judge")
    task = read_folder_task(job.sample)
    path = engine.artifacts.path(video)
    n_frames, fps = media.count_frames(path), media.probe(path).fps
    indices = media.sample_indices(n_frames, fps, 1.0)
    view = ClipView(frames=media.frames_at(path, indices), indices=indices, n_frames=n_frames, fps=fps, path=path)
    rubric = task.rubric or default_rubric(task)
    reply = judge.judge(JudgeRequest(
        task_prompt=task.prompt, rubric=rubric, input_image=engine.artifacts.load_frame(state.started.input_image),
        clip=view, seed=derive_seed(state.started.seed, "judge"),
        reference_image=media.load_image(task.final_frame) if task.final_frame else None))
    value = reply.value
    success = all(c.score >= c.max_score for c in value.criteria)
    event = VideoJudged(actor="bench-judge", judge=judge.info.name, rubric=rubric, judgement=value,
                        score=round(value.normalized_score, 6), success=success, usage=UsageInfo.of(reply.usage))
    store.append(job.session_id, [event], expected_seq=state.seq)


def _unique_artifacts(events: Iterable[Event]) -> list:
    seen: dict[str, Any] = {}
    for event in events:
        for artifact in artifacts_in(event):
            seen.setdefault(artifact.sha256, artifact)
    return list(seen.values())


# ----- the driver -----------------------------------------------------------------------------------------

def result_of(job: Job, state: SessionState) -> SampleResult:
    """A sample's row, read from its session: the final video's pixel-test score, else the rubric judge's."""
    finished = state.finished
    score: float | None = None
    success: bool | None = None
    if finished is not None and finished.score is not None:
        score, success = float(finished.score), bool(finished.success)
    elif state.judged is not None:
        score, success = state.judged.score, state.judged.success
    cost = state.cost
    return SampleResult(method=job.method.name, group=job.sample.group, level=job.sample.level,
                        seed=job.sample.seed, key=job.sample.key, session_id=state.session_id,
                        finished=finished is not None, score=score, success=success,
                        vgm_seconds=round(cost.vgm_seconds, 6), clips=cost.clips, vlm_calls=cost.vlm_calls,
                        wall_s=round(cost.wall_s, 4),
                        simulated=state.started.vlm.simulated or state.started.vgm.simulated)


def record(output: SampleOutput, store: EventStore, artifacts: ArtifactFolder) -> SessionState:
    """Put a worker's files into the artifact folder (content-addressed: a file already there is the same
    file) and its events into the store; returns the session's state."""
    for relative, data in output.files.items():
        target = (artifacts.root / relative).resolve()
        if artifacts.root not in target.parents:
            raise BenchError(f"a worker named a file outside the artifact folder: {relative}")
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = artifacts.scratch_path(target.suffix)
        tmp.write_bytes(data)
        os.replace(tmp, target)
    events = [event_from_json(text) for text in output.events]
    store.create(events[0])  # type: ignore[arg-type]
    if len(events) > 1:
        store.append(output.session_id, events[1:], expected_seq=1)
    return fold(events)


def run_bench(jobs: Sequence[Job], store: EventStore, artifacts: ArtifactFolder, *, workers: int = 1,
              executor: Executor = "local", ray_address: str | None = None, progress: ProgressFn | None = None,
              discard: Callable[[str], Any] | None = None) -> list[SampleResult]:
    """Run every job whose session is not already finished in `store`, record it, and return every job's
    result in the order of `jobs`. `discard(session_id)` removes an unfinished session before it is run
    again (without it, an unfinished one is an error). `workers` > 1 runs processes (or Ray tasks)."""
    if workers < 1:
        raise BenchError("workers must be at least 1")
    ids = [job.session_id for job in jobs]
    if len(set(ids)) != len(ids):
        raise BenchError("two jobs of the benchmark are the same (a method or sample is listed twice)")
    results: dict[str, SampleResult] = {}
    existing = set(store.session_ids())
    todo: list[Job] = []
    for job in jobs:
        if job.session_id in existing:
            state = fold(store.read(job.session_id))
            if state.finished is not None and (job.sample.source == "sim" or state.judged is not None):
                results[job.session_id] = result_of(job, state)
                continue
            if discard is None:
                raise BenchError(f"session {job.session_id} is unfinished; delete it to run it again")
            discard(job.session_id)
        todo.append(job)
    total = len(jobs)
    if progress:
        progress(len(results), total, None)
    by_id = {job.session_id: job for job in todo}
    for output in _outputs(todo, workers, executor, ray_address):
        state = record(output, store, artifacts)
        result = result_of(by_id[output.session_id], state)
        results[output.session_id] = result
        if progress:
            progress(len(results), total, result)
    return [results[job.session_id] for job in jobs]


def _outputs(jobs: list[Job], workers: int, executor: Executor, ray_address: str | None) -> Iterator[SampleOutput]:
    if not jobs:
        return iter(())
    if executor == "ray":
        return _ray_outputs(jobs, workers, ray_address)
    if workers == 1:
        return (run_job(job) for job in jobs)
    return _process_outputs(jobs, workers)


def _process_outputs(jobs: list[Job], workers: int) -> Iterator[SampleOutput]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(run_job, job) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()


def ray_available() -> str:
    """"" when Ray can be imported here, else why not."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return f"Ray is not installed ({exc}); pip install ray"
    return ""


def _ray_outputs(jobs: list[Job], workers: int, address: str | None) -> Iterator[SampleOutput]:
    """Each job as a Ray task. Without an address a local Ray of `workers` CPUs is started (and stopped);
    with one, the tasks go to that cluster, whose nodes need this project's dependencies installed (the
    collabvr package itself is shipped with the job)."""
    problem = ray_available()
    if problem:
        raise BenchError(problem)
    import ray

    package = str(Path(__file__).resolve().parent.parent)
    started_here = not ray.is_initialized()
    if started_here:
        runtime_env = {"py_modules": [package]}
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            # Token authentication would write ~/.ray/auth_token; a local cluster of this process needs none.
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=RAY_OBJECT_STORE_BYTES,
                     runtime_env=runtime_env, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(run_job)
        pending = [task.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()


def jobs_for(methods: Sequence[Method], samples: Sequence[Sample], backends: BenchBackends,
             base: LoopConfig | None = None) -> list[Job]:
    """Every method on every sample, method by method."""
    base = base or LoopConfig()
    return [Job(method, sample, backends, _base_for(sample, base)) for method in methods for sample in samples]


def _base_for(sample: Sample, base: LoopConfig) -> LoopConfig:
    """A folder task with a ground-truth video: every clip as long as it (the paper's VBVR-Bench setting)."""
    if sample.source != "folder":
        return base
    task = read_folder_task(sample)
    if task.ground_truth is None:
        return base
    info = media.probe(task.ground_truth)
    seconds = round(info.n_frames / info.fps, 3)
    return base.model_copy(update={"first_step_seconds": seconds, "later_seconds": seconds})


__all__ = ["BenchBackends", "BenchError", "Job", "SampleOutput", "SampleResult", "jobs_for", "ray_available",
           "record", "result_of", "run_bench", "run_job"]

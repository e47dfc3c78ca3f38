"""Inference task overhead: how many inference tasks per second two Celery worker processes
finish when the model answers at once.

Every task does what it does in production: read the response row and the model's adapter,
take a concurrency and rate slot in Redis, claim the row, read the prompt's stored FLAC and
resample it to the model's input rate, call the model through the real openai client (an OpenAI-compatible
server on a local socket, in this process, answering a 0.5 s clip at once: fake_model.py),
validate and re-encode the answer, store it, and finish the row and its job in one
transaction. Each prompt has its own stored clip. With one model (the default) every task
converts its prompt, the worst case; with --models M, M models at the same input rate answer
the same tasks/M prompts, as in an arena where every prompt goes to every model: the first
model's task converts a prompt, the others read the converted clip from the audio store
(app/audio/model_input.py).

Run: python -m benchmarks.inference [--tasks 2000] [--workers 2] [--models 1]
With --parts it then runs --part-tasks more tasks one after another in this process (no
Celery; the model answers from a thread of its own) and reports the CPU time of each part of a
task, measured by this thread's clock around it.
It uses the Postgres server of ARENA_DATABASE_URL (a database `arena_bench_inference` is made
and dropped) or an embedded one, and the Redis of ARENA_REDIS_URL (database 12, emptied) or an
embedded one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from benchmarks.common import ROOT, bench_database, bench_redis

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"


def _prompts(url: str, data_dir: Path, count: int, seconds: float) -> None:
    """`count` prompts, each with a clip of its own in storage (`seconds` of noise, which
    compresses worse than speech, so decoding it costs a little more than a real prompt)."""
    import numpy as np
    from sqlalchemy import create_engine

    from app.audio.codec import encode
    from app.audio.storage import LocalStorage

    rng = np.random.default_rng(0)
    clip = encode((0.1 * rng.standard_normal(int(seconds * 24_000))).astype("float32"), 24_000)
    storage = LocalStorage(data_dir / "audio")
    keys = [storage.put(clip) for _ in range(count)]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO prompts (key, dataset, text, task, language, level, domain, audio_key, "
            "duration_s, active, created_at) VALUES (:key, 'bench', 'a prompt', 'chat', 'en', "
            "'L1', 'education', :audio, 3.0, true, now())"),
            [{"key": f"p{n:05d}", "audio": key} for n, key in enumerate(keys)])
    engine.dispose()


def _cpu_seconds(worker_pids: list[int]) -> dict[str, float]:
    """CPU time used so far by the workers, this process (the fake server runs here),
    Postgres and Redis, read from /proc (Linux); empty elsewhere."""
    tick = os.sysconf("SC_CLK_TCK")
    groups = {"workers": 0.0, "this process (the model)": 0.0, "postgres": 0.0, "redis": 0.0}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        ppid, used = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
        if pid in worker_pids or ppid in worker_pids:
            groups["workers"] += used
        elif pid == os.getpid():
            groups["this process (the model)"] += used
        elif comm.startswith("postgres"):
            groups["postgres"] += used
        elif comm.startswith("redis"):
            groups["redis"] += used
    return groups


def _start_jobs(session_factory, model_ids: list[int], settings,
                prompt_keys: list[str]) -> tuple[list[int], list[int]]:
    """A job per model over `prompt_keys`, one model after another (as an admin would start
    them); returns (job ids, response ids in that order)."""
    from app.db.models import SpeechModel
    from app.inference import service

    job_ids, response_ids = [], []
    with session_factory() as session:
        for model_id in model_ids:
            job, ids = service.start_job(session, session.get(SpeechModel, model_id), settings,
                                         prompt_keys=prompt_keys)
            job_ids.append(job.id)
            response_ids += ids
        session.commit()
    return job_ids, response_ids


def _run_job(session_factory, model_ids: list[int], settings, prompt_keys: list[str],
             *, paused: bool = False, worker_pids: list[int] = ()) -> tuple[float, float, dict]:
    """Start a job per model and wait for them all. With `paused`, the workers stop taking
    inference tasks while the jobs are queued, so that the clock measures the workers alone
    (queueing happens in the web process). Returns (seconds to queue, seconds from then until
    done, CPU seconds used meanwhile)."""
    from app.db.models import Job
    from app.inference import service
    from workers.celery_app import celery_app

    if paused:
        celery_app.control.cancel_consumer("inference", reply=True)
    started = time.perf_counter()
    job_ids, ids = _start_jobs(session_factory, model_ids, settings, prompt_keys)
    service.enqueue(ids)
    queued = time.perf_counter()
    cpu_before = _cpu_seconds(list(worker_pids))
    if paused:
        celery_app.control.add_consumer("inference", reply=True)
        queued = time.perf_counter()
    while True:
        with session_factory() as session:
            jobs = [session.get(Job, job_id) for job_id in job_ids]
            if all(job.status in ("done", "failed") for job in jobs):
                if failed := [job for job in jobs if job.failed]:
                    raise RuntimeError(f"{sum(job.failed for job in failed)} tasks failed: "
                                       f"{failed[0].errors[:3]}")
                elapsed = time.perf_counter() - queued
                cpu = {name: round(used - cpu_before[name], 2)
                       for name, used in _cpu_seconds(list(worker_pids)).items()}
                return queued - started, elapsed, cpu
        time.sleep(0.02)


def _parts(session_factory, model_ids: list[int], settings, prompt_keys: list[str]) -> dict:
    """CPU ms per task of each part of a task, over `prompt_keys` for each model, run here one
    by one. The model answers from a thread of its own, whose CPU this thread's clock does
    not count."""
    import functools
    from collections import Counter

    from app.audio.storage import LocalStorage
    from app.inference import limits, runner, service
    from app.inference.adapters import openai_chat_audio

    spent: Counter[str] = Counter()
    parts = [(service, "claim", "claim the row (SQL)"),
             (service, "finish_ready", "finish and count it (SQL)"),
             (limits.ModelLimits, "try_acquire", "take a slot (Redis)"),
             (limits.ModelLimits, "release", "release it, record the outcome (Redis)"),
             (runner, "prompt_audio", "read and convert the prompt"),
             (openai_chat_audio.OpenAIChatAudio, "generate", "the openai client's request"),
             (runner, "_canonical", "check and re-encode the answer"),
             (LocalStorage, "put", "store the answer (file)")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in parts]

    def timed(function, label):
        @functools.wraps(function)
        def inner(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - started
        return inner

    _, ids = _start_jobs(session_factory, model_ids, settings, prompt_keys)

    def reschedule(countdown: float, attempt: int) -> None:
        raise RuntimeError("a benchmark task asked to be retried")

    for owner, name, label in parts:
        setattr(owner, name, timed(getattr(owner, name), label))
    try:
        started = time.thread_time()
        for response_id in ids:
            outcome = runner.run(response_id, 0, reschedule)
            if outcome != "ready":
                raise RuntimeError(f"a benchmark task ended {outcome!r}")
        total = time.thread_time() - started
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)
    result = {label: round(1000 * used / len(ids), 2) for label, used in spent.most_common()}
    result["everything else"] = round(1000 * (total - sum(spent.values())) / len(ids), 2)
    result["whole task"] = round(1000 * total / len(ids), 2)
    return result


def _setting(run: dict) -> str:
    """What a run's medians are grouped by: "3.0 s" (one model), "3.0 s, 4 models"."""
    models = run.get("models", 1)
    return f"{run['prompt_seconds']} s" + (f", {models} models" if models > 1 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--models", type=int, default=1,
                        help="models that share the prompts (tasks/models prompts each)")
    parser.add_argument("--fresh", action="store_true",
                        help="start the results file over instead of adding this run")
    parser.add_argument("--prompt-seconds", type=float, default=3.0,
                        help="length of each prompt clip")
    parser.add_argument("--threads", type=int, default=8,
                        help="tasks in flight per worker process (Celery's threads pool)")
    parser.add_argument("--parts", action="store_true",
                        help="also measure each part of a task in this process")
    parser.add_argument("--part-tasks", type=int, default=1000)
    args = parser.parse_args()
    if args.tasks % args.models or args.part_tasks % args.models:
        parser.error("--tasks and --part-tasks must be multiples of --models")
    per_model, part_prompts = args.tasks // args.models, args.part_tasks // args.models

    data_dir = Path(tempfile.mkdtemp(prefix="arena-bench-inference-"))
    with bench_database("arena_bench_inference") as db_url, bench_redis(12) as redis_url:
        env = os.environ | {"ARENA_DATABASE_URL": db_url, "ARENA_REDIS_URL": redis_url,
                            "ARENA_DATA_DIR": str(data_dir), "ARENA_ENVIRONMENT": "test"}
        os.environ.update(env)
        from app.config import get_settings
        from app.db.session import new_session
        from app.speech_models.schemas import SpeechModelCreate
        from app.speech_models import service as models
        from benchmarks.fake_model import InstantModel, running

        get_settings.cache_clear()
        settings = get_settings()
        extra = part_prompts if args.parts else 0
        _prompts(db_url, data_dir, per_model + 50 + extra, args.prompt_seconds)
        fake = InstantModel()
        with running(fake) as fake_url:
            with new_session() as session:
                model_ids = [models.create(session, SpeechModelCreate.model_validate({
                    "name": f"bench-omni-{n}", "input_sample_rate": 16_000,
                    "adapter": {"kind": "openai_chat_audio", "base_url": fake_url,
                                "model": "fake", "max_concurrency": 256,
                                "requests_per_minute": None},
                }), settings).id for n in range(args.models)]
                session.commit()
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                     "--queues", "inference", "--pool", "threads", "--concurrency",
                     str(args.threads), "--loglevel", "WARNING",
                     "--hostname", f"bench{n}@%h", "--without-gossip", "--without-mingle"],
                    env=env, cwd=ROOT)
                for n in range(args.workers)
            ]
            load_before = os.getloadavg()
            try:
                warm = [f"p{n:05d}" for n in range(per_model, per_model + 50)]
                _run_job(new_session, model_ids[:1], settings, warm)  # start-up and imports
                requests_before = fake.requests
                queueing, elapsed, cpu = _run_job(
                    new_session, model_ids, settings,
                    [f"p{n:05d}" for n in range(per_model)], paused=True,
                    worker_pids=[process.pid for process in workers])
            finally:
                for process in workers:
                    process.terminate()
                for process in workers:
                    process.wait(30)
            load_after = os.getloadavg()
            done = fake.requests - requests_before
            parts = _parts(new_session, model_ids, settings, [
                f"p{n:05d}" for n in range(per_model + 50, per_model + 50 + extra)
            ]) if args.parts else None
    result = {
        "tasks": args.tasks, "prompt_seconds": args.prompt_seconds, "models": args.models,
        "worker_processes": args.workers, "threads_per_process": args.threads,
        "cpus": os.cpu_count(),
        "seconds_to_queue": round(queueing, 2),
        "seconds": round(elapsed, 2), "tasks_per_second": round(args.tasks / elapsed, 1),
        "ms_per_task_per_process": round(1000 * elapsed * args.workers / args.tasks, 2),
        "requests_seen_by_the_fake": done, "target_tasks_per_second": 100,
        "cpu_seconds_while_running": cpu,
        "cpu_ms_per_task": {name: round(1000 * used / args.tasks, 2) for name, used in cpu.items()},
        # The machine's load (1, 5 and 15 minute averages) when the timed job started and ended:
        # on a shared machine, other work inflates both the time and the CPU per task.
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in load_after]},
    }
    if parts is not None:
        result["cpu_ms_per_task_by_part_in_one_thread"] = parts
    print(json.dumps(result, indent=2))
    # Runs accumulate (this machine's figures vary by ±10% from run to run), with the medians
    # per setting (prompt length and models); --fresh starts the file over.
    runs = []
    if RESULTS.exists() and not args.fresh:
        try:
            runs = json.loads(RESULTS.read_text()).get("runs", [])
        except (ValueError, AttributeError):
            runs = []
    result["repeat"] = 1 + sum(1 for run in runs if _setting(run) == _setting(result))
    runs = sorted(runs + [result], key=lambda run: (run["prompt_seconds"], run.get("models", 1),
                                                    run["repeat"]))
    settings_seen = list(dict.fromkeys(_setting(run) for run in runs))

    def median(value) -> dict[str, float]:
        return {setting: statistics.median(value(run) for run in runs
                                           if _setting(run) == setting)
                for setting in settings_seen}

    medians = median(lambda run: run["tasks_per_second"])
    worker_cpu = median(lambda run: run["cpu_ms_per_task"]["workers"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"median_tasks_per_second": medians,
                                   "median_worker_cpu_ms_per_task": worker_cpu, "runs": runs},
                                  indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

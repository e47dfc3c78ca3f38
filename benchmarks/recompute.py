"""Leaderboard speed at Chatbot Arena scale.

Fills a fresh Postgres database with 1,000,000 votes among 100 models (prompts over the four
domains and four levels, human raters and two judges), then measures, each in a fresh process:

1. the overall Bradley–Terry fit with 1,000 bootstrap rounds from aggregated counts (the
   counts read once, then timed: fit + bootstrap + intervals);
2. a full recompute as the worker runs it: read the log, aggregate each standard slice (all,
   humans, each judge, each domain, each level) and replay its online Elo, fit and bootstrap it,
   store the snapshots.

Each measurement runs `--repeat` times (3 by default), each in a fresh process, and reports wall
time and the process's CPU time (all its threads; the database server's work is not in it), with
the load average of the machine at the time: on a shared machine the wall time varies with what
else runs, the CPU time much less.

Run: python -m benchmarks.recompute [--votes 1000000] [--models 100] [--repeat 3] [--keep]
It uses the Postgres server of ARENA_DATABASE_URL (a database `arena_bench` is made and dropped)
or, when that is unset, an embedded one under a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from benchmarks.common import ROOT, bench_database

RESULTS = Path(__file__).resolve().parent / "results" / "recompute.json"


def fill(url: str, votes: int, models: int) -> None:
    """Models, prompts, responses, raters, then battles and votes made in SQL, where a model's
    chance to win follows Bradley–Terry strengths with an Elo spread of about 150."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO speech_models (name, input_sample_rate, adapter, active, created_at, updated_at)
            SELECT 'model-' || lpad(g::text, 3, '0'), 16000, '{"kind": "upload"}', true, now(), now()
            FROM generate_series(1, %s) g""", (models,))
        conn.execute("""
            INSERT INTO prompts (key, dataset, text, task, language, level, domain, audio_key,
                                 duration_s, active, created_at)
            SELECT 'p' || g, 'bench', 'prompt ' || g, 'task ' || (g % 19), 'en',
                   'L' || (1 + g % 4),
                   (ARRAY['education', 'social companionship', 'entertainment',
                          'medical consultation'])[1 + (g / 4) % 4],
                   'bench', 3.0, true, now()
            FROM generate_series(0, 159) g""")
        conn.execute("""
            INSERT INTO responses (prompt_id, model_id, status, audio_key, duration_s, source, created_at)
            SELECT p.id, m.id, 'ready', 'bench', 3.0, 'upload', now()
            FROM prompts p CROSS JOIN speech_models m""")
        conn.execute("""
            INSERT INTO raters (kind, name, created_at)
            SELECT 'human', 'annotator-' || g, now() FROM generate_series(1, 1000) g
            UNION ALL SELECT 'judge', 'gemini-2.5-pro-pairwise', now()
            UNION ALL SELECT 'judge', 'qwen2.5-omni-pairwise', now()""")
        conn.execute("SELECT setseed(0.42)")
        conn.execute("""
            CREATE TEMP TABLE strength AS
            SELECT id, 150.0 / 400.0 * ln(10) * sqrt(-2 * ln(random())) * cos(2 * pi() * random()) AS s
            FROM speech_models""")
        conn.execute("""
            CREATE TEMP TABLE draws AS
            SELECT g AS n,
                   1 + floor(random() * %(m)s)::int AS a,
                   1 + floor(random() * (%(m)s - 1))::int AS b0,
                   1 + floor(random() * 160)::int AS p,
                   1 + floor(random() * 1002)::int AS r,
                   random() AS u
            FROM generate_series(1, %(v)s) g""", {"m": models, "v": votes})
        conn.execute("UPDATE draws SET b0 = b0 + 1 WHERE b0 >= a")
        conn.execute("""
            INSERT INTO battles (id, token, prompt_id, response_a_id, response_b_id, model_a_id,
                                 model_b_id, rater_id, served_at, expires_at)
            SELECT d.n, 'bench-' || d.n, pr.id, ra.id, rb.id, d.a, d.b0, d.r, now(), now()
            FROM draws d
            JOIN prompts pr ON pr.id = d.p
            JOIN responses ra ON ra.prompt_id = pr.id AND ra.model_id = d.a
            JOIN responses rb ON rb.prompt_id = pr.id AND rb.model_id = d.b0""")
        conn.execute("""
            INSERT INTO votes (id, battle_id, rater_id, outcome, created_at)
            SELECT d.n, d.n, d.r,
                   CASE WHEN d.u < 1 / (1 + exp(sb.s - sa.s)) THEN 'a' ELSE 'b' END, now()
            FROM draws d JOIN strength sa ON sa.id = d.a JOIN strength sb ON sb.id = d.b0
            ORDER BY d.n""")
        conn.execute("SELECT setval(pg_get_serial_sequence('votes', 'id'), %s)", (votes,))
        conn.execute("SELECT setval(pg_get_serial_sequence('battles', 'id'), %s)", (votes,))
        conn.execute("ANALYZE")


def measure(kind: str, url: str) -> dict:
    """Run one measurement in a fresh process and return its timings and peak memory."""
    env = os.environ | {"ARENA_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "benchmarks.recompute", "--measure", kind],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_overall() -> dict:
    from sqlalchemy import func, select

    from app.config import get_settings
    from app.db.models import SpeechModel, Vote
    from app.db.session import session_scope
    from app.leaderboard.service import Slice, SliceMasks, read_log, slice_votes
    from app.ratings import bt

    with session_scope() as session:
        max_vote_id = session.scalar(select(func.max(Vote.id)))
        models = list(session.scalars(select(SpeechModel.id).order_by(SpeechModel.id)))
        start = time.perf_counter()
        log = read_log(session, max_vote_id)
        rows, _ = slice_votes(log, SliceMasks(session, log).mask(Slice()), models)
        read = time.perf_counter() - start
    counts = bt.PairCounts.from_counts(rows)
    settings = get_settings().leaderboard
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    table = bt.table(counts, rounds=1000, seed=0, ridge=settings.ridge, min_votes=settings.min_votes)
    fit, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"read_and_aggregate_s": round(read, 3), "fit_and_1000_rounds_s": round(fit, 3),
            "fit_and_1000_rounds_cpu_s": round(fit_cpu, 3), "load_average": round(load, 2),
            "cells": int((counts.cell_counts() > 0).sum()), "models": counts.n_models,
            "stability": table.stability, "peak_rss_mb": _peak_mb()}


def _measure_full() -> dict:
    from app.config import get_settings
    from app.db.session import session_scope
    from app.leaderboard import service

    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    with session_scope() as session:
        slices = service.standard_slices(session)
        snapshots = service.compute(session, slices, get_settings().leaderboard)
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"full_recompute_s": round(total, 3), "full_recompute_cpu_s": round(total_cpu, 3),
            "load_average": round(load, 2), "slices": [s.slice_key for s in snapshots],
            "votes": snapshots[0].vote_count, "peak_rss_mb": _peak_mb()}


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--measure", choices=["overall", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = _measure_overall() if args.measure == "overall" else _measure_full()
        print(json.dumps(result))
        return 0

    with bench_database("arena_bench", keep=args.keep) as bench_url:
        start = time.perf_counter()
        fill(bench_url, args.votes, args.models)
        print(f"filled {args.votes:,} votes among {args.models} models in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        overall, full = [], []
        for _ in range(args.repeat):  # alternated, so both see the machine's changing load
            overall.append(measure("overall", bench_url))
            print("overall fit:", json.dumps(overall[-1]), flush=True)
            full.append(measure("full", bench_url))
            print("full recompute:", json.dumps(full[-1]), flush=True)
    result = {"votes": args.votes, "models": args.models, "cpus": os.cpu_count(),
              "overall": overall, "full": full,
              "median": {
                  "fit_and_1000_rounds_s": _median(overall, "fit_and_1000_rounds_s"),
                  "fit_and_1000_rounds_cpu_s": _median(overall, "fit_and_1000_rounds_cpu_s"),
                  "overall_peak_rss_mb": _median(overall, "peak_rss_mb"),
                  "full_recompute_s": _median(full, "full_recompute_s"),
                  "full_recompute_cpu_s": _median(full, "full_recompute_cpu_s"),
                  "full_peak_rss_mb": _median(full, "peak_rss_mb")},
              "targets": {"overall_fit_s": 1.0, "overall_peak_mb": 500, "full_recompute_s": 10.0}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

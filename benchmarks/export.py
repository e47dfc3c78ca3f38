"""Streaming the vote log export at Chatbot Arena scale.

Fills a fresh Postgres database with 1,000,000 votes (as benchmarks/recompute.py does), then,
for each format (JSONL, Parquet), starts the web app in a fresh uvicorn process and downloads
GET /api/v1/exports/votes over HTTP, measuring:

- the server process's resident memory before the download (after a warm-up export of one
  vote) and its peak during it (VmHWM, reset before the download): the export's own memory is
  the difference (target: the peak under 200 MB, and the same for a log ten times shorter,
  which `--votes 100000 1000000` measures);
- wall time of the download, and the CPU time (user + system) it took of the server process,
  of Postgres and of this client;
- the same export written by `s2s-arena export-votes` in a process of its own: its wall time,
  CPU time and peak resident memory (the whole process's: target under 200 MB). The web
  process itself holds ~170 MB before any export (scipy, for the audio levelling and the
  rating code), so the REST download's peak is that plus the export's own;
- what arrived: bytes, and records (JSONL lines; Parquet rows and row groups from the footer).

Run: python -m benchmarks.export [--votes 100000 1000000] [--runs 2] [--keep]
It uses the Postgres server of ARENA_DATABASE_URL (a database `arena_bench_export` is made and
dropped) or, when that is unset, an embedded one.
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

import httpx
import psycopg
from sqlalchemy import make_url

from benchmarks.common import ROOT, bench_database
from benchmarks.recompute import fill

RESULTS = Path(__file__).resolve().parent / "results" / "export.json"
TOKEN = "bench-admin-token"
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _serve(url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = os.environ | {"ARENA_DATABASE_URL": url, "ARENA_ADMIN_TOKEN": TOKEN,
                        "ARENA_ENVIRONMENT": "test", "ARENA_SECRET_KEY": "bench-secret"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("uvicorn did not answer within 60 s")


def _postgres_cpu_s(url: str) -> float:
    """CPU time of the database's server processes serving the app (not this one's)."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]
    return sum(_cpu_s(pid) for pid in pids if Path(f"/proc/{pid}").exists())


def measure(url: str, fmt: str, votes: int) -> dict:
    """One download of the whole log in a fresh server process."""
    process, base = _serve(url)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        rss_started = _memory_mb(process.pid, "VmRSS")
        # Warm up with an export of the last vote: the first request imports what it needs
        # (pyarrow, which loads pandas where it is installed) and connects. Then the peak is
        # reset (clear_refs 5), so VmHWM after the download is the download's own peak.
        httpx.get(f"{base}/api/v1/exports/votes", params={"format": fmt, "after_id": votes - 1},
                  headers=headers, timeout=60).raise_for_status()
        rss_before = _memory_mb(process.pid, "VmRSS")
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")
        cpu_before, db_cpu_before = _cpu_s(process.pid), _postgres_cpu_s(url)
        client_before = time.process_time()
        size = lines = 0
        with tempfile.NamedTemporaryFile(suffix="." + fmt) as out:
            start = time.perf_counter()
            with httpx.stream("GET", f"{base}/api/v1/exports/votes", params={"format": fmt},
                              headers=headers, timeout=1800) as reply:
                reply.raise_for_status()
                for chunk in reply.iter_bytes():
                    size += len(chunk)
                    if fmt == "jsonl":
                        lines += chunk.count(b"\n")
                    else:
                        out.write(chunk)
            wall = time.perf_counter() - start
            peak = _memory_mb(process.pid, "VmHWM")
            result = {"format": fmt, "wall_s": round(wall, 2),
                      "server_cpu_s": round(_cpu_s(process.pid) - cpu_before, 2),
                      "postgres_cpu_s": round(_postgres_cpu_s(url) - db_cpu_before, 2),
                      "client_cpu_s": round(time.process_time() - client_before, 2),
                      "bytes": size, "server_rss_started_mb": rss_started,
                      "server_rss_before_mb": rss_before, "server_peak_rss_mb": peak,
                      "export_added_mb": round(peak - rss_before, 1)}
            if fmt == "jsonl":
                result["records"] = lines
            else:
                import pyarrow.parquet as pq

                out.flush()
                meta = pq.ParquetFile(out.name).metadata
                result["records"], result["row_groups"] = meta.num_rows, meta.num_row_groups
        return result
    finally:
        process.terminate()
        process.wait(15)


def measure_command(url: str, fmt: str, votes: int) -> dict:
    """The same export written to a file by `s2s-arena export-votes` in a process of its own:
    its peak resident memory is the whole process's (Python, the database driver, pyarrow
    for Parquet, and the export), from the kernel's accounting of that one child."""
    env = os.environ | {"ARENA_DATABASE_URL": url, "ARENA_SECRET_KEY": "bench-secret",
                        "ARENA_ENVIRONMENT": "test"}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"votes.{fmt}"
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "app.cli", "export-votes", "--out",
                                    str(out), "--format", fmt], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if process.returncode != 0:
            raise RuntimeError(f"export-votes exited with {process.returncode}")
        result = {"format": fmt, "way": "command", "wall_s": round(wall, 2),
                  "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                  "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                  "bytes": out.stat().st_size}
        if fmt == "jsonl":
            with out.open("rb") as handle:
                result["records"] = sum(1 for _ in handle)
        else:
            import pyarrow.parquet as pq

            result["records"] = pq.ParquetFile(out).metadata.num_rows
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, nargs="+", default=[1_000_000],
                        help="log lengths, each in a fresh database")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2, help="downloads per format")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    results = []
    for votes in args.votes:
        runs: dict[str, list[dict]] = {"jsonl": [], "parquet": []}
        commands: dict[str, list[dict]] = {"jsonl": [], "parquet": []}
        with bench_database("arena_bench_export", keep=args.keep) as bench_url:
            start = time.perf_counter()
            fill(bench_url, votes, args.models)
            print(f"filled {votes:,} votes in {time.perf_counter() - start:.1f} s", flush=True)
            for _ in range(args.runs):
                for fmt in runs:
                    result = measure(bench_url, fmt, votes)
                    if result["records"] != votes:
                        raise RuntimeError(f"{fmt}: {result['records']} records, not {votes}")
                    print(json.dumps(result), flush=True)
                    runs[fmt].append(result)
                    result = measure_command(bench_url, fmt, votes)
                    if result["records"] != votes:
                        raise RuntimeError(f"{fmt}: {result['records']} records, not {votes}")
                    print(json.dumps(result), flush=True)
                    commands[fmt].append(result)
        def median(values):
            return round(statistics.median(values), 2)

        summary = {fmt: {
            "median_wall_s": median(r["wall_s"] for r in done),
            "median_server_cpu_s": median(r["server_cpu_s"] for r in done),
            "median_postgres_cpu_s": median(r["postgres_cpu_s"] for r in done),
            "max_export_added_mb": max(r["export_added_mb"] for r in done),
            "max_server_peak_rss_mb": max(r["server_peak_rss_mb"] for r in done),
            "bytes": done[0]["bytes"]} for fmt, done in runs.items()}
        summary["command"] = {fmt: {
            "median_wall_s": median(r["wall_s"] for r in done),
            "median_cpu_s": median(r["cpu_s"] for r in done),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in done),
            "bytes": done[0]["bytes"]} for fmt, done in commands.items()}
        print(json.dumps({"votes": votes, **summary}, indent=2), flush=True)
        results.append({"votes": votes, "summary": summary, "runs": runs, "command_runs": commands})
    report = {"models": args.models, "cpus": os.cpu_count(), "results": results,
              "targets": {"peak_rss_mb": 200}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `s2s-arena` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.config import WORKER_QUEUES


def _demo(args: argparse.Namespace) -> int:
    from app.launcher import run_demo

    return run_demo(host=args.host, port=args.port, load_demo_data=not args.no_demo_data)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.config import get_settings

    get_settings().require_redis_url()
    get_settings().require_database_url()

    uvicorn.run("app.main:app", host=args.host, port=args.port, proxy_headers=True)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from app.config import get_settings

    get_settings().require_redis_url()
    get_settings().require_database_url()
    from workers.celery_app import celery_app

    celery_app.worker_main(["worker", "--queues", args.queues, "--pool", args.pool,
                            "--concurrency", str(args.concurrency), "--loglevel", args.loglevel])
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade_to_head

    upgrade_to_head()
    print("migrations applied")
    return 0


def _load_demo(args: argparse.Namespace) -> int:
    from app.audio.storage import get_storage
    from app.config import get_settings
    from app.db.session import session_scope
    from app.demo import load_demo

    with session_scope() as session:
        loaded = load_demo(session, get_storage(), get_settings().audio)
    print("demo dataset loaded" if loaded else "demo dataset already loaded")
    return 0


def _import_dataset(args: argparse.Namespace) -> int:
    from app.audio.storage import StagedWrites, get_storage
    from app.config import get_settings
    from app.datasets import service
    from app.datasets.bundle import open_bundle
    from app.db.session import session_scope

    with session_scope() as session, StagedWrites(get_storage()) as staged:
        result = service.import_dataset(session, open_bundle(args.path), staged,
                                        get_settings().audio, dataset=args.name)
        session.commit()
    print(f"imported {result.prompts} prompts into dataset {result.dataset!r}")
    return 0


def _export_votes(args: argparse.Namespace) -> int:
    """The vote log as GET /api/v1/exports/votes gives it, written to a file by this process:
    for cron jobs on the server's host, and for logs too long to download comfortably. The
    file appears whole or not at all (written beside it, then renamed)."""
    import tempfile
    from dataclasses import replace

    from app.config import get_settings
    from app.db.session import session_scope
    from app.exports import votes
    from app.exports.stream import check_rater, parse_filters

    settings = get_settings()
    settings.require_database_url()
    filters = parse_filters(domain=args.domain, level=args.level, task=args.task,
                            language=args.language, dataset=args.dataset)
    with session_scope() as session:
        rater = check_rater(session, args.rater)
    filters = replace(filters, rater=rater, after_id=args.after_id,
                      include_excluded=args.include_excluded)
    write = votes.parquet if args.format == "parquet" else votes.jsonl
    out = args.out.resolve()
    fd, partial = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in write(filters, settings.secret_key):
                handle.write(piece)
        os.replace(partial, out)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from app.ratings import board, logs
    from app.ratings.elo import online_elo

    log = logs.read_log(args.file)
    votes = logs.select_votes(log, domain=args.domain, level=args.level, task=args.task,
                              language=args.language, dataset=args.dataset, rater=args.rater,
                              anony=True if args.anony_only else None)
    counts = Counter((v.model_a, v.model_b, v.outcome) for v in votes)
    models = sorted({m for v in log.votes for m in (v.model_a, v.model_b)})
    table = board.build(
        [(a, b, o, n) for (a, b, o), n in counts.items()],
        {m: r.rating for m, r in online_elo((v.model_a, v.model_b, v.outcome)
                                            for v in votes).items()},
        models=models, names={m: m for m in models}, rounds=args.rounds, seed=args.seed,
        min_votes=args.min_votes, recipe=args.recipe,
    )
    table["format"] = log.format
    table["dropped_self_battles"] = log.dropped_self_battles
    table["params"] = {"rounds": args.rounds, "seed": args.seed, "min_votes": args.min_votes,
                       "recipe": args.recipe}
    if args.json:
        for entry in table["models"]:
            entry.pop("id")
        print(json.dumps(table, indent=2, ensure_ascii=False))
    else:
        print(_format_table(table))
    return 0


def _format_table(table: dict) -> str:
    lines = [f"{'rank':>4}  {'model':<36} {'rating':>7} {'95% CI':>13} {'elo':>7} "
             f"{'W':>5} {'L':>5} {'T':>5} {'matches':>7} {'win rate':>8}"]
    for m in table["models"]:
        rank = str(m["rank_ub"]) if m["rank_ub"] else "-"
        ci = f"{m['ci_lower']:.0f}-{m['ci_upper']:.0f}" if m["ci_lower"] is not None else ""
        name = m["name"] + (" (provisional)" if m["provisional"] else "")
        lines.append(f"{rank:>4}  {name:<36} {m['rating']:>7.1f} {ci:>13} {m['elo']:>7.1f} "
                     f"{m['wins']:>5g} {m['losses']:>5g} {m['ties']:>5g} {m['matches']:>7} "
                     f"{100 * m['win_rate']:>7.1f}%")
    mean, sd = table["stability"]["spearman_mean"], table["stability"]["spearman_sd"]
    lines.append("")
    lines.append(f"{table['votes']} votes ({table['format']} log); Bradley-Terry"
                 + (f" with the {table['params']['recipe']} recipe" if table["params"]["recipe"] else "")
                 + f", {table['params']['rounds']} bootstrap rounds, seed {table['params']['seed']}")
    if mean is not None:
        lines.append(f"ranking stability (Spearman, point vs bootstrap): {mean:.2f} ± {sd:.2f}")
    if table["dropped_self_battles"]:
        lines.append(f"left out: {table['dropped_self_battles']} battle(s) of a model against itself")
    if not table["connected"]:
        lines.append("warning: these models form groups that never met in a vote; ratings are "
                     "comparable only within a group:")
        lines += [f"  - {', '.join(group)}" for group in table["components"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="s2s-arena", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="start everything on embedded servers, in the foreground")
    demo.add_argument("--host", default=os.environ.get("ARENA_HOST", "127.0.0.1"))
    demo.add_argument("--port", type=int, default=int(os.environ.get("ARENA_PORT", "8000")))
    demo.add_argument("--no-demo-data", action="store_true", help="do not load the demo dataset")
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="run the web server (uvicorn)")
    serve.add_argument("--host", default=os.environ.get("ARENA_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("ARENA_PORT", "8000")))
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default=WORKER_QUEUES)
    worker.add_argument("--pool", choices=["prefork", "threads", "solo"], default="prefork",
                        help="prefork for CPU work (leaderboard); threads for the inference "
                             "queue, whose tasks mostly wait on remote models")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(run=_worker)

    commands.add_parser("migrate", help="apply the database migrations").set_defaults(run=_migrate)
    commands.add_parser("load-demo", help="import the demo dataset").set_defaults(run=_load_demo)

    imp = commands.add_parser("import-dataset", help="import a dataset folder or zip")
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", default=None)
    imp.set_defaults(run=_import_dataset)

    export = commands.add_parser(
        "export-votes", help="write the vote log to a file, as GET /api/v1/exports/votes",
        description="Write the vote log (the schema of README, Exports) to a JSONL or Parquet "
        "file, straight from the database, with the export API's filters.")
    export.add_argument("--out", type=Path, required=True, help="the file to write")
    export.add_argument("--format", choices=["jsonl", "parquet"], default=None,
                        help="default: from the file's suffix (.parquet, else jsonl)")
    for name in ("domain", "level", "task", "language", "dataset"):
        export.add_argument(f"--{name}", default=None)
    export.add_argument("--rater", default="all", help='"all", "human" or a judge\'s name')
    export.add_argument("--after-id", type=int, default=0,
                        help="only votes with a larger id (incremental pulls)")
    export.add_argument("--include-excluded", action="store_true",
                        help="also attention checks and flagged raters' votes")
    export.set_defaults(run=_export_votes)

    board = commands.add_parser(
        "leaderboard", help="print the leaderboard of a vote log file (no server needed)",
        description="Read a vote log (our JSONL export, Chatbot Arena's battle JSON, or Talk "
        "Arena's TinyDB dump) and print its leaderboard.")
    board.add_argument("file", type=Path)
    board.add_argument("--json", action="store_true", help="print the API's JSON shape")
    board.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds (default 1000)")
    board.add_argument("--seed", type=int, default=0)
    board.add_argument("--min-votes", type=int, default=20,
                       help="fewer votes: provisional, not ranked (default 20)")
    board.add_argument("--recipe", choices=["chatbot-arena"], default=None,
                       help="the L2-penalised logistic regression Chatbot Arena published with")
    for name in ("domain", "level", "task", "language", "dataset"):
        board.add_argument(f"--{name}", default=None)
    board.add_argument("--rater", default="all", help='"all", "human" or a judge\'s name')
    board.add_argument("--anony-only", action="store_true",
                       help="Chatbot Arena logs: only the anonymous battles")
    board.set_defaults(run=_leaderboard)

    from app.datasets.construction.cli import add_commands as add_dataset_commands

    add_dataset_commands(commands)

    args = parser.parse_args(argv)
    if args.command == "export-votes" and args.format is None:
        args.format = "parquet" if args.out.suffix == ".parquet" else "jsonl"
    from app.config import ConfigurationError
    from app.errors import ArenaError
    from app.ratings.logs import LogError

    try:
        return args.run(args)
    except ArenaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except (ConfigurationError, LogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

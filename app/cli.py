"""The `s2s-arena` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


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

    celery_app.worker_main(["worker", "--queues", args.queues, "--concurrency",
                            str(args.concurrency), "--loglevel", args.loglevel])
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
    worker.add_argument("--queues", default="default,leaderboard")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(run=_worker)

    commands.add_parser("migrate", help="apply the database migrations").set_defaults(run=_migrate)
    commands.add_parser("load-demo", help="import the demo dataset").set_defaults(run=_load_demo)

    imp = commands.add_parser("import-dataset", help="import a dataset folder or zip")
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", default=None)
    imp.set_defaults(run=_import_dataset)

    args = parser.parse_args(argv)
    from app.config import ConfigurationError
    from app.errors import ArenaError

    try:
        return args.run(args)
    except ArenaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The dataset commands' limits on remote calls: the workers' limiter in the real Redis, shared by
every run that calls the same service, and this process's pacing when Redis is away."""

from __future__ import annotations

import os
import threading

import pytest

from app.cli import main
from app.datasets.construction import augment
from app.datasets.construction.limits import SCOPE, Pacer, RemoteLimits
from app.datasets.construction.llm import LLMConfig, StructuredLLM

HEALTH = "Health consultation"


class OutOfBudget(Exception):
    """Raised instead of sleeping: a run that would wait for its turn stops there."""


def _stop(seconds: float) -> None:
    raise OutOfBudget(seconds)


def _augment_until_it_waits(seeds_file, out, url: str, model: str,
                            requests_per_minute: int) -> None:
    """One run of `dataset augment` (5 scripts of one subset) with its own Redis client, as
    another process would have; it stops at the first wait instead of sleeping."""
    import redis

    from app.config import get_settings

    settings = get_settings()
    config = LLMConfig(kind="gemini", model=model, base_url=url)
    limits = RemoteLimits(requests_per_minute,
                          client=lambda: redis.Redis.from_url(settings.redis_url), sleep=_stop)
    plan = augment.plan(augment.load_seeds(seeds_file, "category"), target=5,
                        subset_by="category", id_prefix="aug_", only=[HEALTH])
    runner = augment.Augmenter(plan, StructuredLLM(config, os.environ), out, seed=0,
                               policy=settings.inference,
                               limiter=limits.for_service(config.describe(), config.timeout_s),
                               notify=lambda message: None)
    try:
        runner.run()
    except OutOfBudget:
        pass


def _in_parallel(*runs) -> None:
    threads = [threading.Thread(target=run) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def _written(out) -> int:
    path = out / "scripts.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def test_two_runs_in_parallel_share_one_budget_per_service(gemini, seeds_file, tmp_path,
                                                           arena_env, fast_retries):
    """Two runs of 5 requests each against one service with 4 requests a minute: 4 requests
    reach the service in all, then both runs wait (the limit is a minute's budget, then one
    request every 15 s). Against two services, each run has its own budget of 4."""
    from app.redis_client import get_redis

    control, url = gemini
    same = [tmp_path / "a", tmp_path / "b"]
    _in_parallel(*(lambda out=out: _augment_until_it_waits(seeds_file, out, url, "m1", 4)
                   for out in same))
    assert len(control.requests) == 4
    assert sum(_written(out) for out in same) == 4
    keys = {key.decode() for key in get_redis().keys(f"arena:{SCOPE}:*")}
    assert f"arena:{SCOPE}:gemini m1 at {url}:rate" in keys

    control.requests.clear()
    apart = [tmp_path / "c", tmp_path / "d"]
    _in_parallel(*(lambda out=out, model=model: _augment_until_it_waits(
        seeds_file, out, url, model, 4) for out, model in zip(apart, ("m2", "m3"))))
    assert len(control.requests) == 8
    assert [_written(out) for out in apart] == [4, 4]


def test_the_command_takes_its_turns_from_redis(gemini, seeds_file, tmp_path, arena_env,
                                                capsys):
    from app.redis_client import get_redis

    control, url = gemini
    assert main(["dataset", "augment", str(seeds_file), "--out", str(tmp_path / "out"),
                 "--base-url", url, "--per-subset", "3", "--subset", HEALTH,
                 "--requests-per-minute", "60", "--max-concurrency", "2"]) == 0
    assert len(control.requests) == 3
    assert get_redis().exists(f"arena:{SCOPE}:gemini gemini-2.5-flash at {url}:rate")
    assert get_redis().zcard(f"arena:{SCOPE}:gemini gemini-2.5-flash at {url}:slots") == 0
    assert "note:" not in capsys.readouterr().err


@pytest.fixture
def dead_redis(monkeypatch):
    """ARENA_REDIS_URL pointing where nothing answers."""
    from app.config import get_settings
    from app.redis_client import reset_redis

    monkeypatch.setenv("ARENA_REDIS_URL", "redis://127.0.0.1:9/0")
    get_settings.cache_clear()
    reset_redis()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_redis()


def test_without_redis_the_run_paces_itself_and_says_so_once(gemini, seeds_file, tmp_path,
                                                             dead_redis, capsys):
    control, url = gemini
    assert main(["dataset", "augment", str(seeds_file), "--out", str(tmp_path / "out"),
                 "--base-url", url, "--per-subset", "2", "--requests-per-minute", "6000"]) == 0
    assert len(control.requests) == 4
    err = capsys.readouterr().err
    assert err.count("note: Redis does not answer") == 1
    assert "hold in this process only" in err


def test_with_no_redis_configured_limits_are_local():
    notes, slept = [], []
    limits = RemoteLimits(120, client=None, notify=notes.append, sleep=slept.append)
    for service in ("a", "b", "a"):
        with limits.for_service(service, 10).turn():
            pass
    assert len(notes) == 1 and "ARENA_REDIS_URL is not set" in notes[0]
    assert len(slept) == 1  # the second call to "a", within half a second of the first


def test_pacer_spaces_starts_evenly():
    now, slept = [100.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(120, clock=lambda: now[0], sleep=sleep)  # one start every 0.5 s
    pacer.wait()
    now[0] += 0.2
    pacer.wait()
    now[0] += 2.0
    pacer.wait()
    assert slept == [pytest.approx(0.3)]

"""Fixtures for the dataset commands: seed scripts, the fake LLM servers, fast retries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fakes import gemini_server, openai_server
from tests.fakes.server import Control

# scripts/test.sh installs Debian's espeak-ng when it can; without it these tests skip.
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")

SEEDS = [
    # (category, domain, level, text)
    ("Emotion recognition and expression", "social", "L4",
     "I finally got the results back from the lab today."),
    ("Emotion recognition and expression", "social", "L2",
     "My sister is moving to another city next month."),
    ("Emotion recognition and expression", "social", "L4",
     "The team picked someone else to lead the project."),
    ("Emotion recognition and expression", "social", "L3",
     "Please tell me about your weekend in a cheerful voice."),
    ("Emotion recognition and expression", "social", "L2",
     "They changed the schedule for the concert again."),
    ("Emotion recognition and expression", "social", "L4",
     "My grandfather called me this morning after a long time."),
    ("Health consultation", "medical", "L1", "I have a headache. What could be the cause?"),
    ("Health consultation", "medical", "L2",
     "If it rains tomorrow, how should I plan my day outside?"),
    ("Health consultation", "medical", "L3",
     "Explain how to treat a small burn, slowly and calmly."),
    ("Health consultation", "medical", "L4",
     "I keep waking up at night and I am so tired of it."),
    ("Health consultation", "medical", "L1", "How much water should an adult drink a day?"),
    ("Health consultation", "medical", "L3",
     "Tell me three stretches for back pain in a gentle tone."),
]


def seed_rows() -> list[dict]:
    return [{"id": f"seed_{i}", "text": text, "task": category, "category": category,
             "task_description": f"A {category.lower()} request", "language": "English",
             "text_cn": "", "level": level, "domain": domain}
            for i, (category, domain, level, text) in enumerate(SEEDS, start=1)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")
    return path


@pytest.fixture
def seeds_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "seeds.jsonl", seed_rows())


@pytest.fixture
def fast_retries(monkeypatch):
    """The workers' retry rules on a test's time scale."""
    from app.config import get_settings

    monkeypatch.setenv("ARENA_INFERENCE__BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("ARENA_INFERENCE__BACKOFF_MAX_S", "0.05")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def gemini(monkeypatch):
    control = Control(default="from_schema")
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")
    with gemini_server.running(control) as url:
        yield control, url


@pytest.fixture
def openai_fake(monkeypatch):
    control = Control(default="from_schema")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with openai_server.running(control) as url:
        yield control, url

"""`s2s-arena dataset augment`: self-instruct rounds through the real google-genai and openai
clients against the fake servers, near-duplicates, invalid replies, 429s, and resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import main
from app.datasets.construction import augment
from app.datasets.construction.llm import InvalidOutput, parse_reply
from tests.conftest import ADMIN, ROOT, make_zip
from tests.datasets.conftest import needs_espeak, seed_rows, write_jsonl

EMOTION = "Emotion recognition and expression"
HEALTH = "Health consultation"


def _run(seeds: Path, out: Path, url: str, *extra: str, llm: str = "gemini") -> int:
    return main(["dataset", "augment", str(seeds), "--out", str(out), "--llm", llm,
                 "--base-url", url, *extra])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_subset_grows_to_its_target_through_gemini(gemini, seeds_file, tmp_path, capsys,
                                                        fast_retries):
    control, url = gemini
    assert _run(seeds_file, tmp_path / "out", url, "--per-subset", "3") == 0

    rows = _rows(tmp_path / "out" / "scripts.jsonl")
    assert [row["id"] for row in rows] == [
        f"aug_emotion-recognition-and-expression_{n}" for n in (1, 2, 3)] + [
        f"aug_health-consultation_{n}" for n in (1, 2, 3)]
    assert [row["category"] for row in rows] == [EMOTION] * 3 + [HEALTH] * 3
    assert [row["domain"] for row in rows] == ["social companionship"] * 3 + [
        "medical consultation"] * 3
    seed_ids = {row["id"]: row["category"] for row in seed_rows()}
    for row in rows:
        assert set(augment.SCHEMA_KEYS) <= set(row) and row["level"] in ("L1", "L2", "L3", "L4")
        assert len(row["seed_ids"]) == 5
        assert {seed_ids[i] for i in row["seed_ids"]} == {row["category"]}
        assert row["generator"]["prompt_version"] == augment.PROMPT_VERSION

    # One request per script, the output held to the schema, the paper's prompts.
    assert len(control.requests) == 6
    request = control.requests[0]
    config = request["json"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" in config
    assert request["json"]["systemInstruction"]["parts"][0]["text"] == augment.SYSTEM_PROMPT
    [prompt] = [part["text"] for part in request["parts"]]
    assert prompt.startswith("Schema\n{") and "Level Guide\nLevel definitions:" in prompt
    assert "Seeds (5 examples)" in prompt and "significant different with the seeds" in prompt
    assert f"**<category>** should be {EMOTION}" in prompt
    assert 'this example\'s id is "aug_emotion-recognition-and-expression_1"' in prompt
    shown = json.loads(prompt.split("Seeds (5 examples)\n", 1)[1].split("\nTask\n", 1)[0])
    assert [list(seed) for seed in shown] == [list(augment.SCHEMA_KEYS)] * 5

    out = capsys.readouterr()
    assert "wrote 6 new scripts" in out.out and "spent 6 requests, 960 tokens in" in out.out
    assert "by level:" in out.out
    assert "social companionship" in out.out and "medical consultation" in out.out
    assert "6 scripts" in out.err or "6/6" in out.err  # the progress bar


def test_openai_compatible_models_get_a_json_schema_response_format(openai_fake, seeds_file,
                                                                   tmp_path, fast_retries):
    control, url = openai_fake
    assert _run(seeds_file, tmp_path / "out", url, "--per-subset", "1", "--subset", HEALTH,
                "--model", "gpt-4.1", llm="openai") == 0
    [row] = _rows(tmp_path / "out" / "scripts.jsonl")
    assert row["id"] == "aug_health-consultation_1" and row["category"] == HEALTH
    [request] = control.requests
    body = request["json"]
    assert body["model"] == "gpt-4.1"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == augment.SCRIPT_SCHEMA
    assert body["messages"][0] == {"role": "system", "content": augment.SYSTEM_PROMPT}


def test_invalid_fenced_and_rate_limited_replies(gemini, seeds_file, tmp_path, capsys,
                                                 fast_retries):
    control, url = gemini
    good = {"id": "whatever", "text": "Could you read my new poem back to me?",
            "task": "Poetry", "category": "anything", "task_description": "Read a poem",
            "language": "English", "text_cn": "", "level": "L3"}
    control.queue(
        "text:this is not JSON at all",
        "text:" + json.dumps({**good, "level": "L9"}),  # not the schema's JSON
        "429:0.3",
        "text:```json\n" + json.dumps(good) + "\n```",
    )
    assert _run(seeds_file, tmp_path / "out", url, "--per-subset", "1", "--subset", HEALTH) == 0

    [row] = _rows(tmp_path / "out" / "scripts.jsonl")
    assert row["text"] == good["text"] and row["level"] == "L3"
    assert row["id"] == "aug_health-consultation_1" and row["category"] == HEALTH
    drops = _rows(tmp_path / "out" / "drops.jsonl")
    assert [d["kind"] for d in drops] == ["invalid_output", "invalid_output"]
    assert "not valid JSON" in drops[0]["reason"] and drops[0]["reply"] == "this is not JSON at all"
    assert "level" in drops[1]["reason"]
    # The 429 was retried after the wait the server asked for, by the workers' rules.
    waited = control.requests[3]["at"] - control.requests[2]["at"]
    assert len(control.requests) == 4 and waited >= 0.3
    assert "HTTP 429" in capsys.readouterr().err


def test_a_round_gives_up_after_three_retries_of_invalid_output(gemini, seeds_file, tmp_path,
                                                                fast_retries):
    control, url = gemini
    control.queue(*["text:{broken"] * 4)
    assert _run(seeds_file, tmp_path / "out", url, "--per-subset", "1", "--subset", HEALTH) == 0
    drops = _rows(tmp_path / "out" / "drops.jsonl")
    assert [(d["round"], d["kind"]) for d in drops] == [(0, "invalid_output")] * 4
    [row] = _rows(tmp_path / "out" / "scripts.jsonl")  # round 1 asked afresh and succeeded
    assert row["id"] == "aug_health-consultation_1"


def test_near_duplicates_of_seeds_and_of_each_other_are_dropped(gemini, seeds_file, tmp_path,
                                                               fast_retries):
    control, url = gemini

    def reply(text: str) -> str:
        return "text:" + json.dumps({
            "id": "x", "text": text, "task": "t", "category": "c", "task_description": "d",
            "language": "English", "text_cn": "", "level": "L2"})

    control.queue(
        reply("I have a HEADACHE!! What could be the causes?"),  # a seed, 1 edit after normalising
        reply("What should I eat before running a marathon?"),
        reply("What should I eat before running a marathon today?"),  # 6 edits: kept
        reply("what should i eat, before running a marathon"),  # the accepted one again
    )
    assert _run(seeds_file, tmp_path / "out", url, "--per-subset", "3", "--subset", HEALTH) == 0
    rows = _rows(tmp_path / "out" / "scripts.jsonl")
    assert [row["text"] for row in rows][:2] == [
        "What should I eat before running a marathon?",
        "What should I eat before running a marathon today?"]
    drops = _rows(tmp_path / "out" / "drops.jsonl")
    assert [d["kind"] for d in drops] == ["near_duplicate", "near_duplicate"]
    assert "i have a headache what could be the cause" in drops[0]["reason"]
    assert "edit distance 0" in drops[1]["reason"]


def test_normalise_and_parse_reply():
    assert augment.normalise("  Hello,   WORLD!! ¿Qué?  ") == "hello world qué"
    assert augment.normalise("你好，世界。") == "你好 世界"
    script = parse_reply('```json\n{"id": "a", "text": "t", "task": "x", "language": "English", '
                         '"level": "L1"}\n```', augment.Script)
    assert script.text == "t"
    with pytest.raises(InvalidOutput, match="not valid JSON"):
        parse_reply("{'id': 1}", augment.Script)
    with pytest.raises(InvalidOutput, match="text: Field required"):
        parse_reply('{"id": "a", "task": "x", "language": "English", "level": "L1"}', augment.Script)


def test_dry_run_sends_nothing(gemini, seeds_file, tmp_path, capsys):
    control, url = gemini
    assert _run(seeds_file, tmp_path / "out", url, "--per-subset", "2", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"{EMOTION}: 6 seeds, 0 written, 2 to make (domain social companionship)" in out
    assert augment.SYSTEM_PROMPT in out and "Seeds (5 examples)" in out
    assert control.requests == [] and not (tmp_path / "out" / "scripts.jsonl").exists()


def test_bad_seeds_and_a_missing_key_are_refused_before_any_request(gemini, tmp_path, capsys,
                                                                    monkeypatch):
    control, url = gemini
    rows = seed_rows()
    rows[1]["level"] = "L7"
    rows[2]["domain"] = "sports"
    del rows[3]["text"]
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert _run(bad, tmp_path / "out", url) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl line 2: level 'L7' is not one of L1, L2, L3, L4" in err
    assert "line 3: domain 'sports'" in err and "line 4: text is missing" in err

    monkeypatch.delenv("GEMINI_API_KEY")
    assert _run(write_jsonl(tmp_path / "ok.jsonl", seed_rows()), tmp_path / "out", url) == 2
    assert "the environment variable GEMINI_API_KEY is not set" in capsys.readouterr().err
    assert control.requests == []


def _command(seeds: Path, out: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "dataset", "augment", str(seeds), "--out", str(out),
            "--base-url", url, "--per-subset", "5", "--seed", "7"]


def test_a_killed_run_resumes_to_what_an_uninterrupted_run_writes(gemini, seeds_file, tmp_path):
    control, url = gemini
    control.default = "from_schema:0.15"  # slow enough to be killed half-way
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    whole = tmp_path / "whole"
    subprocess.run(_command(seeds_file, whole, url), env=env, check=True, cwd=ROOT,
                   capture_output=True, timeout=120)

    resumed = tmp_path / "resumed"
    process = subprocess.Popen(_command(seeds_file, resumed, url), env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scripts = resumed / "scripts.jsonl"
    deadline = time.monotonic() + 60
    while not (scripts.exists() and scripts.read_text().count("\n") >= 3):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = scripts.read_text().count("\n")
    assert 3 <= killed_at < 10

    done = subprocess.run(_command(seeds_file, resumed, url), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {10 - killed_at} new scripts" in done.stdout
    assert scripts.read_text() == (whole / "scripts.jsonl").read_text()
    ids = [row["id"] for row in _rows(scripts)]
    assert len(ids) == len(set(ids)) == 10


@needs_espeak
def test_augmented_scripts_synthesize_into_a_dataset_the_api_imports(gemini, seeds_file,
                                                                     tmp_path, client):
    control, url = gemini
    assert _run(seeds_file, tmp_path / "aug", url, "--per-subset", "2") == 0
    scripts = _rows(tmp_path / "aug" / "scripts.jsonl")
    spoken = tmp_path / "spoken"
    assert main(["dataset", "synthesize", str(tmp_path / "aug" / "scripts.jsonl"), "--out",
                 str(spoken), "--noise", "default", "--snr", "20"]) == 0
    files = {p.relative_to(spoken).as_posix(): p.read_bytes()
             for p in spoken.rglob("*") if p.is_file()}
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "augment-v1"},
                        files={"file": ("augment.zip", make_zip(files), "application/zip")})
    assert reply.status_code == 201, reply.text
    prompts = {p["id"]: p for p in client.get("/api/v1/prompts", headers=ADMIN).json()}
    assert sorted(prompts) == sorted(row["id"] for row in scripts)
    for row in scripts:
        prompt = prompts[row["id"]]
        assert (prompt["text"], prompt["level"], prompt["category"], prompt["domain"]) == (
            row["text"], row["level"], row["category"], row["domain"])
        assert prompt["dataset"] == "augment-v1" and prompt["duration_s"] > 0.5

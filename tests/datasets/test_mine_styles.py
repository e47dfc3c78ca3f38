"""`s2s-arena dataset mine-styles`: the paper's generation prompts, the three tests with their
verdicts kept, contrast pairs out, resuming after a failure, and the chain through synthesis
into the real import."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import main
from app.datasets.construction import styles
from tests.conftest import ADMIN, make_zip
from tests.datasets.conftest import needs_espeak


def _mine(out: Path, url: str, *extra: str, llm: str = "gemini") -> int:
    return main(["dataset", "mine-styles", "--out", str(out), "--llm", llm, "--base-url", url,
                 *extra])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _text(value: dict) -> str:
    return "text:" + json.dumps(value)


SENTENCES = ["Can you recommend a screening test for someone my age?",
             "Should I shave before the wedding photos tomorrow?",
             "I want to get screened for cervical cancer."]


@needs_espeak
def test_sentences_pass_the_three_tests_or_are_rejected_with_reasons(gemini, tmp_path, client,
                                                                     capsys):
    control, url = gemini
    control.queue(
        _text({"requests": SENTENCES}),
        # 1: neutral, reasonable both ways, and the answers differ: kept
        _text({"verdict": "neutral", "reason": "nothing in the words says who speaks"}),
        _text({"style1": {"verdict": "reasonable", "reason": "anyone may ask"},
               "style2": {"verdict": "reasonable", "reason": "anyone may ask"}}),
        _text({"response": "A prostate check is worth discussing.", "speaking_style": "calm"}),
        _text({"response": "A mammogram is worth discussing.", "speaking_style": "calm"}),
        _text({"verdict": "different", "reason": "different screenings"}),
        # 2: the words give it away
        _text({"verdict": "male", "reason": "shaving before photos suggests a man"}),
        # 3: unreasonable for one style
        _text({"verdict": "neutral", "reason": "hard to tell"}),
        _text({"style1": {"verdict": "unreasonable", "reason": "men have no cervix"},
               "style2": {"verdict": "reasonable", "reason": "fine"}}),
    )
    out = tmp_path / "mined"
    assert _mine(out, url, "--category", "gender", "--topic", "Medical and Health Advice",
                 "--per-topic", "3") == 0
    assert "kept 1, rejected 1 by neutrality, 1 by reasonability" in capsys.readouterr().out
    assert len(control.requests) == 9

    generation = control.requests[0]
    [prompt] = [part["text"] for part in generation["parts"]]
    assert prompt.startswith("We want to test whether the spoken agent can really understand "
                             "gender from voice.")
    assert "Give me 3 requests (specific user request, not topic or category names) related to "\
        "Medical and Health Advice." in prompt
    assert generation["json"]["generationConfig"]["responseMimeType"] == "application/json"
    neutrality = control.requests[1]
    assert neutrality["json"]["generationConfig"]["responseJsonSchema"]["properties"]["verdict"][
        "enum"] == ["male", "female", "neutral"]
    assert f'Sentence: "{SENTENCES[0]}"' in neutrality["parts"][0]["text"]

    checked = _rows(out / "checked.jsonl")
    assert [(row["text"], row["passed"], row["failed"]) for row in checked] == [
        (SENTENCES[0], True, None), (SENTENCES[1], False, "neutrality"),
        (SENTENCES[2], False, "reasonability")]
    assert checked[0]["tests"]["relevance"]["verdict"] == "different"
    assert checked[0]["tests"]["relevance"]["responses"]["female"]["response"] == \
        "A mammogram is worth discussing."
    assert checked[1]["tests"]["neutrality"]["reason"] == "shaving before photos suggests a man"
    assert checked[2]["tests"]["reasonability"]["male"] == {"verdict": "unreasonable",
                                                            "reason": "men have no cervix"}
    assert all(row["tests_version"] == styles.TESTS_VERSION for row in checked)

    scripts = _rows(out / "scripts.jsonl")
    group = "para_gender_medical-and-health-advice_male-female_1"
    assert [(s["id"], s["gender"], s["contrast_group"], s["text"]) for s in scripts] == [
        (f"{group}_male", "male", group, SENTENCES[0]),
        (f"{group}_female", "female", group, SENTENCES[0])]

    # A second run has nothing left to ask.
    assert _mine(out, url, "--category", "gender", "--topic", "Medical and Health Advice",
                 "--per-topic", "3") == 0
    assert len(control.requests) == 9

    # The contrast pair, spoken by espeak-ng, imports through the API as two prompts.
    assert main(["dataset", "synthesize", str(out / "scripts.jsonl"), "--out",
                 str(tmp_path / "spoken")]) == 0
    files = {p.relative_to(tmp_path / "spoken").as_posix(): p.read_bytes()
             for p in (tmp_path / "spoken").rglob("*") if p.is_file()}
    reply = client.post("/api/v1/datasets", headers=ADMIN, data={"name": "gender-contrast"},
                        files={"file": ("g.zip", make_zip(files), "application/zip")})
    assert reply.status_code == 201, reply.text
    prompts = client.get("/api/v1/prompts", headers=ADMIN).json()
    assert {(p["gender"], p["contrast_group"], p["level"]) for p in prompts} == {
        ("male", group, "L4"), ("female", group, "L4")}


def test_invalid_replies_are_asked_again_then_recorded(gemini, tmp_path, fast_retries):
    control, url = gemini
    control.queue(_text({"requests": ["It looks like you've outdone yourself with these "
                                      "answers!"]}),
                  *["text:{not json"] * 4)
    out = tmp_path / "mined"
    assert _mine(out, url, "--category", "sarcasm", "--topic", "Internet Culture",
                 "--per-topic", "1") == 0
    [row] = _rows(out / "checked.jsonl")
    assert row["failed"] == "invalid_output"
    assert "not valid JSON" in row["tests"]["invalid_output"]["reason"]
    assert len(control.requests) == 5


def test_a_run_stopped_by_an_error_resumes_to_what_an_uninterrupted_run_writes(
        openai_fake, tmp_path, capsys, fast_retries):
    control, url = openai_fake
    arguments = ["--category", "emotion", "--pairs", "happy:sad,surprised:disgust", "--topic",
                 "Travel", "--topic", "Food & Drinks", "--per-topic", "2"]
    whole = tmp_path / "whole"
    assert _mine(whole, url, *arguments, llm="openai") == 0
    sent = len(control.requests)
    assert sent >= 8

    control.requests.clear()
    control.queue(*["from_schema"] * 6, "400")
    stopped = tmp_path / "stopped"
    assert _mine(stopped, url, *arguments, llm="openai") == 2
    assert "HTTP 400" in capsys.readouterr().err
    assert _mine(stopped, url, *arguments, llm="openai") == 0
    for name in ("candidates.jsonl", "checked.jsonl", "scripts.jsonl"):
        assert (stopped / name).read_text() == (whole / name).read_text() if (
            whole / name).exists() else not (stopped / name).exists()
    # nothing was asked twice: the stopped run's requests, less the failed one, plus the rest
    assert len(control.requests) == sent + 1


def test_dry_run_and_bad_options(gemini, tmp_path, capsys):
    control, url = gemini
    assert _mine(tmp_path / "m", url, "--category", "age", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "age: 8 generations (8 topics × 1 style pairs)" in out
    assert "Give me a DIVERSE dataset of 100 requests related to Location & Travel." in out
    assert control.requests == []
    assert _mine(tmp_path / "m", url, "--category", "age", "--pairs", "adult:child") == 2
    assert "--pairs is for --category emotion" in capsys.readouterr().err
    assert _mine(tmp_path / "m", url, "--category", "emotion", "--pairs", "happy") == 2
    assert "'happy' is not two different styles" in capsys.readouterr().err


def test_near_duplicate_candidates_are_not_tested(gemini, tmp_path):
    control, url = gemini
    control.queue(_text({"requests": ["I got a new job offer today.",
                                      "I got a new job offer, today!"]}),
                  _text({"verdict": "happy", "reason": "good news"}))
    out = tmp_path / "mined"
    assert _mine(out, url, "--category", "emotion", "--pairs", "happy:sad", "--topic",
                 "Work & Studies", "--per-topic", "2") == 0
    checked = _rows(out / "checked.jsonl")
    assert [(row["failed"], row["tests"].get("near_duplicate")) for row in checked] == [
        ("neutrality", None),
        ("near_duplicate", {"of": "i got a new job offer today", "distance": 0})]
    assert len(control.requests) == 2

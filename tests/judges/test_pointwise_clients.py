"""The pointwise pipeline judge (ParaS2S): the real google-genai and openai clients against the
fakes in tests/fakes, over real sockets. Each score is three requests, answered in order by
`Control.queue`: the transcript, the caption, the score."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf
from pydantic import TypeAdapter, ValidationError

from app.audio.codec import encode
from app.inference.adapters.base import PermanentError, TransientError
from app.judges.audio import JUDGE_RATE
from app.judges.configs import JudgeConfig, PipelinePointwise, Stage
from app.judges.pointwise import (
    NO_SPEECH,
    TRANSCRIPT_PROMPT,
    PointwiseResult,
    response_wav,
    score,
    score_prompt,
)
from app.judges.prompts import (
    CAPTION_PROMPT,
    SCORE_ANSWER,
    SCORE_JSON_ANSWER,
    SCORE_JSON_PROMPT,
    SCORE_PROMPT,
    SCORING_GUIDELINE,
)
from tests.fakes import gemini_server, openai_server
from tests.fakes.server import Control

GEMINI_ENV = {"GEMINI_API_KEY": "test-gemini-key"}
OPENAI_KEY_ENV = "JUDGE_OPENAI_KEY"
OPENAI_ENV = {OPENAI_KEY_ENV: "sk-judge-secret"}
PROMPT_TRANSCRIPT = "I finally got the job, I can't believe it!"
STYLES = {"emotion": "happy", "sarcasm": "sincere", "age": "adult", "gender": None}
TRANSCRIPT = "Congratulations, that is wonderful news!"
CAPTION = "A cheerful, warm voice at a lively pace."
FENCED_JSON = '```json\n{"reason": "It shares the joy.", "score": 4}\n```'
RATE = 24_000


@pytest.fixture(scope="module")
def flac() -> bytes:
    t = np.arange(int(0.8 * RATE)) / RATE
    return encode(0.3 * np.sin(2 * np.pi * 440.0 * t), RATE)


@pytest.fixture
def gemini():
    control = Control()
    with gemini_server.running(control) as url:
        yield control, url


@pytest.fixture
def openai_fake():
    control = Control()
    with openai_server.running(control) as url:
        yield control, url


def gemini_stage(url: str, model: str) -> dict:
    return {"kind": "gemini", "model": model, "base_url": url}


def openai_stage(url: str, model: str, key: bool = True) -> dict:
    return {"kind": "openai", "model": model, "base_url": url,
            "api_key_env": OPENAI_KEY_ENV if key else None}


def gemini_judge(url: str, **extra) -> PipelinePointwise:
    return PipelinePointwise(
        kind="pipeline_pointwise", name="paras2s", asr=gemini_stage(url, "gemini-2.5-flash"),
        caption=gemini_stage(url, "gemini-2.5-flash-lite"),
        scorer=gemini_stage(url, "gemini-2.5-pro"), **extra)


def run(config: PipelinePointwise, flac: bytes, environ=None) -> PointwiseResult:
    return score(config, response_audio=flac, prompt_transcript=PROMPT_TRANSCRIPT,
                 prompt_styles=STYLES, environ=GEMINI_ENV if environ is None else environ)


def wav_rate(wav: bytes) -> int:
    info = sf.info(io.BytesIO(wav))
    assert (info.format, info.channels, info.subtype) == ("WAV", 1, "PCM_16")
    return info.samplerate


def audio_parts(request: dict) -> list[dict]:
    return [part for part in request["parts"] if "mime_type" in part]


def text_of(request: dict) -> str:
    return "\n".join(part["text"] for part in request["parts"] if "text" in part)


# --- configs -------------------------------------------------------------------------------------

def test_the_config_defaults_to_the_gemini_pipeline_and_joins_the_judge_union():
    config = TypeAdapter(JudgeConfig).validate_python(
        {"kind": "pipeline_pointwise", "name": "paras2s"})
    assert isinstance(config, PipelinePointwise)
    assert [(s.kind, s.model, s.base_url, s.api_key_env)
            for s in (config.asr, config.caption, config.scorer)] == [
        ("gemini", "gemini-2.5-flash", None, "GEMINI_API_KEY"),
        ("gemini", "gemini-2.5-flash", None, "GEMINI_API_KEY"),
        ("gemini", "gemini-2.5-pro", None, "GEMINI_API_KEY")]
    assert (config.guideline, config.answer_format) == (None, "json")
    assert config.asr is not PipelinePointwise(kind="pipeline_pointwise", name="x").asr


def test_an_openai_stage_defaults_to_openai_and_sends_no_key_unless_named():
    stage = Stage(kind="openai", model="whisper-1")
    assert (stage.base_url, stage.api_key_env) == ("https://api.openai.com/v1", None)


@pytest.mark.parametrize("stage", [
    {"kind": "gemini", "model": "gemini-2.5-pro", "api_key": "AIza-secret"},
    {"kind": "gemini", "model": "gemini-2.5-pro", "api_key_env": "AIza-secret"},
    {"kind": "anthropic", "model": "claude"},
    {"kind": "openai", "model": ""},
])
def test_a_stage_refuses_secrets_and_unknown_kinds(stage):
    with pytest.raises(ValidationError):
        PipelinePointwise(kind="pipeline_pointwise", name="p", scorer=stage)


def test_a_custom_guideline_replaces_the_papers_and_gets_its_own_version():
    config = PipelinePointwise(kind="pipeline_pointwise", name="p",
                               guideline="Score 5 for answers under $10 of cost.")
    prompt = score_prompt(config)
    assert prompt.version.startswith(SCORE_JSON_PROMPT.version + "+guideline-")
    assert len(prompt.version) <= 64  # the scores.prompt_version column
    assert prompt.fields == SCORE_JSON_PROMPT.fields
    assert score_prompt(config.model_copy(update={"guideline": "Another."})).version != \
        prompt.version
    assert score_prompt(config.model_copy(update={"guideline": None})) is SCORE_JSON_PROMPT
    assert score_prompt(config.model_copy(update={"guideline": None,
                                                  "answer_format": "phrase"})) is SCORE_PROMPT


def test_the_response_is_sent_at_16_khz_mono(flac):
    assert wav_rate(response_wav(flac)) == JUDGE_RATE
    with pytest.raises(PermanentError, match="does not decode"):
        response_wav(b"not audio at all")


# --- Gemini --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("answer_format", "reply", "reason"), [
    ("json", FENCED_JSON, "It shares the joy."),
    ("phrase", "The reason is it shares the joy; The score is 4 .", "it shares the joy"),
    ("phrase", "Score: 4. It shares the joy, in a fitting voice.", None),
])
def test_a_gemini_pipeline_transcribes_captions_and_scores(gemini, flac, answer_format, reply,
                                                           reason):
    control, url = gemini
    control.queue(f"text:{TRANSCRIPT}", f"text:{CAPTION}", f"text:{reply}")
    result = run(gemini_judge(url, answer_format=answer_format), flac)

    expected_prompt = SCORE_JSON_PROMPT if answer_format == "json" else SCORE_PROMPT
    assert result == PointwiseResult(
        transcript=TRANSCRIPT, caption=CAPTION, score=4, reason=reason, invalid=None,
        replies=[TRANSCRIPT, CAPTION, reply],
        usage={name: 3 * count for name, count in
               {"prompt_token_count": 160, "candidates_token_count": 52,
                "total_token_count": 212}.items()},
        prompt_version=expected_prompt.version)

    asr, caption, scorer = control.requests
    assert [r["model"] for r in control.requests] == [
        "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro"]
    assert all(r["headers"]["x-goog-api-key"] == "test-gemini-key" for r in control.requests)
    for request, prompt in ((asr, TRANSCRIPT_PROMPT), (caption, CAPTION_PROMPT)):
        (clip,) = audio_parts(request)
        assert clip["mime_type"] == "audio/wav" and clip["data"] == response_wav(flac)
        assert wav_rate(clip["data"]) == JUDGE_RATE
        assert text_of(request) == prompt.render()
    assert audio_parts(scorer) == []
    sent = text_of(scorer)
    assert sent == expected_prompt.render(
        prompt_transcript=PROMPT_TRANSCRIPT, emotion="happy", sarcasm="sincere", age="adult",
        gender="unknown", response_transcript=TRANSCRIPT, response_caption=CAPTION)
    assert sent.startswith(SCORING_GUIDELINE)
    for line in (f"Transcription: {PROMPT_TRANSCRIPT}", "Emotion: happy", "Sarcasm: sincere",
                 "Age: adult", "Gender: unknown", f"Transcription: {TRANSCRIPT}",
                 f"Tone: {CAPTION}"):
        assert line in sent
    answer = SCORE_JSON_ANSWER if answer_format == "json" else SCORE_ANSWER
    assert sent.endswith(answer)


def test_a_custom_guideline_is_sent_instead_of_the_papers(gemini, flac):
    control, url = gemini
    guideline = "Rate 1-5 how kind the answer is. A reply costing over $5 is a 1."
    control.queue(f"text:{TRANSCRIPT}", f"text:{CAPTION}", "text:Score: 2")
    result = run(gemini_judge(url, guideline=guideline), flac)
    sent = text_of(control.requests[2])
    assert sent.startswith(guideline + "\n\n")
    assert SCORING_GUIDELINE[:60] not in sent and "Continuation Fitness" not in sent
    assert f"Tone: {CAPTION}" in sent and sent.endswith(SCORE_JSON_ANSWER)
    assert result.score == 2
    assert result.prompt_version == score_prompt(gemini_judge(url, guideline=guideline)).version


def test_an_unreadable_score_is_an_invalid_result_not_an_error(gemini, flac):
    control, url = gemini
    control.queue(f"text:{TRANSCRIPT}", f"text:{CAPTION}",
                  "text:Somewhere between a 3 and a 4, I would say.")
    result = run(gemini_judge(url), flac)
    assert result.score is None and result.invalid == "no score found"
    assert (result.transcript, result.caption) == (TRANSCRIPT, CAPTION)
    assert result.replies[2] == "Somewhere between a 3 and a 4, I would say."


@pytest.mark.parametrize(("stage", "name"), [(0, "ASR"), (1, "caption"), (2, "scorer")])
def test_a_429_in_any_stage_is_transient_with_the_wait_asked_for(gemini, flac, stage, name):
    control, url = gemini
    control.queue(*[f"text:{TRANSCRIPT}", f"text:{CAPTION}"][:stage], "429")
    with pytest.raises(TransientError) as caught:
        run(gemini_judge(url), flac)
    assert caught.value.retry_after == gemini_server.RETRY_DELAY_S
    assert caught.value.status == 429
    assert caught.value.message.startswith(f"the {name} stage (gemini ")
    assert "429" in str(caught.value)
    assert len(control.requests) == stage + 1  # no stage after the failed one


@pytest.mark.parametrize(("behaviours", "name", "message"), [
    (["blocked"], "ASR", "blocked: SAFETY"),
    ([f"text:{TRANSCRIPT}", "max_tokens"], "caption", "no answer text"),
    ([f"text:{TRANSCRIPT}", f"text:{CAPTION}", "400"], "scorer", "HTTP 400"),
])
def test_a_blocked_empty_or_refused_stage_is_permanent_and_named(gemini, flac, behaviours, name,
                                                                 message):
    control, url = gemini
    control.queue(*behaviours)
    with pytest.raises(PermanentError, match=message) as caught:
        run(gemini_judge(url), flac)
    assert caught.value.message.startswith(f"the {name} stage (gemini ")


def test_a_missing_key_is_permanent_before_any_request(gemini, flac):
    control, url = gemini
    config = gemini_judge(url).model_copy(update={"scorer": Stage(
        kind="gemini", model="gemini-2.5-pro", base_url=url, api_key_env="SCORER_GEMINI_KEY")})
    with pytest.raises(PermanentError, match="SCORER_GEMINI_KEY is not set") as caught:
        run(config, flac)
    assert caught.value.message.startswith("the scorer stage (gemini gemini-2.5-pro)")
    assert control.requests == []


def test_unknown_style_labels_are_refused(gemini, flac):
    _, url = gemini
    with pytest.raises(ValueError, match="accent"):
        score(gemini_judge(url), response_audio=flac, prompt_transcript=PROMPT_TRANSCRIPT,
              prompt_styles={"accent": "scottish"}, environ=GEMINI_ENV)


# --- OpenAI-compatible ---------------------------------------------------------------------------

def openai_judge(url: str, **extra) -> PipelinePointwise:
    return PipelinePointwise(
        kind="pipeline_pointwise", name="paras2s", asr=openai_stage(url, "whisper-1"),
        caption=openai_stage(url, "qwen2.5-omni-7b", key=False),
        scorer=openai_stage(url, "gpt-4.1"), **extra)


def test_openai_compatible_stages(openai_fake, flac):
    control, url = openai_fake
    control.queue(f"text:{TRANSCRIPT}", f"text:{CAPTION}", f"text:{FENCED_JSON}")
    result = run(openai_judge(url), flac, environ=OPENAI_ENV)
    assert (result.transcript, result.caption, result.score, result.reason) == (
        TRANSCRIPT, CAPTION, 4, "It shares the joy.")
    assert result.usage["input_tokens"] == 40  # the transcription's
    assert result.usage["prompt_tokens"] == 2 * 64  # the two chat completions'
    assert result.usage["prompt_tokens_details.audio_tokens"] == 2 * 52

    asr, caption, scorer = control.requests
    assert asr["path"] == "/v1/audio/transcriptions"
    assert asr["form"]["model"] == "whisper-1" and asr["form"]["response_format"] == "json"
    assert asr["file"]["data"] == response_wav(flac)
    assert asr["file"]["content_type"] == "audio/wav"
    assert asr["headers"]["authorization"] == "Bearer sk-judge-secret"

    assert caption["path"] == "/v1/chat/completions"
    assert caption["headers"]["authorization"] == "Bearer EMPTY"  # no key named: none sent
    body = caption["json"]
    assert body["model"] == "qwen2.5-omni-7b" and body["modalities"] == ["text"]
    (message,) = body["messages"]
    text, audio = message["content"]
    assert text == {"type": "text", "text": CAPTION_PROMPT.render()}
    assert audio["type"] == "input_audio" and audio["input_audio"]["format"] == "wav"
    assert base64.b64decode(audio["input_audio"]["data"]) == response_wav(flac)

    body = scorer["json"]
    assert body["model"] == "gpt-4.1" and "modalities" not in body
    (message,) = body["messages"]
    assert message["content"] == SCORE_JSON_PROMPT.render(
        prompt_transcript=PROMPT_TRANSCRIPT, emotion="happy", sarcasm="sincere", age="adult",
        gender="unknown", response_transcript=TRANSCRIPT, response_caption=CAPTION)
    assert scorer["headers"]["authorization"] == "Bearer sk-judge-secret"


def test_a_transcript_without_words_is_scored_as_no_speech(openai_fake, flac):
    control, url = openai_fake
    control.queue("text:", f"text:{CAPTION}", "text:Score: 1")
    result = run(openai_judge(url), flac, environ=OPENAI_ENV)
    assert (result.transcript, result.score) == (NO_SPEECH, 1)
    assert f"Transcription: {NO_SPEECH}" in control.requests[2]["json"]["messages"][0]["content"]


@pytest.mark.parametrize(("stage", "name"), [(0, "ASR"), (1, "caption"), (2, "scorer")])
def test_an_openai_429_in_any_stage_is_transient(openai_fake, flac, stage, name):
    control, url = openai_fake
    control.queue(*[f"text:{TRANSCRIPT}", f"text:{CAPTION}"][:stage], "429")
    with pytest.raises(TransientError) as caught:
        run(openai_judge(url), flac, environ=OPENAI_ENV)
    assert caught.value.retry_after == 7
    assert caught.value.message.startswith(f"the {name} stage (openai ")


def test_an_empty_openai_reply_is_permanent_and_named(openai_fake, flac):
    control, url = openai_fake
    control.queue(f"text:{TRANSCRIPT}", "empty")
    with pytest.raises(PermanentError, match="content filter") as caught:
        run(openai_judge(url), flac, environ=OPENAI_ENV)
    assert caught.value.message.startswith("the caption stage (openai qwen2.5-omni-7b)")


def test_a_missing_openai_key_names_the_variable(openai_fake, flac):
    control, url = openai_fake
    with pytest.raises(PermanentError, match=f"{OPENAI_KEY_ENV} is not set") as caught:
        run(openai_judge(url), flac, environ={})
    assert caught.value.message.startswith("the ASR stage (openai whisper-1)")
    assert control.requests == []


def test_stages_can_mix_providers(gemini, openai_fake, flac):
    g_control, g_url = gemini
    o_control, o_url = openai_fake
    o_control.queue(f"text:{TRANSCRIPT}")
    g_control.queue(f"text:{CAPTION}", "text:The reason is it fits; The score is 5 .")
    config = PipelinePointwise(
        kind="pipeline_pointwise", name="mixed", asr=openai_stage(o_url, "whisper-large-v3"),
        caption=gemini_stage(g_url, "gemini-2.5-flash"),
        scorer=gemini_stage(g_url, "gemini-2.5-pro"), answer_format="phrase")
    result = run(config, flac, environ={**GEMINI_ENV, **OPENAI_ENV})
    assert (result.transcript, result.caption, result.score) == (TRANSCRIPT, CAPTION, 5)
    assert result.prompt_version == SCORE_PROMPT.version
    assert len(o_control.requests) == 1 and len(g_control.requests) == 2

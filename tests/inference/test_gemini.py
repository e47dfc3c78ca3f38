"""The `gemini` adapter: the real google-genai client against a fake Gemini API over real sockets,
so the request it sends and the errors it raises are the SDK's own."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import soundfile as sf
from google import genai
from google.genai import types

from app.inference.adapters import build
from app.inference.adapters.base import PermanentError, PromptAudio, TransientError
from app.inference.adapters.gemini import Gemini
from app.inference.configs import GeminiAdapter
from app.inference.gemini_client import client_for
from tests.conftest import DATA, free_port
from tests.fakes.gemini_server import (
    PCM_RATE,
    RETRY_DELAY_S,
    TRANSCRIPT,
    model_version,
    reply_pcm,
    running,
)
from tests.fakes.server import Control

KEY = "test-gemini-key"
PROMPT_WAV = (DATA / "cmu-arctic" / "slt_arctic_a0009.wav").read_bytes()
PROMPT = PromptAudio(key="slt_arctic_a0009", wav=PROMPT_WAV,
                     sample_rate=sf.info(io.BytesIO(PROMPT_WAV)).samplerate)


@pytest.fixture(scope="module")
def gemini_server():
    control = Control()
    with running(control) as base_url:
        yield control, base_url


@pytest.fixture
def fake(gemini_server) -> tuple[Control, str]:
    control, _ = gemini_server
    control.reset()
    return gemini_server


def gemini(base_url: str, environ: dict[str, str] | None = None, **fields) -> Gemini:
    config = GeminiAdapter(kind="gemini", base_url=base_url, **fields)
    return Gemini(config, environ={"GEMINI_API_KEY": KEY} if environ is None else environ)


def failure(fake: tuple[Control, str], behaviour: str, **fields) -> TransientError | PermanentError:
    control, base_url = fake
    control.queue(behaviour)
    with pytest.raises((TransientError, PermanentError)) as caught:
        gemini(base_url, **fields).generate(PROMPT)
    return caught.value


# --- answers ---------------------------------------------------------------------------------


def test_spoken_answer_as_raw_pcm(fake):
    _, base_url = fake
    config = GeminiAdapter(kind="gemini", base_url=base_url, model="gemini-2.5-flash-audio",
                           voice="Kore", system_prompt="Answer briefly.", max_output_tokens=256)
    adapter = build(config, environ={"GEMINI_API_KEY": KEY})  # through the registry
    assert isinstance(adapter, Gemini)

    result = adapter.generate(PROMPT)

    assert result.transcript == TRANSCRIPT
    assert result.pcm_rate == PCM_RATE
    assert result.audio == reply_pcm()
    assert len(result.audio) == int(0.5 * PCM_RATE) * 2  # 0.5 s of 16-bit samples
    assert result.model_version == model_version("gemini-2.5-flash-audio")
    assert result.usage == {"prompt_token_count": 160, "candidates_token_count": 52,
                            "total_token_count": 212}


def test_request_carries_the_prompt_audio_key_and_speech_config(fake):
    control, base_url = fake
    gemini(base_url, voice="Kore", system_prompt="Answer briefly.",
           max_output_tokens=256).generate(PROMPT)

    [request] = control.requests
    assert request["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request["headers"]["x-goog-api-key"] == KEY
    assert request["parts"] == [{"mime_type": "audio/wav", "data": PROMPT_WAV}]
    assert request["json"]["contents"][0]["role"] == "user"
    assert request["json"]["systemInstruction"]["parts"] == [{"text": "Answer briefly."}]
    assert request["json"]["generationConfig"] == {
        "maxOutputTokens": 256,
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
    }


def test_without_a_voice_no_audio_is_asked_for(fake):
    control, base_url = fake
    gemini(base_url).generate(PROMPT)  # the fake speaks anyway
    [request] = control.requests
    assert "systemInstruction" not in request["json"]
    assert request["json"].get("generationConfig", {}) == {}


def test_wav_answer_is_a_file(fake):
    control, base_url = fake
    control.queue("wav")
    result = gemini(base_url).generate(PROMPT)
    assert result.pcm_rate is None
    samples, rate = sf.read(io.BytesIO(result.audio), dtype="int16")
    assert rate == PCM_RATE
    assert np.array_equal(samples, np.frombuffer(reply_pcm(), dtype="<i2"))
    assert result.transcript is None


def test_audio_that_does_not_decode_is_passed_on_for_the_runner_to_refuse(fake):
    control, base_url = fake
    control.queue("bad_audio")
    result = gemini(base_url).generate(PROMPT)
    assert (result.audio, result.pcm_rate) == (b"this is not audio at all", None)


# --- refusals --------------------------------------------------------------------------------


def test_text_only_answer_is_permanent_and_says_how_to_fix_it(fake):
    error = failure(fake, "text_only")
    assert isinstance(error, PermanentError)
    assert f'text only ("{TRANSCRIPT}")' in error.message
    assert "set `voice`" in error.message

    error = failure(fake, "text_only", voice="Kore")
    assert "may not speak with voice 'Kore'" in error.message


def test_text_behaviour_answers_the_exact_text(fake):
    error = failure(fake, "text:B is better.")
    assert isinstance(error, PermanentError) and '"B is better."' in error.message


def test_a_reply_that_is_not_json_is_permanent(fake):
    error = failure(fake, "html")
    assert isinstance(error, PermanentError) and "unreadable reply" in error.message


def test_blocked_prompt_is_permanent(fake):
    error = failure(fake, "blocked")
    assert isinstance(error, PermanentError)
    assert error.message.startswith("blocked: SAFETY")


def test_max_tokens_with_no_content_is_permanent(fake):
    error = failure(fake, "max_tokens", max_output_tokens=8)
    assert isinstance(error, PermanentError)
    assert "MAX_TOKENS" in error.message and "max_output_tokens" in error.message


# --- errors and retries ----------------------------------------------------------------------


def test_429_is_transient_with_googles_retry_delay_and_no_sdk_retry(fake):
    control, _ = fake
    error = failure(fake, "429")
    assert isinstance(error, TransientError)
    assert (error.status, error.retry_after) == (429, float(RETRY_DELAY_S))
    assert "RESOURCE_EXHAUSTED" in error.message
    assert len(control.requests) == 1  # the SDK did not retry


def test_the_fakes_429_is_one_the_sdk_would_retry_if_allowed(fake):
    """So that "one request" above shows our client's setting, not a reply the SDK ignores."""
    control, base_url = fake
    control.queue("429")
    retrying = genai.Client(vertexai=False, api_key=KEY, http_options=types.HttpOptions(
        base_url=base_url, api_version="v1beta",
        retry_options=types.HttpRetryOptions(attempts=2, initial_delay=0, jitter=0)))
    retrying.models.generate_content(model="gemini-2.5-flash", contents="hello")
    assert len(control.requests) == 2


@pytest.mark.parametrize("behaviour, status", [("500", "INTERNAL"), ("503", "UNAVAILABLE")])
def test_server_errors_are_transient_and_not_retried_by_the_sdk(fake, behaviour, status):
    control, _ = fake
    error = failure(fake, behaviour)
    assert isinstance(error, TransientError)
    assert error.status == int(behaviour) and status in error.message
    assert error.retry_after is None
    assert len(control.requests) == 1


def test_400_is_permanent(fake):
    control, _ = fake
    error = failure(fake, "400")
    assert isinstance(error, PermanentError)
    assert error.status == 400 and "INVALID_ARGUMENT" in error.message
    assert len(control.requests) == 1


def test_timeout_is_transient(fake):
    control, _ = fake
    started = time.monotonic()
    error = failure(fake, "slow", timeout_s=0.5)
    assert time.monotonic() - started < 2.5  # gave up well before the fake answered
    assert isinstance(error, TransientError) and "0.5 s" in error.message
    assert len(control.requests) == 1


def test_unreachable_endpoint_is_transient_and_probe_warns():
    base_url = f"http://127.0.0.1:{free_port()}"
    adapter = gemini(base_url)
    with pytest.raises(TransientError, match="could not reach"):
        adapter.generate(PROMPT)
    assert base_url in adapter.probe()


def test_probe_is_quiet_when_the_endpoint_answers(fake):
    _, base_url = fake
    assert gemini(base_url).probe() is None
    assert Gemini(GeminiAdapter(kind="gemini"), environ={}).probe() is None  # Google's endpoint


def test_missing_api_key_is_permanent_and_names_the_variable(fake):
    control, base_url = fake
    with pytest.raises(PermanentError, match="MY_GEMINI_KEY"):
        gemini(base_url, environ={}, api_key_env="MY_GEMINI_KEY").generate(PROMPT)
    assert control.requests == []


def test_clients_are_shared_per_key_endpoint_and_timeout(fake):
    _, base_url = fake
    assert client_for(KEY, base_url, 30.0) is client_for(KEY, base_url, 30.0)
    assert client_for(KEY, base_url, 30.0) is not client_for(KEY, base_url, 60.0)

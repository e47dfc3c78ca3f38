"""The `openai_chat_audio` adapter: the real `openai` SDK against the fake server, over a real
socket."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.inference.adapters import build, openai_chat_audio
from app.inference.adapters.base import PermanentError, PromptAudio, TransientError
from app.inference.configs import OpenAIChatAudioAdapter
from tests.fakes import openai_server
from tests.fakes.server import Control, serve

PROMPT_WAV = Path(__file__).resolve().parent.parent / "data" / "cmu-arctic" / "slt_arctic_a0009.wav"
KEY_ENV = "FAKE_OPENAI_KEY"
ENVIRON = {KEY_ENV: "sk-test-secret"}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[Control, str]]:
    control = Control()
    with openai_server.running(control) as base_url:
        yield control, base_url


@pytest.fixture
def control(fake) -> Control:
    control, _ = fake
    control.reset()
    return control


@pytest.fixture
def prompt() -> PromptAudio:
    return PromptAudio(key="a0009", wav=PROMPT_WAV.read_bytes(), sample_rate=16_000)


def adapter(fake, **overrides):
    _, base_url = fake
    fields = {"kind": "openai_chat_audio", "base_url": base_url, "model": "fake-omni",
              "api_key_env": KEY_ENV, **overrides}
    return build(OpenAIChatAudioAdapter(**fields), environ=ENVIRON)


def tone() -> np.ndarray:
    return openai_server.reply_samples()


def test_non_streaming_reply(fake, control, prompt):
    answer = adapter(fake).generate(prompt)

    assert answer.pcm_rate is None
    samples, rate = sf.read(io.BytesIO(answer.audio), dtype="int16")
    assert rate == 24_000
    assert np.array_equal(samples, tone())
    assert answer.transcript == openai_server.TRANSCRIPT
    assert answer.model_version == "fake-omni" + openai_server.MODEL_SUFFIX
    assert answer.usage["total_tokens"] == 184
    assert answer.usage["completion_tokens_details"]["audio_tokens"] == 100
    [request] = control.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-secret"
    assert request["headers"]["content-type"] == "application/json"
    body = request["json"]
    [message] = body["messages"]
    assert message["content"] == [{"type": "input_audio", "input_audio": {
        "data": base64.b64encode(prompt.wav).decode("ascii"), "format": "wav"}}]
    assert body["modalities"] == ["text", "audio"]
    assert body["audio"] == {"voice": "alloy", "format": "wav"}
    assert "stream_options" not in body and not body.get("stream")


def test_request_carries_system_prompt_limits_and_extra_body(fake, control, prompt):
    adapter(fake, system_prompt="Answer briefly.", max_tokens=256, voice=None,
            extra_body={"top_k": 20}).generate(prompt)

    body = control.requests[0]["json"]
    assert body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert body["messages"][1]["role"] == "user"
    assert body["max_tokens"] == 256
    assert body["audio"] == {"format": "wav"}  # no voice: the server's default
    assert body["top_k"] == 20


def test_audio_in_the_second_choice(fake, control, prompt):
    control.queue("second_choice")

    answer = adapter(fake).generate(prompt)

    assert np.array_equal(sf.read(io.BytesIO(answer.audio), dtype="int16")[0], tone())
    assert answer.transcript == openai_server.TRANSCRIPT


def test_raw_pcm_reply(fake, control, prompt):
    control.queue("pcm")

    answer = adapter(fake, audio_format="pcm16").generate(prompt)

    assert answer.pcm_rate == 24_000
    assert answer.audio == openai_server.reply_pcm()


def test_a_wav_reply_wins_over_a_pcm16_config(fake, control, prompt):
    answer = adapter(fake, audio_format="pcm16").generate(prompt)

    assert answer.pcm_rate is None
    assert answer.audio == openai_server.reply_wav()


def test_vllm_omni_reply_text_and_audio_in_separate_choices(fake, control, prompt):
    control.queue("vllm_omni")

    answer = adapter(fake, api_key_env=None).generate(prompt)

    assert answer.audio == openai_server.reply_wav()
    assert answer.transcript == openai_server.TRANSCRIPT  # from the text choice
    assert control.requests[0]["headers"]["authorization"] == "Bearer EMPTY"


def test_streamed_pcm_pieces(fake, control, prompt):
    answer = adapter(fake, stream=True, audio_format="pcm16").generate(prompt)

    assert answer.audio == openai_server.reply_pcm()
    assert answer.pcm_rate == 24_000
    assert answer.transcript == openai_server.TRANSCRIPT
    assert answer.model_version == "fake-omni" + openai_server.MODEL_SUFFIX
    assert answer.usage["total_tokens"] == 184  # from the last, choice-less chunk
    body = control.requests[0]["json"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["modalities"] == ["text", "audio"]
    assert body["audio"] == {"voice": "alloy", "format": "pcm16"}
    [part] = body["messages"][-1]["content"]
    assert part == {"type": "input_audio",
                    "input_audio": {"data": base64.b64encode(prompt.wav).decode(),
                                    "format": "wav"}}


def test_streamed_pcm_is_raw_even_when_wav_was_asked(fake, control, prompt):
    """DashScope's Qwen-Omni streams raw PCM whatever format was asked for."""
    answer = adapter(fake, stream=True).generate(prompt)

    assert answer.audio == openai_server.reply_pcm()
    assert answer.pcm_rate == 24_000


def test_streamed_base64_cut_mid_group(fake, control, prompt):
    control.queue("split_base64")

    answer = adapter(fake, stream=True).generate(prompt)

    assert answer.audio == openai_server.reply_pcm()


def test_streamed_audio_in_the_second_choice(fake, control, prompt):
    control.queue("second_choice")

    answer = adapter(fake, stream=True).generate(prompt)

    assert answer.audio == openai_server.reply_pcm()
    assert answer.transcript == openai_server.TRANSCRIPT


def test_vllm_omni_stream_of_wav_files(fake, control, prompt):
    control.queue("vllm_omni")

    answer = adapter(fake, stream=True).generate(prompt)

    assert answer.pcm_rate is None
    samples, rate = sf.read(io.BytesIO(answer.audio), dtype="int16")
    assert rate == 24_000
    assert np.array_equal(samples, tone())  # every chunk's samples, in order
    assert answer.transcript == openai_server.TRANSCRIPT


def test_rate_limit_is_transient_with_retry_after_and_not_retried(fake, control, prompt):
    control.queue("429")

    with pytest.raises(TransientError) as caught:
        adapter(fake).generate(prompt)

    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert "Rate limit reached" in caught.value.message
    assert len(control.requests) == 1  # the SDK did not retry


def test_server_error_is_transient_and_not_retried(fake, control, prompt):
    control.queue("500")

    with pytest.raises(TransientError) as caught:
        adapter(fake).generate(prompt)

    assert caught.value.status == 500
    assert len(control.requests) == 1


def test_bad_request_is_permanent(fake, control, prompt):
    control.queue("400")

    with pytest.raises(PermanentError) as caught:
        adapter(fake).generate(prompt)

    assert caught.value.status == 400
    assert "audio.voice" in caught.value.message


def test_an_error_event_mid_stream_is_classified_by_its_code(fake, control, prompt):
    control.queue("stream_error")

    with pytest.raises(TransientError) as caught:
        adapter(fake, stream=True).generate(prompt)

    assert caught.value.status == 500


@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_reply_is_permanent(fake, control, prompt, stream):
    control.queue("empty")

    with pytest.raises(PermanentError, match="no audio") as caught:
        adapter(fake, stream=stream).generate(prompt)

    assert "content_filter" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_bad_base64_is_permanent(fake, control, prompt, stream):
    control.queue("bad_base64")

    with pytest.raises(PermanentError, match="base64"):
        adapter(fake, stream=stream).generate(prompt)


def test_audio_that_is_no_audio_is_passed_on_as_sent(fake, control, prompt):
    """The caller decodes and reports it; the adapter hands over exactly what came."""
    control.queue("bad_audio")

    answer = adapter(fake).generate(prompt)

    assert answer.audio == openai_server.NOT_AUDIO
    assert answer.pcm_rate is None
    with pytest.raises(sf.LibsndfileError):
        sf.read(io.BytesIO(answer.audio))


@pytest.mark.parametrize("content_type, reply", [
    ("text/html", b"<html><body>502 Bad Gateway</body></html>"),
    ("application/json", b'{"object": "list", "data": []}'),
])
def test_a_reply_that_is_not_a_chat_completion_is_permanent(prompt, content_type, reply):
    async def app(scope, receive, send):  # a proxy that answers 200 with something else
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type.encode())]})
        await send({"type": "http.response.body", "body": reply})

    with serve(app) as url:
        config = OpenAIChatAudioAdapter(kind="openai_chat_audio", model="m", base_url=f"{url}/v1")
        with pytest.raises(PermanentError, match="did not answer with a chat completion"):
            build(config, environ={}).generate(prompt)


def test_timeout_is_transient(fake, control, prompt):
    control.queue("slow")

    with pytest.raises(TransientError, match="did not answer within 0.5 s"):
        adapter(fake, timeout_s=0.5).generate(prompt)

    assert len(control.requests) == 1


def test_unreachable_server_is_transient(prompt):
    config = OpenAIChatAudioAdapter(kind="openai_chat_audio", model="m",
                                    base_url=f"http://127.0.0.1:{_closed_port()}/v1")

    with pytest.raises(TransientError, match="could not reach"):
        build(config, environ={}).generate(prompt)


def test_missing_api_key_is_permanent_and_names_the_variable(fake, control, prompt):
    _, base_url = fake
    config = OpenAIChatAudioAdapter(kind="openai_chat_audio", base_url=base_url,
                                    model="fake-omni", api_key_env="NOT_SET_ANYWHERE")

    with pytest.raises(PermanentError, match="NOT_SET_ANYWHERE"):
        build(config, environ={}).generate(prompt)

    assert control.requests == []


def test_one_client_per_endpoint_key_and_timeout():
    first = openai_chat_audio.openai_client("http://127.0.0.1:9/v1", "key", 5.0)

    assert openai_chat_audio.openai_client("http://127.0.0.1:9/v1", "key", 5.0) is first
    assert openai_chat_audio.openai_client("http://127.0.0.1:9/v1", "key", 6.0) is not first
    assert openai_chat_audio.openai_client("http://127.0.0.1:9/v1", "other", 5.0) is not first
    assert first.max_retries == 0


def test_probe(fake):
    assert adapter(fake).probe() is None
    config = OpenAIChatAudioAdapter(kind="openai_chat_audio", model="m",
                                    base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    warning = build(config, environ={}).probe()
    assert warning is not None and "did not answer" in warning


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

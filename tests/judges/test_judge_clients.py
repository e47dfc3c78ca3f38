"""Asking a pairwise judge: the real google-genai and openai clients against the fakes in
tests/fakes, over real sockets, so the requests checked here are the ones the SDKs send and the
errors are the ones they raise. The Gemini fake is extended here with the Files API's resumable
upload, get and delete, as google-genai speaks them."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from google.genai import types

from app.audio.codec import encode
from app.inference.adapters.base import PermanentError, TransientError
from app.judges import clients
from app.judges.audio import JUDGE_RATE, JudgeAudio, judge_audio
from app.judges.clients import (
    CONCATENATED_LAYOUT,
    JudgeReply,
    ask,
    concatenated_text,
    inline_bytes,
    request_parts,
    uses_files_api,
)
from app.judges.configs import GeminiPairwise, OpenAIPairwise
from app.judges.parsing import parse_pairwise
from app.judges.prompts import (
    JSON_ANSWER,
    PAIRWISE_JSON_PROMPT,
    PAIRWISE_PROMPT,
    PHRASE_ANSWER,
    TEXT_CONTENT_INSTRUCTION,
    AudioSlot,
)
from tests.fakes import gemini_server, openai_server
from tests.fakes.server import Control, serve

GEMINI_ENV = {"GEMINI_API_KEY": "test-gemini-key"}
OPENAI_KEY_ENV = "JUDGE_OPENAI_KEY"
OPENAI_ENV = {OPENAI_KEY_ENV: "sk-judge-secret"}
FENCED_JSON = '```json\n{"winner": "second", "reason": "It answers in a sad voice."}\n```'
RATE = 24_000


def tone(seconds: float, hz: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return encode(0.3 * np.sin(2 * np.pi * hz * t), RATE)


@pytest.fixture(scope="module")
def audio() -> JudgeAudio:
    """Three clips of different lengths, so each can be told apart in a request."""
    return judge_audio(tone(0.5, 300.0), tone(0.7, 500.0), tone(0.9, 700.0))


@pytest.fixture(scope="module")
def long_audio() -> JudgeAudio:
    """Clips whose base64 exceeds the smallest max_inline_bytes a config allows (100 kB)."""
    return judge_audio(tone(2.0, 300.0), tone(2.5, 500.0), tone(3.0, 700.0))


def rate_of(wav: bytes) -> int:
    info = sf.info(io.BytesIO(wav))
    assert (info.format, info.channels) == ("WAV", 1)
    return info.samplerate


# --- the request, without a server ---------------------------------------------------------------

def test_parts_layout_interleaves_the_prompt_text_and_the_three_clips(audio):
    parts = request_parts(PAIRWISE_PROMPT, audio, "parts")
    assert parts[0] == TEXT_CONTENT_INSTRUCTION
    assert [part for part in parts if isinstance(part, bytes)] == [
        audio.clip(AudioSlot.INPUT), audio.clip(AudioSlot.FIRST), audio.clip(AudioSlot.SECOND)]
    text = "".join(part if isinstance(part, str) else f"<{audio_slot(audio, part)}>"
                   for part in parts[1:])
    assert text == PAIRWISE_PROMPT.evaluation.replace("[input audio]", "<INPUT>").replace(
        "[output audio 1]", "<FIRST>").replace("[output audio 2]", "<SECOND>")


def audio_slot(audio: JudgeAudio, wav: bytes) -> str:
    return next(slot.name for slot, clip in audio.parts if clip == wav)


def test_concatenated_layout_names_where_each_clip_sits(audio):
    parts = request_parts(PAIRWISE_PROMPT, audio, "concatenated")
    assert parts == [TEXT_CONTENT_INSTRUCTION, concatenated_text(PAIRWISE_PROMPT),
                     audio.concatenated]
    text = concatenated_text(PAIRWISE_PROMPT)
    assert not any(slot.value in text for slot in AudioSlot)
    assert ("Here is the input audio (at the start of the audio), the first response (after "
            "one beep), and the second response (after two beeps).") in text
    assert text.endswith(CONCATENATED_LAYOUT)
    assert PHRASE_ANSWER in text and "My requirement" in text


def test_the_files_api_is_used_only_beyond_max_inline_bytes(audio):
    config = GeminiPairwise(kind="gemini_pairwise", name="judge", max_inline_bytes=100_000)
    parts = request_parts(PAIRWISE_PROMPT, audio, "concatenated")
    encoded = inline_bytes(parts)
    assert encoded == len(base64.b64encode(audio.concatenated))
    assert uses_files_api(config.model_copy(update={"max_inline_bytes": encoded - 1}), parts)
    assert not uses_files_api(config.model_copy(update={"max_inline_bytes": encoded}), parts)
    assert not uses_files_api(GeminiPairwise(kind="gemini_pairwise", name="judge"), parts)


def response(parts: list[dict[str, Any]] | None, finish_reason: str | None = "STOP"
             ) -> types.GenerateContentResponse:
    content = {"role": "model", "parts": parts} if parts is not None else None
    return types.GenerateContentResponse.model_validate({"candidates": [
        {"content": content, "finish_reason": finish_reason}]})


def test_gemini_thought_parts_are_not_the_answer():
    text, reason = clients.gemini_text(response([
        {"text": "The first one rambles; the second", "thought": True},
        {"text": "Second one "}, {"text": "wins."}]))
    assert (text, reason) == ("Second one wins.", "STOP")
    with pytest.raises(PermanentError, match="SAFETY"):
        clients.gemini_text(response(None, "SAFETY"))
    with pytest.raises(PermanentError, match="MAX_TOKENS"):
        clients.gemini_text(response([{"text": "thinking…", "thought": True}], "MAX_TOKENS"))
    truncated = clients.gemini_text(response([{"text": "First one"}], "MAX_TOKENS"))
    assert truncated == ("First one", "MAX_TOKENS")  # text is kept; the parser judges it


# --- Gemini ----------------------------------------------------------------------------------------

class FakeFiles:
    """The Files API: a resumable upload (start, then "upload, finalize" to the URL it gave),
    files.get and files.delete."""

    def __init__(self) -> None:
        self.uploads: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self.processing_polls = 0  # how many GETs answer PROCESSING before ACTIVE
        self.polls = 0
        self._ids = itertools.count(1)

    def resource(self, name: str, request: Request, state: str) -> dict[str, Any]:
        return {"name": name, "displayName": "s2s-arena-judge-audio.wav", "mimeType": "audio/wav",
                "sizeBytes": str(len(self.uploads[name])), "state": state,
                "uri": f"{request.base_url}v1beta/{name}"}

    def mount(self, app: Any) -> None:
        @app.post("/upload/v1beta/files")
        async def upload(request: Request) -> Response:
            command = request.headers.get("x-goog-upload-command", "")
            if command == "start":
                upload_id = f"up{next(self._ids)}"
                url = f"{request.base_url}upload/v1beta/files?upload_id={upload_id}"
                return JSONResponse({}, headers={"x-goog-upload-url": url,
                                                 "x-goog-upload-status": "active"})
            name = f"files/{request.query_params['upload_id']}"
            self.uploads[name] = await request.body()
            state = "PROCESSING" if self.processing_polls else "ACTIVE"
            return JSONResponse({"file": self.resource(name, request, state)},
                                headers={"x-goog-upload-status": "final"})

        @app.get("/v1beta/files/{file_id}")
        async def get(file_id: str, request: Request) -> Response:
            self.polls += 1
            state = "PROCESSING" if self.polls <= self.processing_polls else "ACTIVE"
            return JSONResponse(self.resource(f"files/{file_id}", request, state))

        @app.delete("/v1beta/files/{file_id}")
        async def delete(file_id: str) -> Response:
            self.deleted.append(f"files/{file_id}")
            return JSONResponse({})


@pytest.fixture(scope="module")
def gemini_fake() -> Iterator[tuple[Control, FakeFiles, str]]:
    control, files = Control(), FakeFiles()
    app = gemini_server.create_app(control)
    files.mount(app)
    with serve(app) as base_url:
        yield control, files, base_url


@pytest.fixture
def gemini(gemini_fake) -> Iterator[tuple[Control, FakeFiles, str]]:
    control, files, _ = gemini_fake
    control.reset()
    files.uploads.clear()
    files.deleted.clear()
    files.polls = files.processing_polls = 0
    yield gemini_fake


def gemini_config(base_url: str, **fields: Any) -> GeminiPairwise:
    return GeminiPairwise(kind="gemini_pairwise", name="gemini judge", base_url=base_url,
                          **fields)


def test_gemini_parts_request_and_phrase_reply(gemini, audio):
    control, _, base_url = gemini
    control.queue("text:First one wins")
    reply = ask(gemini_config(base_url, audio_layout="parts"), audio, environ=GEMINI_ENV)

    assert reply == JudgeReply(
        text="First one wins", model_version=gemini_server.model_version("gemini-2.5-pro"),
        usage={"prompt_token_count": 160, "candidates_token_count": 52, "total_token_count": 212},
        prompt_version=PAIRWISE_PROMPT.version, finish_reason="STOP")
    assert parse_pairwise(reply.text).winner == "first"

    [request] = control.requests
    assert request["model"] == "gemini-2.5-pro" and request["method"] == "generateContent"
    assert request["headers"]["x-goog-api-key"] == GEMINI_ENV["GEMINI_API_KEY"]
    parts = request["parts"]
    assert parts[0] == {"text": TEXT_CONTENT_INSTRUCTION}
    clips = [part for part in parts if "data" in part]
    assert [part["mime_type"] for part in clips] == ["audio/wav"] * 3
    assert [part["data"] for part in clips] == [wav for _, wav in audio.parts]  # in slot order
    assert {rate_of(part["data"]) for part in clips} == {JUDGE_RATE}
    sent = "".join(part.get("text", "<audio>") for part in parts[1:])
    assert sent == PAIRWISE_PROMPT.evaluation.replace("[input audio]", "<audio>").replace(
        "[output audio 1]", "<audio>").replace("[output audio 2]", "<audio>")


def test_gemini_concatenated_request_with_the_json_prompt(gemini, audio):
    control, files, base_url = gemini
    control.queue("text:" + FENCED_JSON)
    config = gemini_config(base_url, audio_layout="concatenated", answer_format="json")
    reply = ask(config, audio, environ=GEMINI_ENV)

    assert reply.text == FENCED_JSON
    assert reply.prompt_version == PAIRWISE_JSON_PROMPT.version
    verdict = parse_pairwise(reply.text)
    assert (verdict.winner, verdict.reason) == ("second", "It answers in a sad voice.")

    parts = control.requests[0]["parts"]
    assert [part.get("text") for part in parts[:2]] == [
        TEXT_CONTENT_INSTRUCTION, concatenated_text(PAIRWISE_JSON_PROMPT)]
    assert JSON_ANSWER in parts[1]["text"]
    [clip] = [part for part in parts if "data" in part]
    assert clip["data"] == audio.concatenated and rate_of(clip["data"]) == JUDGE_RATE
    assert parts[-1] is clip
    assert files.uploads == {}  # small enough to go inline


@pytest.mark.parametrize("layout", ["parts", "concatenated"])
def test_gemini_uploads_audio_beyond_max_inline_bytes(gemini, long_audio, monkeypatch, layout):
    audio = long_audio
    control, files, base_url = gemini
    monkeypatch.setattr(clients, "FILE_POLL_S", 0.01)
    files.processing_polls = 2  # Google is still processing: the client waits for ACTIVE
    control.queue("text:Second one wins.")
    config = gemini_config(base_url, audio_layout=layout, max_inline_bytes=100_000)
    assert audio.total_bytes("concatenated") > 100_000
    reply = ask(config, audio, environ=GEMINI_ENV)
    assert reply.text == "Second one wins."

    clips = [audio.concatenated] if layout == "concatenated" else [w for _, w in audio.parts]
    assert list(files.uploads.values()) == clips  # the bytes went up, in order
    request_parts_ = control.requests[0]["json"]["contents"][0]["parts"]
    referenced = [part["fileData"] for part in request_parts_ if "fileData" in part]
    assert [ref["fileUri"].rpartition("/v1beta/")[2] for ref in referenced] == list(files.uploads)
    assert {ref["mimeType"] for ref in referenced} == {"audio/wav"}
    assert not any("inlineData" in part for part in request_parts_)
    assert files.polls >= 2
    assert sorted(files.deleted) == sorted(files.uploads)  # cleaned up after the call


def test_gemini_uploads_are_deleted_when_the_call_fails(gemini, long_audio):
    control, files, base_url = gemini
    control.queue("500")
    config = gemini_config(base_url, audio_layout="parts", max_inline_bytes=100_000)
    with pytest.raises(TransientError):
        ask(config, long_audio, environ=GEMINI_ENV)
    assert len(files.uploads) == 3 and sorted(files.deleted) == sorted(files.uploads)


@pytest.mark.parametrize("behaviour, error, status, match", [
    ("429", TransientError, 429, "RESOURCE_EXHAUSTED"),
    ("500", TransientError, 500, "INTERNAL"),
    ("503", TransientError, 503, "UNAVAILABLE"),
    ("400", PermanentError, 400, "INVALID_ARGUMENT"),
    ("blocked", PermanentError, None, "blocked: SAFETY"),
    ("max_tokens", PermanentError, None, "MAX_TOKENS"),
    ("html", PermanentError, None, "unreadable"),
])
def test_gemini_failures(gemini, audio, behaviour, error, status, match):
    control, _, base_url = gemini
    control.queue(behaviour)
    with pytest.raises((TransientError, PermanentError)) as caught:
        ask(gemini_config(base_url), audio, environ=GEMINI_ENV)
    assert type(caught.value) is error and caught.value.status == status
    assert match in caught.value.message
    if behaviour == "429":
        assert caught.value.retry_after == 3.0


def test_gemini_timeout_is_transient(gemini, audio):
    control, _, base_url = gemini
    control.queue("slow")
    with pytest.raises(TransientError, match="did not answer within 0.5 s"):
        ask(gemini_config(base_url, timeout_s=0.5), audio, environ=GEMINI_ENV)


def test_gemini_missing_key_is_permanent_and_sends_nothing(gemini, audio):
    control, _, base_url = gemini
    config = gemini_config(base_url, api_key_env="JUDGE_GEMINI_KEY")
    with pytest.raises(PermanentError, match="JUDGE_GEMINI_KEY"):
        ask(config, audio, environ=GEMINI_ENV)
    with pytest.raises(PermanentError, match="JUDGE_GEMINI_KEY"):
        ask(config, audio, environ={"JUDGE_GEMINI_KEY": ""})
    assert control.requests == []


# --- OpenAI-compatible -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def openai_fake() -> Iterator[tuple[Control, str]]:
    control = Control()
    with openai_server.running(control) as base_url:
        yield control, base_url


@pytest.fixture
def openai_(openai_fake) -> tuple[Control, str]:
    control, _ = openai_fake
    control.reset()
    return openai_fake


def openai_config(base_url: str, **fields: Any) -> OpenAIPairwise:
    fields.setdefault("api_key_env", OPENAI_KEY_ENV)
    return OpenAIPairwise(kind="openai_pairwise", name="omni judge", model="fake-omni",
                          base_url=base_url, **fields)


def sent_content(control: Control) -> list[dict[str, Any]]:
    [request] = control.requests
    body = request["json"]
    assert body["modalities"] == ["text"] and "audio" not in body and not body.get("stream")
    [message] = body["messages"]
    assert message["role"] == "user"
    return message["content"]


def test_openai_parts_request_and_phrase_reply(openai_, audio):
    control, base_url = openai_
    control.queue("text:First one wins")
    reply = ask(openai_config(base_url, audio_layout="parts"), audio, environ=OPENAI_ENV)

    assert reply.text == "First one wins" and reply.finish_reason == "stop"
    assert reply.model_version == "fake-omni" + openai_server.MODEL_SUFFIX
    assert reply.prompt_version == PAIRWISE_PROMPT.version
    assert reply.usage["prompt_tokens"] == 64 and reply.usage["total_tokens"] == 184
    assert reply.usage["prompt_tokens_details.audio_tokens"] == 52
    assert all(type(value) is int for value in reply.usage.values())

    assert control.requests[0]["headers"]["authorization"] == "Bearer sk-judge-secret"
    content = sent_content(control)
    assert content[0] == {"type": "text", "text": TEXT_CONTENT_INSTRUCTION}
    clips = [base64.b64decode(part["input_audio"]["data"]) for part in content
             if part["type"] == "input_audio"]
    assert clips == [wav for _, wav in audio.parts]
    assert {part["input_audio"]["format"] for part in content if "input_audio" in part} == {"wav"}
    assert {rate_of(clip) for clip in clips} == {JUDGE_RATE}
    sent = "".join(part.get("text", "<audio>") for part in content[1:])
    assert sent == PAIRWISE_PROMPT.evaluation.replace("[input audio]", "<audio>").replace(
        "[output audio 1]", "<audio>").replace("[output audio 2]", "<audio>")


@pytest.mark.parametrize("behaviour", ["text:", "text_parts:"])
def test_openai_concatenated_request_with_the_json_prompt(openai_, audio, behaviour):
    control, base_url = openai_
    control.queue(behaviour + FENCED_JSON)
    config = openai_config(base_url, audio_layout="concatenated", answer_format="json")
    reply = ask(config, audio, environ=OPENAI_ENV)
    assert reply.text == FENCED_JSON and reply.prompt_version == PAIRWISE_JSON_PROMPT.version
    assert parse_pairwise(reply.text).winner == "second"

    content = sent_content(control)
    assert [part["type"] for part in content] == ["text", "text", "input_audio"]
    assert content[1]["text"] == concatenated_text(PAIRWISE_JSON_PROMPT)
    clip = base64.b64decode(content[2]["input_audio"]["data"])
    assert clip == audio.concatenated and rate_of(clip) == JUDGE_RATE


def test_openai_without_a_key_env_sends_a_placeholder(openai_, audio):
    control, base_url = openai_
    control.queue("text:Second one wins")
    reply = ask(openai_config(base_url, api_key_env=None), audio, environ={})
    assert reply.text == "Second one wins"
    assert control.requests[0]["headers"]["authorization"] == "Bearer EMPTY"


@pytest.mark.parametrize("behaviour, error, status, match", [
    ("429", TransientError, 429, "Rate limit"),
    ("500", TransientError, 500, "server had an error"),
    ("400", PermanentError, 400, "Invalid value"),
    ("empty", PermanentError, None, "content filter"),
    ("text:   ", PermanentError, None, "no text"),
])
def test_openai_failures(openai_, audio, behaviour, error, status, match):
    control, base_url = openai_
    control.queue(behaviour)
    with pytest.raises((TransientError, PermanentError)) as caught:
        ask(openai_config(base_url), audio, environ=OPENAI_ENV)
    assert type(caught.value) is error and caught.value.status == status
    assert match in caught.value.message
    if behaviour == "429":
        assert caught.value.retry_after == 7.0


def test_openai_missing_key_is_permanent_and_sends_nothing(openai_, audio):
    control, base_url = openai_
    with pytest.raises(PermanentError, match=OPENAI_KEY_ENV):
        ask(openai_config(base_url), audio, environ={})
    assert control.requests == []


def test_an_unknown_kind_is_permanent(audio):
    class Other:
        kind = "mystery"

    with pytest.raises(PermanentError, match="mystery"):
        ask(Other(), audio, environ={})  # type: ignore[arg-type]

"""An OpenAI-compatible chat-completions server with audio out, as the `openai_chat_audio`
adapter meets one: POST /v1/chat/completions answers the way `Control` says; GET /v1/models
lists one model.

The wire format is OpenAI's: a `chat.completion` object whose choices carry
`message.audio = {id, data, expires_at, transcript}`; with `"stream": true`, server-sent events
`data: {chat.completion.chunk}` with the audio in `delta.audio` pieces, a last usage-only chunk
(empty choices) when `stream_options.include_usage` is set, then `data: [DONE]`; errors as
`{"error": {"message", "type", "param", "code"}}`.

Behaviours: "ok" (WAV in choice 0; streamed: raw PCM pieces, as OpenAI and DashScope send),
"second_choice" (choice 0 text only, choice 1 the audio), "pcm" (raw 16-bit PCM at 24 kHz),
"split_base64" (streamed: one base64 string cut at arbitrary points), "vllm_omni" (vLLM-Omni's
shapes: a text choice plus an audio choice with an empty transcript; streamed: chunks marked
`modality`, each audio chunk a whole WAV file in `delta.content`), "429" (Retry-After: 7), "500",
"400", "stream_error" (an error event after the first chunk), "bad_audio" (base64 of bytes that
are not audio), "bad_base64", "empty" (no audio in any choice, finish_reason content_filter) and
"slow" (answers "ok" after 3 s). For the judges' text verdicts: "text:<reply>" (a text-only
answer whose `message.content` is exactly <reply>, no audio; streamed: <reply> in one content
delta) and "text_parts:<reply>" (the same, with `content` a list of one text part, as some
compatible servers send).

POST /v1/audio/transcriptions (multipart: file, model, response_format, ...) answers
{"text": TRANSCRIPT, "usage": ...} in the token form gpt-4o-transcribe reports; "text:<reply>"
makes the text <reply> (empty for a clip without words), and "429", "500" and "400" answer as
above ("429:<seconds>" as below). A transcription request is recorded with path, headers, form
(the text fields) and file ({"filename", "content_type", "data"}).

POST /v1/audio/speech (JSON: model, input, voice, instructions, response_format) answers the
tone as a WAV file, as gpt-4o-mini-tts answers response_format "wav"; "bad_audio" sends bytes
that are no audio, and the errors answer as above.

For structured output: "from_schema" answers a text-only completion whose content is JSON that
follows the request's `response_format.json_schema.schema`, its values a pure function of the
request's messages (see `gemini_server.schema_answer`); "429:<seconds>" is the "429" error with
`Retry-After: <seconds>`.

Each request is recorded as a dict: path, headers (lower-cased names) and json (the parsed body).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import soundfile as sf
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from tests.fakes.gemini_server import schema_answer
from tests.fakes.server import Control, serve

TRANSCRIPT = "a fake spoken answer"
MODEL_SUFFIX = "-2025-06-03"  # the reply names a dated snapshot of the model asked for
REPLY_RATE = 24_000
NOT_AUDIO = b"these bytes are no audio file at all"
USAGE = {
    "prompt_tokens": 64, "completion_tokens": 120, "total_tokens": 184,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 52, "text_tokens": 12},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 100, "text_tokens": 20},
}

TRANSCRIPTION_USAGE = {"type": "tokens", "input_tokens": 40, "output_tokens": 8,
                       "total_tokens": 48,
                       "input_token_details": {"text_tokens": 0, "audio_tokens": 40}}


def reply_samples(seconds: float = 0.5, rate: int = REPLY_RATE) -> np.ndarray:
    """The spoken answer the fake gives: a short tone, as 16-bit samples."""
    t = np.arange(int(seconds * rate)) / rate
    return np.round(0.3 * 32767 * np.sin(2 * np.pi * 440.0 * t)).astype("<i2")


@functools.cache
def reply_pcm() -> bytes:
    return reply_samples().tobytes()


@functools.cache
def _canned_wav() -> bytes:
    return reply_wav(reply_samples())


def reply_wav(samples: np.ndarray | None = None) -> bytes:
    if samples is None:
        return _canned_wav()
    buffer = io.BytesIO()
    sf.write(buffer, samples, REPLY_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def create_app(control: Control) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": "fake-omni", "object": "model", "created": 1_700_000_000, "owned_by": "fake"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        behaviour = control.next_behaviour({"path": request.url.path, "json": body,
                                            "headers": dict(request.headers)})
        if not isinstance(body, dict):
            return _error(400, "We could not parse the JSON body of your request.",
                          "invalid_request_error")
        if behaviour == "slow":
            await asyncio.sleep(3)
            behaviour = "ok"
        if (failure := _failure(behaviour)) is not None:
            return failure
        if behaviour == "from_schema":
            schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
            seed = "\n".join(str(m.get("content")) for m in body.get("messages") or [])
            behaviour = "text:" + json.dumps(schema_answer(schema or {}, seed),
                                             ensure_ascii=False)
        reply = _Reply(str(body.get("model", "")) + MODEL_SUFFIX)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(reply.stream(behaviour, include_usage),
                                     media_type="text/event-stream")
        return JSONResponse(reply.completion(behaviour))

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        file = None if upload is None or isinstance(upload, str) else {
            "filename": upload.filename, "content_type": upload.content_type,
            "data": await upload.read()}
        behaviour = control.next_behaviour({
            "path": request.url.path, "headers": dict(request.headers), "file": file,
            "form": {name: value for name, value in form.items() if isinstance(value, str)}})
        if (failure := _failure(behaviour)) is not None:
            return failure
        if file is None or "model" not in form:
            return _error(400, "you must provide a file and a model", "invalid_request_error")
        text = behaviour.removeprefix("text:") if behaviour.startswith("text:") else TRANSCRIPT
        return JSONResponse({"text": text, "usage": TRANSCRIPTION_USAGE})

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        behaviour = control.next_behaviour({"path": request.url.path, "json": body,
                                            "headers": dict(request.headers)})
        if (failure := _failure(behaviour)) is not None:
            return failure
        if not isinstance(body, dict) or not body.get("input") or not body.get("voice"):
            return _error(400, "you must provide input and voice", "invalid_request_error")
        if behaviour == "bad_audio":
            return Response(NOT_AUDIO, media_type="audio/wav")
        return Response(reply_wav(), media_type="audio/wav")

    return app


@contextmanager
def running(control: Control) -> Iterator[str]:
    """Serve the fake on a free port; yields the base URL an OpenAI client takes
    ("http://127.0.0.1:PORT/v1")."""
    with serve(create_app(control)) as url:
        yield f"{url}/v1"


def _error(status: int, message: str, type_: str, *, param: str | None = None,
           code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param,
                                   "code": code}}, status_code=status, headers=headers)


_ERRORS = {
    "429": lambda: _error(429, "Rate limit reached for requests per min (RPM): Limit 3, Used 3, "
                               "Requested 1. Please try again in 7s.", "requests",
                          code="rate_limit_exceeded", headers={"Retry-After": "7"}),
    "500": lambda: _error(500, "The server had an error while processing your request. Sorry "
                               "about that!", "server_error"),
    "400": lambda: _error(400, "Invalid value for 'audio.voice'.", "invalid_request_error",
                          param="audio.voice", code="invalid_value"),
}


def _failure(behaviour: str) -> JSONResponse | None:
    """The error reply a queued behaviour asks for ("500", "429:<seconds>", ...), if any."""
    if behaviour in _ERRORS:
        return _ERRORS[behaviour]()
    if behaviour.startswith("429:"):
        return _rate_limited(behaviour.removeprefix("429:"))
    return None


def _rate_limited(seconds: str) -> JSONResponse:
    return _error(429, f"Rate limit reached. Please try again in {seconds}s.", "requests",
                  code="rate_limit_exceeded", headers={"Retry-After": seconds})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Reply:
    """One answer, whole or streamed, for the model named in the request."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.audio_id = f"audio_{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model

    def _audio(self, data: str, transcript: str = TRANSCRIPT) -> dict[str, Any]:
        return {"id": self.audio_id, "data": data, "expires_at": self.created + 3600,
                "transcript": transcript}

    @staticmethod
    def _choice(index: int, *, content: str | list[dict[str, Any]] | None = None,
                audio: dict[str, Any] | None = None, finish_reason: str = "stop"
                ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None,
                                   "annotations": []}
        if audio is not None:
            message["audio"] = audio
        return {"index": index, "message": message, "logprobs": None,
                "finish_reason": finish_reason}

    def completion(self, behaviour: str) -> dict[str, Any]:
        wav = _b64(reply_wav())
        match behaviour:
            case str() if behaviour.startswith("text:"):
                choices = [self._choice(0, content=behaviour.removeprefix("text:"))]
            case str() if behaviour.startswith("text_parts:"):
                choices = [self._choice(0, content=[
                    {"type": "text", "text": behaviour.removeprefix("text_parts:")}])]
            case "second_choice":
                choices = [self._choice(0, content="Here is a written answer."),
                           self._choice(1, audio=self._audio(wav))]
            case "pcm":
                choices = [self._choice(0, audio=self._audio(_b64(reply_pcm())))]
            case "vllm_omni":
                choices = [self._choice(0, content=TRANSCRIPT),
                           self._choice(0, audio=self._audio(wav, transcript=""))]
            case "bad_audio":
                choices = [self._choice(0, audio=self._audio(_b64(NOT_AUDIO)))]
            case "bad_base64":
                choices = [self._choice(0, audio=self._audio("UklGRi@@@ not base64 @@@"))]
            case "empty":
                choices = [self._choice(0, finish_reason="content_filter")]
            case _:
                choices = [self._choice(0, audio=self._audio(wav))]
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "choices": choices, "usage": USAGE,
                "service_tier": "default", "system_fingerprint": "fp_fake"}

    def _chunk(self, choices: list[dict[str, Any]], include_usage: bool,
               **extra: Any) -> str:
        chunk: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk",
                                 "created": self.created, "model": self.model,
                                 "system_fingerprint": "fp_fake", "choices": choices, **extra}
        if include_usage:
            chunk.setdefault("usage", None)
        return f"data: {json.dumps(chunk)}\n\n"

    @staticmethod
    def _delta(index: int, delta: dict[str, Any], finish_reason: str | None = None
               ) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def stream(self, behaviour: str, include_usage: bool) -> Iterator[str]:
        """OpenAI's order: role and audio id first, then audio and transcript pieces, then the
        expiry, then an empty delta with the finish reason, the usage chunk and [DONE]."""
        pcm = reply_pcm()
        pieces = [pcm[i:i + 4800] for i in range(0, len(pcm), 4800)]  # 0.1 s each
        words = TRANSCRIPT.split(" ")
        index = 1 if behaviour == "second_choice" else 0

        def send(*choices: dict[str, Any], **extra: Any) -> str:
            return self._chunk(list(choices), include_usage, **extra)

        match behaviour:
            case str() if behaviour.startswith(("text:", "text_parts:")):
                yield send(self._delta(0, {"role": "assistant",
                                           "content": behaviour.partition(":")[2]}))
                yield send(self._delta(0, {}, "stop"))
            case "empty":
                yield send(self._delta(0, {"role": "assistant", "content": ""}))
                yield send(self._delta(0, {}, "content_filter"))
            case "bad_base64":
                yield send(self._delta(0, {"role": "assistant",
                                           "audio": {"id": self.audio_id, "data": "@@@!!"}}))
                yield send(self._delta(0, {}, "stop"))
            case "stream_error":
                yield send(self._delta(0, {"role": "assistant", "audio": {"id": self.audio_id}}))
                yield "data: " + json.dumps({"error": {
                    "message": "The engine died while generating.", "type": "InternalServerError",
                    "param": None, "code": 500}}) + "\n\n"
            case "vllm_omni":
                for word in words:
                    yield send(self._delta(0, {"role": "assistant", "content": word + " "}),
                               modality="text")
                samples = reply_samples()
                for start in range(0, len(samples), 2400):
                    yield send(self._delta(0, {"role": "assistant", "content":
                                               _b64(reply_wav(samples[start:start + 2400]))}),
                               modality="audio")
                yield send(self._delta(0, {}, "stop"), modality="audio")
            case _:
                if behaviour == "split_base64":
                    encoded = _b64(pcm)
                    cuts = [0, 7, 1001, 4002, 9999, len(encoded)]
                    data = [encoded[a:b] for a, b in zip(cuts, cuts[1:])]
                else:
                    data = [_b64(NOT_AUDIO if behaviour == "bad_audio" else p) for p in pieces]
                if behaviour == "second_choice":
                    yield send(self._delta(0, {"role": "assistant",
                                               "content": "Here is a written answer."}, "stop"))
                yield send(self._delta(index, {"role": "assistant", "content": None,
                                               "audio": {"id": self.audio_id}}))
                for i, piece in enumerate(data):
                    audio: dict[str, Any] = {"data": piece}
                    if i < len(words):
                        audio["transcript"] = words[i] if i == 0 else " " + words[i]
                    yield send(self._delta(index, {"audio": audio}))
                yield send(self._delta(index, {"audio": {"expires_at": self.created + 3600}}))
                yield send(self._delta(index, {}, "stop"))
        if include_usage:
            yield send(usage=USAGE)
        yield "data: [DONE]\n\n"

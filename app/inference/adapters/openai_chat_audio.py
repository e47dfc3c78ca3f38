"""OpenAI-compatible chat completions with audio in and audio out, through the real `openai` SDK.

One request per call: the prompt's WAV goes in as an `input_audio` content part, and the spoken
answer comes back as base64 audio. Servers that claim compatibility differ in where they put it,
and each shape below was read from the server's own code or documentation:

- OpenAI (non-streaming): `choices[i].message.audio = {id, data, expires_at, transcript}`, `data`
  in the requested format. Streaming only allows pcm16: `choices[i].delta.audio` carries `id`,
  base64 `data` pieces and `transcript` pieces, the last one only `expires_at`.
- DashScope's Qwen-Omni (streaming only): `delta.audio = {"data": ..., "transcript": ...}` with
  raw 16-bit PCM at 24 kHz even when "wav" was asked for.
- vLLM-Omni: a non-streaming reply has a text choice and a separate audio choice (the same
  index; the audio's transcript is empty, the words are in the text choice). A streamed reply
  marks each chunk with a top-level `modality`; audio chunks put base64 audio in
  `delta.content`, each one a complete file in the requested format (a WAV per chunk).

A file header (RIFF, FLAC, Ogg, ID3) wins over the config. Headerless audio is raw PCM at
`pcm_sample_rate` in a stream, or when pcm16 was asked for; otherwise it is passed on as a
file, and the caller, which decodes every answer, reports it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
import soundfile as sf

from app.inference.adapters.base import (
    Adapter,
    AdapterError,
    Generated,
    PermanentError,
    PromptAudio,
    TransientError,
    error_for_status,
)
from app.inference.configs import OpenAIChatAudioAdapter

PROBE_TIMEOUT_S = 2.0
# Sent when the config names no secret: the SDK insists on a key, and an explicit one keeps it
# from picking up OPENAI_API_KEY and handing it to a local server. vLLM's docs use this value.
NO_KEY = "EMPTY"
_FILE_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3")
# Stands for the prompt's base64 while the rest of a request is serialised (see _request_bytes).
_AUDIO_SLOT = f"prompt-audio-{secrets.token_hex(16)}"

_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def openai_client(base_url: str, api_key: str, timeout_s: float) -> openai.OpenAI:
    """One pooled client per endpoint, key and timeout in each process: a benchmark sends about
    a hundred requests a second, and a client per call would open a connection per call. SDK
    retries are off; the Celery task owns retrying."""
    key = (base_url, api_key, timeout_s)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = openai.OpenAI(base_url=base_url, api_key=api_key,
                                                   max_retries=0, timeout=timeout_s)
        return client


# A connection pool must not cross a fork (Celery's prefork workers): each child builds its own.
os.register_at_fork(after_in_child=_clients.clear)


class OpenAIChatAudio(Adapter):
    kind = "openai_chat_audio"
    config: OpenAIChatAudioAdapter

    def generate(self, prompt: PromptAudio) -> Generated:
        config = self.config
        api_key = self.secret(config.api_key_env) or NO_KEY  # a missing secret is permanent
        client = openai_client(config.base_url, api_key, config.timeout_s)
        body = self._request_bytes(prompt)
        try:
            # The SDK's own POST, as `chat.completions.create` makes it, with the body already
            # in wire form: create() would first walk the request (a megabyte of base64
            # included) against its typed parameters, and serialising it would scan that
            # base64 once more. A non-streamed reply is read as plain JSON (`cast_to=object`)
            # rather than built into typed objects: only a few of its fields are wanted.
            if config.stream:
                with client.post("/chat/completions", content=body, cast_to=ChatCompletion,
                                 stream=True, stream_cls=openai.Stream[ChatCompletionChunk]
                                 ) as chunks:
                    return self._from_stream(chunks)
            return self._from_completion(
                client.post("/chat/completions", content=body, cast_to=object))
        except openai.APIStatusError as exc:  # RateLimitError, InternalServerError, ... included
            raise error_for_status(exc.status_code, error_message(exc), exc.response.headers,
                                   exc.body) from exc
        except openai.APITimeoutError as exc:  # before APIConnectionError, its base class
            raise TransientError(f"{config.base_url} did not answer within "
                                 f"{config.timeout_s:g} s") from exc
        except openai.APIConnectionError as exc:
            raise TransientError(f"could not reach {config.base_url}: "
                                 f"{describe_error(exc.__cause__ or exc)}") from exc
        except openai.APIError as exc:  # an error event inside a stream, or an unreadable reply
            raise api_error(exc) from exc
        except json.JSONDecodeError as exc:  # a 200 that says application/json but is not
            raise PermanentError(f"{config.base_url} answered with broken JSON: {exc}") from exc

    def probe(self) -> str | None:
        """Any answer at all (even 401 or 404) shows the server is up; only silence warns."""
        url = f"{self.config.base_url}/models"
        try:
            httpx.get(url, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return f"{url} did not answer: {describe_error(exc)}"
        return None

    def _request_bytes(self, prompt: PromptAudio) -> bytes:
        """The request's JSON as sent. The prompt's base64 goes in as bytes where a placeholder
        was serialised: base64 needs no JSON escaping, so the encoder need not scan it."""
        head, tail = json.dumps(self._request(_AUDIO_SLOT)).encode().split(
            b'"' + _AUDIO_SLOT.encode() + b'"', 1)
        return b"".join((head, b'"', base64.b64encode(prompt.wav), b'"', tail))

    def _request(self, audio_data: str) -> dict[str, Any]:
        """The JSON body of the chat-completions request, with `audio_data` (the prompt's
        base64) as the input audio. `max_tokens` rather than `max_completion_tokens`: DashScope
        documents only the former, and OpenAI's audio models and vLLM accept both."""
        config = self.config
        messages: list[dict[str, Any]] = []
        if config.system_prompt:
            messages.append({"role": "system", "content": config.system_prompt})
        messages.append({"role": "user", "content": [{
            "type": "input_audio", "input_audio": {"data": audio_data, "format": "wav"},
        }]})
        audio: dict[str, Any] = {"format": config.audio_format}
        if config.voice is not None:
            audio["voice"] = config.voice
        request: dict[str, Any] = {"model": config.model, "messages": messages,
                                   "modalities": ["text", "audio"], "audio": audio,
                                   "stream": config.stream}
        if config.stream:
            request["stream_options"] = {"include_usage": True}
        if config.max_tokens is not None:
            request["max_tokens"] = config.max_tokens
        return request | config.extra_body  # server-specific options, sent as given

    def _from_completion(self, response: Any) -> Generated:
        """The answer in a chat completion as parsed JSON (the SDK hands over a body that is
        not JSON as text)."""
        if not isinstance(response, dict) or "choices" not in response:
            raise PermanentError(f"{self.config.base_url} did not answer with a chat completion: "
                                 f"{shorten(str(response))!r}")
        choices = response["choices"] if isinstance(response["choices"], list) else []
        for choice in choices:
            message = get_field(choice, "message")
            audio = get_field(message, "audio")
            encoded = get_field(audio, "data")
            if not encoded:
                continue
            data = _decode([encoded])
            # A file header wins over the config; without one, "pcm16" means raw PCM, and
            # anything else is passed on as a file for the caller to judge.
            raw = not _is_file(data) and self.config.audio_format == "pcm16"
            words = [get_field(audio, "transcript"), get_field(message, "content")]
            words += [get_field(get_field(other, "message"), "content") for other in choices
                      if get_field(other, "index") == get_field(choice, "index")]
            return Generated(audio=data, pcm_rate=self.config.pcm_sample_rate if raw else None,
                             transcript=_first_text(words),
                             model_version=_text(response.get("model")),
                             usage=_plain(response.get("usage")))
        raise PermanentError(_no_audio([
            (get_field(c, "finish_reason"), get_field(get_field(c, "message"), "refusal"),
             get_field(get_field(c, "message"), "content")) for c in choices]))

    def _from_stream(self, chunks: Any) -> Generated:
        streamed: dict[int, _Streamed] = defaultdict(_Streamed)
        model_version = None
        usage = None
        seen = False
        for chunk in chunks:
            seen = True
            model_version = getattr(chunk, "model", None) or model_version
            usage = getattr(chunk, "usage", None) or usage  # the last chunk, choices empty
            audio_chunk = getattr(chunk, "modality", None) == "audio"  # vLLM-Omni
            for choice in getattr(chunk, "choices", None) or []:
                into = streamed[get_field(choice, "index") or 0]
                into.finish_reason = get_field(choice, "finish_reason") or into.finish_reason
                delta = get_field(choice, "delta")
                audio = get_field(delta, "audio")
                content = get_field(delta, "content")
                if get_field(audio, "data"):
                    into.audio.append(get_field(audio, "data"))
                if get_field(audio, "transcript"):
                    into.transcript.append(get_field(audio, "transcript"))
                if content and audio_chunk:
                    into.audio.append(content)
                elif content:
                    into.text.append(content)
                if get_field(delta, "refusal"):
                    into.refusal.append(get_field(delta, "refusal"))
        for index in sorted(streamed):
            found = streamed[index]
            if not found.audio:
                continue
            data = _streamed_audio(found.audio)
            return Generated(audio=data,
                             pcm_rate=None if _is_file(data) else self.config.pcm_sample_rate,
                             transcript=_first_text(["".join(found.transcript),
                                                     "".join(found.text)]),
                             model_version=model_version, usage=_plain(usage))
        if not seen:
            raise PermanentError(f"{self.config.base_url} streamed no chat completion chunks")
        raise PermanentError(_no_audio([
            (s.finish_reason, "".join(s.refusal), "".join(s.text)) for s in streamed.values()]))


@dataclass
class _Streamed:
    """What one choice of a streamed reply carried, gathered over its chunks."""

    audio: list[str] = field(default_factory=list)  # base64 pieces
    transcript: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    finish_reason: str | None = None


def get_field(obj: Any, name: str) -> Any:
    """A field of an SDK object, of a dict (a reply read as JSON; older SDKs give a streamed
    `delta.audio` as one) or None."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _streamed_audio(pieces: list[str]) -> bytes:
    """The audio of one streamed choice. Pieces padded one by one must be decoded one by one
    (lenient decoding stops at the first "=" and silently drops the rest); slices cut from one
    long string must be joined first. A stream that sent a whole file per chunk (vLLM-Omni)
    becomes one file."""
    if all(len(_clean(piece)) % 4 == 0 for piece in pieces):
        parts = [_decode([piece]) for piece in pieces]
    else:
        parts = [_decode(pieces)]
    if sum(_is_file(part) for part in parts) > 1:
        return _join_files(parts)
    return b"".join(parts)


def _decode(pieces: list[str]) -> bytes:
    try:
        return base64.b64decode("".join(_clean(piece) for piece in pieces), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PermanentError(f"the reply's audio is not valid base64: {exc}") from exc


def _clean(piece: Any) -> str:
    """Base64 text without whitespace or a data URL prefix (data:audio/wav;base64,....)."""
    if not isinstance(piece, str):
        raise PermanentError(f"the reply's audio data is {type(piece).__name__}, not base64 text")
    if piece.startswith("data:"):
        piece = piece.partition(",")[2]
    return "".join(piece.split())


def _is_file(data: bytes) -> bool:
    return data.startswith(_FILE_MAGIC)


def _join_files(files: list[bytes]) -> bytes:
    """One 16-bit WAV holding the samples of every file, in order. Joining the bytes would leave
    a file whose header counts only the first chunk."""
    try:
        decoded = [sf.read(io.BytesIO(file), dtype="int16", always_2d=True) for file in files]
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise PermanentError(f"a streamed audio chunk is not a readable audio file: {exc}") from exc
    rates = {rate for _, rate in decoded}
    channels = {samples.shape[1] for samples, _ in decoded}
    if len(rates) > 1 or len(channels) > 1:
        raise PermanentError(f"the streamed audio chunks disagree on sample rate or channels "
                             f"({sorted(rates)} Hz, {sorted(channels)} channels)")
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate([samples for samples, _ in decoded]), rates.pop(),
             format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_text(candidates: list[Any]) -> str | None:
    for text in candidates:
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _plain(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    if isinstance(usage, dict):
        return {name: value for name, value in usage.items() if value is not None}
    if hasattr(usage, "model_dump"):
        return usage.model_dump(mode="json", exclude_none=True)
    return {}


def _no_audio(choices: list[tuple[str | None, str | None, str | None]]) -> str:
    """Why a reply had no audio, in the words the admin needs: blocked, refused, cut short or
    text only."""
    if not choices:
        return "the reply holds no choices, so no audio"
    reasons = []
    for finish_reason, refusal, text in choices:
        if finish_reason == "content_filter":
            reasons.append("blocked by the provider's content filter (finish_reason "
                           "content_filter)")
        elif finish_reason:
            reasons.append(f"finish_reason {finish_reason}")
        if refusal:
            reasons.append(f"refused: {shorten(refusal)!r}")
        elif text:
            reasons.append(f"text only: {shorten(text)!r}")
    detail = "; ".join(dict.fromkeys(reasons)) or "no reason given"
    return (f"the reply holds no audio in any of its {len(choices)} choice(s) ({detail}); "
            f"does the model speak, and does the server support modalities "
            f"[\"text\", \"audio\"]?")


def api_error(exc: openai.APIError) -> AdapterError:
    """An error the server sent as a stream event, or a reply the SDK could not read. An event
    that names an HTTP status is classified by it; a bare one is a server-side failure."""
    body = exc.body
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, int) and 400 <= code < 600:
        return error_for_status(code, exc.message, None, body)
    if isinstance(exc, openai.APIResponseValidationError):
        return PermanentError(f"the server's reply is not a chat completion: {exc.message}")
    return TransientError(f"the server reported an error mid-reply: {exc.message}")


def error_message(exc: openai.APIStatusError) -> str:
    """The server's own message ({"error": {"message": ...}}), not the SDK's repr of the body."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return exc.message


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def describe_error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

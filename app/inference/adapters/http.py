"""A lab's own inference server: POST the prompt's WAV, get spoken audio back.

The request is multipart (the WAV as a file field) or JSON (the WAV in base64), with the lab's
own fixed parameters alongside. The reply is either the audio file itself (`audio/*` or
`application/octet-stream`, with optional `X-Transcript` and `X-Model-Version` headers) or JSON
holding base64 audio. Anything else is refused with a message that says what was expected, so an
admin can fix the lab's server or the config.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from typing import Any
from urllib.parse import unquote

import httpx

from app.inference.adapters.base import (
    Adapter,
    Generated,
    PermanentError,
    PromptAudio,
    TransientError,
    error_for_status,
)
from app.inference.configs import HttpAdapter

PROBE_TIMEOUT_S = 2.0


@functools.cache
def _client(timeout_s: float) -> httpx.Client:
    """One pooled client per timeout and process. httpx does not retry by default; the Celery
    task owns retrying."""
    return httpx.Client(timeout=timeout_s, transport=httpx.HTTPTransport(retries=0))


# A connection pool must not cross a fork (Celery's prefork workers): each child builds its own.
os.register_at_fork(after_in_child=_client.cache_clear)


class HttpEndpoint(Adapter):
    kind = "http"
    config: HttpAdapter

    def generate(self, prompt: PromptAudio) -> Generated:
        config = self.config
        headers = {"Accept": "audio/*, application/json"}
        token = self.secret(config.bearer_token_env)  # a missing secret fails before any request
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = _client(config.timeout_s).post(config.url, headers=headers,
                                                      **self._body(prompt))
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{config.url} did not answer within {config.timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(f"could not reach {config.url}: {_describe(exc)}") from exc
        except httpx.RequestError as exc:  # a reply httpx cannot decode (a broken gzip body, say)
            raise PermanentError(f"{config.url} sent an unreadable reply: {exc}") from exc
        if not response.is_success:
            raise error_for_status(response.status_code, response.text, response.headers,
                                   _json_or_none(response))
        return self._parse(response)

    def probe(self) -> str | None:
        """Any answer at all (even 401 or 405) shows the server is up; only silence warns."""
        try:
            _client(PROBE_TIMEOUT_S).head(self.config.url)
        except httpx.HTTPError as exc:
            return f"{self.config.url} does not answer now: {_describe(exc)}"
        return None

    def _body(self, prompt: PromptAudio) -> dict[str, Any]:
        """The keyword arguments of the POST: multipart form data or a JSON body."""
        config = self.config
        if config.request_format == "json":
            return {"json": {
                config.audio_field: base64.b64encode(prompt.wav).decode("ascii"),
                "format": "wav",
                "sample_rate": prompt.sample_rate,
                "prompt_id": prompt.key,
                **config.params,
            }}
        fields = {"sample_rate": str(prompt.sample_rate), "prompt_id": prompt.key,
                  **{name: _form_value(value) for name, value in config.params.items()}}
        return {"data": fields,
                "files": {config.audio_field: ("prompt.wav", prompt.wav, "audio/wav")}}

    def _parse(self, response: httpx.Response) -> Generated:
        config = self.config
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type.startswith("audio/") or content_type == "application/octet-stream":
            if not response.content:
                raise PermanentError(f"{config.url} answered {content_type} with an empty body")
            transcript = response.headers.get("x-transcript")
            return Generated(
                audio=response.content,
                transcript=_text(unquote(transcript)) if transcript else None,
                model_version=response.headers.get("x-model-version") or None,
            )
        if content_type == "application/json" or content_type.endswith("+json"):
            return self._parse_json(_json_or_none(response))
        raise PermanentError(
            f"{config.url} answered with {content_type or 'no content type'}; expected an audio "
            f"file (audio/* or application/octet-stream) or JSON with base64 audio under "
            f"{config.response_audio_field!r}"
        )

    def _parse_json(self, body: Any) -> Generated:
        config = self.config
        field = config.response_audio_field
        if not isinstance(body, dict):
            raise PermanentError(f"{config.url} answered with JSON that is not an object; expected "
                                 f"base64 audio under {field!r}")
        encoded = body.get(field)
        if not isinstance(encoded, str) or not encoded.strip():
            raise PermanentError(f"{config.url} answered JSON without base64 audio under {field!r} "
                                 f"(keys: {', '.join(sorted(body)) or 'none'})")
        if encoded.startswith("data:"):  # a data URL: data:audio/wav;base64,....
            encoded = encoded.partition(",")[2]
        try:
            audio = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PermanentError(f"{config.url} answered JSON whose {field!r} is not valid base64: "
                                 f"{exc}") from exc
        if not audio:
            raise PermanentError(f"{config.url} answered JSON whose {field!r} holds no audio")
        transcript = body.get(config.response_transcript_field)
        version = body.get("model_version")
        usage = body.get("usage")
        return Generated(
            audio=audio,
            transcript=_text(transcript) if isinstance(transcript, str) else None,
            model_version=str(version) if version not in (None, "") else None,
            usage=usage if isinstance(usage, dict) else {},
        )


def _form_value(value: Any) -> str:
    """Form fields are text: strings as they are, everything else as JSON (true, 0.7, [1, 2])."""
    return value if isinstance(value, str) else json.dumps(value)


def _text(value: str) -> str | None:
    return value.strip() or None


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None

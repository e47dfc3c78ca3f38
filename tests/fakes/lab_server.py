"""A lab's own inference server, as the `http` adapter meets one: POST /infer takes the prompt's
WAV as multipart or as base64 JSON and answers the way `Control` says.

Behaviours: "ok" (an audio/wav body with X-Transcript and X-Model-Version headers), "json"
(base64 audio, transcript, model_version and usage in JSON), "json_data_url" (the same with the
audio as a data URL), "json_missing_audio", "json_bad_base64", "429" (Retry-After: 5), "500",
"404", "bad_audio" (an audio/wav body that is not audio), "html" (a 200 text/html page) and
"slow" (answers "ok" after 3 s).

Each request is recorded as a dict: content_type, fields (form fields or JSON keys other than the
audio, with their values), audio_field, filename and audio_content_type (multipart only),
sample_rate (of the decoded audio, None when it does not decode) and authorization.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import numpy as np
import soundfile as sf
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.datastructures import UploadFile

from tests.fakes.server import Control, serve

TRANSCRIPT = "Sure — here's a calm answer: 50% less stress."
MODEL_VERSION = "lab-s2s-2025-06-01"
REPLY_RATE = 24_000


def reply_wav(seconds: float = 0.5, rate: int = REPLY_RATE) -> bytes:
    """The spoken answer the fake gives: a short tone."""
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 330.0 * t), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def create_app(control: Control, *, audio_field: str = "audio") -> FastAPI:
    app = FastAPI()

    @app.post("/infer")
    async def infer(request: Request) -> Response:
        behaviour = control.next_behaviour(await _record(request, audio_field))
        if behaviour == "slow":
            await asyncio.sleep(3)
            behaviour = "ok"
        return _reply(behaviour)

    return app


@contextmanager
def running(control: Control, *, audio_field: str = "audio") -> Iterator[str]:
    """Serve the fake lab on a free port; yields its base URL (POST to base + "/infer")."""
    with serve(create_app(control, audio_field=audio_field)) as base_url:
        yield base_url


async def _record(request: Request, audio_field: str) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    record: dict[str, Any] = {"content_type": content_type, "fields": {},
                              "audio_field": None, "filename": None, "audio_content_type": None,
                              "sample_rate": None,
                              "authorization": request.headers.get("authorization")}
    audio = None
    if content_type == "multipart/form-data":
        form = await request.form()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                record.update(audio_field=name, filename=value.filename,
                              audio_content_type=value.content_type)
                audio = await value.read()
            else:
                record["fields"][name] = value
    elif content_type == "application/json":
        body = await request.json()
        if audio_field in body:
            record["audio_field"] = audio_field
            try:
                audio = base64.b64decode(body.pop(audio_field), validate=True)
            except (binascii.Error, ValueError, TypeError):
                audio = None
        record["fields"] = body
    if audio:
        try:
            record["sample_rate"] = sf.info(io.BytesIO(audio)).samplerate
        except (sf.LibsndfileError, RuntimeError):
            pass
    return record


def _reply(behaviour: str) -> Response:
    audio = reply_wav()
    encoded = base64.b64encode(audio).decode("ascii")
    match behaviour:
        case "ok":
            return Response(audio, media_type="audio/wav",
                            headers={"X-Transcript": quote(TRANSCRIPT),
                                     "X-Model-Version": MODEL_VERSION})
        case "json":
            return JSONResponse({"audio": encoded, "transcript": TRANSCRIPT,
                                 "model_version": MODEL_VERSION,
                                 "usage": {"audio_seconds": 0.5}})
        case "json_data_url":
            return JSONResponse({"audio": f"data:audio/wav;base64,{encoded}",
                                 "transcript": TRANSCRIPT})
        case "json_missing_audio":
            return JSONResponse({"transcript": TRANSCRIPT, "error": None})
        case "json_bad_base64":
            return JSONResponse({"audio": "UklGR!!not base64", "transcript": TRANSCRIPT})
        case "429":
            return JSONResponse({"error": "rate limited"}, status_code=429,
                                headers={"Retry-After": "5"})
        case "500":
            return PlainTextResponse("CUDA error: device-side assert triggered", status_code=500)
        case "404":
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        case "bad_audio":
            return Response(b"this is not audio at all", media_type="audio/wav")
        case "html":
            return HTMLResponse("<html><body><h1>Welcome to nginx!</h1></body></html>")
    raise ValueError(f"the fake lab server has no behaviour {behaviour!r}")

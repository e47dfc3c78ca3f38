"""The Gemini Developer API as google-genai meets it: POST
/{version}/models/{model}:generateContent with camelCase JSON, answered the way `Control` says.

Behaviours:
- "ok": a text part (TRANSCRIPT) and an inlineData part of raw PCM (audio/L16;codec=pcm;rate=24000,
  a 0.5 s tone), finishReason STOP, usageMetadata, modelVersion, responseId
- "wav": the answer as one inlineData audio/wav part
- "text_only": a text part only, as Gemini answers when no audio was asked for
- "text:<reply>": a text part holding exactly <reply> (for the judges' text verdicts)
- "429" (RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo retryDelay "3s"), "500" (INTERNAL),
  "503" (UNAVAILABLE), "400" (INVALID_ARGUMENT): Google's error bodies
- "blocked": promptFeedback.blockReason SAFETY and no candidates
- "max_tokens": a candidate with finishReason MAX_TOKENS and no parts
- "bad_audio": inlineData audio/wav whose bytes are not audio
- "html": a 200 text/html page, as a base_url that is not the Gemini API might answer
- "slow": "ok" after 3 s
- "429:<seconds>": the "429" error with retryDelay "<seconds>s" (a short wait for tests)
- "from_schema": a text part holding JSON that follows the request's responseJsonSchema, its
  values a pure function of the request's text (see `schema_answer`): a deterministic model;
  "from_schema:<seconds>" the same after a wait

Each request is recorded as a dict: path, version ("v1beta"), model, method ("generateContent"),
headers (lower-cased names), json (the parsed body, its keys in camelCase: see `camel_keys`) and
parts: the request's content parts in order, each {"text": ...} or {"mime_type": ..., "data":
decoded bytes, None when it is not base64}.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import soundfile as sf
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tests.fakes.server import Control, serve

TRANSCRIPT = "a fake spoken answer"
PCM_RATE = 24_000
PCM_MIME_TYPE = f"audio/L16;codec=pcm;rate={PCM_RATE}"
RETRY_DELAY_S = 3
SLOW_S = 3.0
USAGE = {"promptTokenCount": 160, "candidatesTokenCount": 52, "totalTokenCount": 212,
         "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 160}]}


def model_version(model: str) -> str:
    """The modelVersion the fake reports for a model it was asked for."""
    return f"{model}-fake-001"


def reply_pcm(seconds: float = 0.5, rate: int = PCM_RATE) -> bytes:
    """The spoken answer the fake gives: a short tone as little-endian 16-bit PCM."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * 32767 * np.sin(2 * np.pi * 330.0 * t)).astype("<i2").tobytes()


def reply_wav(seconds: float = 0.5, rate: int = PCM_RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.frombuffer(reply_pcm(seconds, rate), dtype="<i2"), rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def create_app(control: Control) -> FastAPI:
    app = FastAPI()

    @app.post("/{version}/models/{model_method}")
    async def generate_content(version: str, model_method: str, request: Request) -> Response:
        model, _, method = model_method.partition(":")
        raw = await request.json()
        body = camel_keys(raw)
        behaviour = control.next_behaviour({
            "path": request.url.path, "version": version, "model": model, "method": method,
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "json": body, "parts": _parts(body),
        })
        if method != "generateContent":
            return _error(404, "NOT_FOUND", f"the fake has no method {method!r}")
        if behaviour == "slow":
            await asyncio.sleep(SLOW_S)
            behaviour = "ok"
        if behaviour.startswith("from_schema"):  # "from_schema:<seconds>" answers after a wait
            await asyncio.sleep(float(behaviour.partition(":")[2] or 0))
            config = raw.get("generationConfig") or {}
            schema = config.get("responseJsonSchema") or config.get("response_json_schema")
            text = json.dumps(schema_answer(schema or {}, _request_text(body)),
                              ensure_ascii=False)
            return _answer(model, [{"text": text}])
        return reply(behaviour, model)

    return app


@contextmanager
def running(control: Control) -> Iterator[str]:
    """Serve the fake Gemini API on a free port; yields the base URL to give google-genai."""
    with serve(create_app(control)) as base_url:
        yield base_url


def reply(behaviour: str, model: str) -> Response:
    """The fake's answer for one behaviour (see the module docstring)."""
    if behaviour.startswith("text:"):
        return _answer(model, [{"text": behaviour.removeprefix("text:")}])
    if behaviour.startswith("429:"):
        return _error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo",
             "retryDelay": f"{behaviour.removeprefix('429:')}s"}])
    try:
        make = BEHAVIOURS[behaviour]
    except KeyError:
        raise ValueError(f"the fake Gemini server has no behaviour {behaviour!r}") from None
    return make(model)


def _answer(model: str, parts: list[dict[str, Any]], finish_reason: str = "STOP") -> JSONResponse:
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content["parts"] = parts
    return JSONResponse({
        "candidates": [{"content": content, "finishReason": finish_reason, "index": 0}],
        "usageMetadata": USAGE,
        "modelVersion": model_version(model),
        "responseId": uuid.uuid4().hex[:22],
    })


def _inline(mime_type: str, data: bytes) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode("ascii")}}


def _error(code: int, status: str, message: str,
           details: list[dict[str, Any]] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def _blocked(model: str) -> JSONResponse:
    return JSONResponse({
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
        "usageMetadata": {"promptTokenCount": 160, "totalTokenCount": 160},
        "modelVersion": model_version(model),
        "responseId": uuid.uuid4().hex[:22],
    })


BEHAVIOURS: dict[str, Callable[[str], Response]] = {
    "ok": lambda model: _answer(model, [{"text": TRANSCRIPT},
                                        _inline(PCM_MIME_TYPE, reply_pcm())]),
    "wav": lambda model: _answer(model, [_inline("audio/wav", reply_wav())]),
    "text_only": lambda model: _answer(model, [{"text": TRANSCRIPT}]),
    "bad_audio": lambda model: _answer(model, [_inline("audio/wav", b"this is not audio at all")]),
    "max_tokens": lambda model: _answer(model, [], finish_reason="MAX_TOKENS"),
    "blocked": _blocked,
    "html": lambda model: HTMLResponse("<html><body><h1>Welcome to nginx!</h1></body></html>"),
    "429": lambda model: _error(429, "RESOURCE_EXHAUSTED", (
        "You exceeded your current quota, please check your plan and billing details. "
        f"Please retry in {RETRY_DELAY_S}.2s."), [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel", "quotaValue": "10"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{RETRY_DELAY_S}s"},
    ]),
    "500": lambda model: _error(500, "INTERNAL", "An internal error has occurred. Please retry or "
                                "report in https://developers.generativeai.google/guide/"
                                "troubleshooting"),
    "503": lambda model: _error(503, "UNAVAILABLE",
                                "The model is overloaded. Please try again later."),
    "400": lambda model: _error(400, "INVALID_ARGUMENT",
                                "Request contains an invalid argument."),
}


def camel_keys(value: Any) -> Any:
    """The body as Google's servers read it. google-genai writes the top-level keys in camelCase
    but passes nested objects through in snake_case ({"inlineData": {"data", "mime_type"}},
    {"speechConfig": {"voice_config": ...}}); the servers accept either spelling of a proto field
    name, so the fake records both as camelCase."""
    if isinstance(value, dict):
        return {_camel(key): camel_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _parts(body: Any) -> list[dict[str, Any]]:
    """The request's content parts, with inline data decoded (google-genai sends URL-safe
    base64; Google's servers take either alphabet, and so does the fake)."""
    parts: list[dict[str, Any]] = []
    contents = body.get("contents", []) if isinstance(body, dict) else []
    for content in contents:
        for part in content.get("parts", []):
            if "inlineData" in part:
                inline = part["inlineData"]
                parts.append({"mime_type": inline.get("mimeType"),
                              "data": _b64decode(inline.get("data", ""))})
            elif "text" in part:
                parts.append({"text": part["text"]})
    return parts


def _b64decode(data: str) -> bytes | None:
    try:
        return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def _request_text(body: Any) -> str:
    """Every text the request carries: the system instruction and the contents' text parts."""
    texts = [part["text"] for part in _parts(body) if "text" in part]
    system = body.get("systemInstruction") if isinstance(body, dict) else None
    if isinstance(system, dict):
        texts += [part.get("text", "") for part in system.get("parts", [])]
    return "\n".join(texts)


WORDS = ("river lantern quiet market winter garden signal copper meadow harbor velvet orbit "
         "candle thunder maple ribbon canyon pepper marble falcon silver cotton planet violet "
         "ember willow saddle puzzle anchor comet tulip basket glacier").split()


def schema_answer(schema: dict[str, Any], seed: str, path: str = "") -> Any:
    """A value that follows a JSON schema (objects, arrays, strings with or without an enum,
    numbers, booleans), every choice made from sha256(seed, path): the same request always
    gets the same answer, and different requests get different texts."""
    digest = hashlib.sha256(f"{seed}|{path}".encode()).digest()
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][digest[0] % len(schema["enum"])]
    if kind == "object":
        return {name: schema_answer(sub, seed, f"{path}.{name}")
                for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        return [schema_answer(schema.get("items") or {}, seed, f"{path}[{i}]")
                for i in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1)) + digest[0] % 5
    if kind == "number":
        return digest[0] / 255
    if kind == "boolean":
        return digest[0] % 2 == 0
    words = " ".join(WORDS[byte % len(WORDS)] for byte in digest[:8])
    return f"{words[:1].upper()}{words[1:]}."

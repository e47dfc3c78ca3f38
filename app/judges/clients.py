"""Asking an audio LLM to compare two responses: one request, its reply text, or an error that
says whether to retry.

`ask(config, audio)` sends the S2S-Arena pairwise prompt (A.5; our JSON variant when
`answer_format` is "json") with the battle's audio and returns the reply's text, unparsed: the
caller reads it with `app.judges.parsing.parse_pairwise`. Like an inference adapter, a call never
retries: TransientError (429, 408, 5xx, timeouts, with the wait the server asked for) and
PermanentError (other 4xx, a blocked prompt, an empty reply, a missing secret) go to the Celery
task, which owns retrying. To judge both orders, ask again with `audio.swapped()`.

The request is a text instruction (the paper's "Text Content Instruction") followed by the
evaluation prompt and the audio, in one of two layouts:
- "parts": the evaluation prompt's text pieces with the three clips in its slots, in order;
- "concatenated": the evaluation prompt with each slot named by where it sits in one spliced clip
  ("the input audio (at the start of the audio)", "the first response (after one beep)", ...), a
  sentence describing the clip, then the clip itself (see app.judges.audio for the separators).
  This is the paper's own setup: one audio, the three clips spliced in.

Gemini takes audio inline up to `max_inline_bytes` of base64 in one request; beyond that each
clip goes up through the Files API and the request refers to it; the files are deleted after the
call. OpenAI-compatible servers take only inline audio (`input_audio`, base64 WAV).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import openai
from google import genai
from google.genai import types

from app.inference.adapters.base import PermanentError, TransientError, error_for_status
from app.inference.adapters.gemini import FINISH_HINTS, enum_name, usage_counts
from app.inference.adapters.openai_chat_audio import (
    NO_KEY,
    api_error,
    openai_client,
    describe_error,
    error_message,
    get_field,
    shorten,
)
from app.inference.gemini_client import client_for, gemini_errors
from app.judges.audio import JudgeAudio, Layout
from app.judges.configs import GeminiPairwise, JudgeConfig, OpenAIPairwise
from app.judges.prompts import (
    PAIRWISE_JSON_PROMPT,
    PAIRWISE_PROMPT,
    AudioSlot,
    PairwisePrompt,
)

log = logging.getLogger(__name__)

WAV = "audio/wav"
FILE_POLL_S = 1.0  # how often an uploaded file still PROCESSING is looked at again

# Where each clip sits in the concatenated audio, as the evaluation prompt names it.
CONCATENATED_SLOTS = {
    AudioSlot.INPUT: "at the start of the audio",
    AudioSlot.FIRST: "after one beep",
    AudioSlot.SECOND: "after two beeps",
}
CONCATENATED_LAYOUT = ("The audio that follows plays the input audio, then one beep, the first "
                       "response, then two beeps, and the second response.")
_SLOT_IN_TEXT = re.compile(r":?\s*(" + "|".join(re.escape(slot.value) for slot in AudioSlot)
                           + ")")


@dataclass(frozen=True)
class JudgeReply:
    """What a judge answered, as text, and how: the model version the server reports, its token
    counts, and the version of the prompt it was asked with."""

    text: str
    model_version: str | None
    usage: dict[str, int] = field(default_factory=dict)
    prompt_version: str = PAIRWISE_PROMPT.version
    finish_reason: str | None = None  # "STOP", "stop", "MAX_TOKENS", "length", ...


def ask(config: JudgeConfig, audio: JudgeAudio, *,
        environ: Mapping[str, str] | None = None) -> JudgeReply:
    """Ask the judge once which response is better. `environ` is where the API key is looked up
    (os.environ when None)."""
    try:
        ask_kind = ASKERS[config.kind]
    except KeyError:
        raise PermanentError(f"no pairwise judge of kind {config.kind!r}") from None
    return ask_kind(config, audio, os.environ if environ is None else environ)


def pairwise_prompt(config: JudgeConfig) -> PairwisePrompt:
    return PAIRWISE_JSON_PROMPT if config.answer_format == "json" else PAIRWISE_PROMPT


def request_parts(prompt: PairwisePrompt, audio: JudgeAudio, layout: Layout
                  ) -> list[str | bytes]:
    """What a request says, in order: text pieces (str) and WAV clips (bytes)."""
    parts: list[str | bytes] = [prompt.instruction]
    if layout == "parts":
        for piece in prompt.parts():
            if isinstance(piece, AudioSlot):
                parts.append(audio.clip(piece))
            elif piece.strip():
                parts.append(piece)
        return parts
    if layout == "concatenated":
        return [*parts, concatenated_text(prompt), audio.concatenated]
    raise ValueError(f"unknown audio layout {layout!r}")


def concatenated_text(prompt: PairwisePrompt) -> str:
    """The evaluation prompt for one spliced clip: each "[slot]" marker (and a colon before it)
    becomes where that clip sits, and a last sentence describes the whole clip."""
    text = _SLOT_IN_TEXT.sub(
        lambda match: f" ({CONCATENATED_SLOTS[AudioSlot(match.group(1))]})", prompt.evaluation)
    return f"{text}\n\n{CONCATENATED_LAYOUT}"


def inline_bytes(parts: list[str | bytes]) -> int:
    """The bytes of audio a request carries inline: base64, 4 characters per 3 bytes."""
    return sum(4 * -(-len(part) // 3) for part in parts if isinstance(part, bytes))


def uses_files_api(config: GeminiPairwise, parts: list[str | bytes]) -> bool:
    """Whether the clips go up through the Files API rather than inline."""
    return inline_bytes(parts) > config.max_inline_bytes


def secret(env_name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(env_name)
    if not value:
        raise PermanentError(f"the environment variable {env_name} is not set on the worker")
    return value


# --- Gemini ---------------------------------------------------------------------------------------

def ask_gemini(config: GeminiPairwise, audio: JudgeAudio, environ: Mapping[str, str]
               ) -> JudgeReply:
    api_key = secret(config.api_key_env, environ)  # before any request: a missing one is final
    client = client_for(api_key, config.base_url, config.timeout_s)
    prompt = pairwise_prompt(config)
    parts = request_parts(prompt, audio, config.audio_layout)
    uploaded: list[types.File] = []
    try:
        with gemini_errors(timeout_s=config.timeout_s):
            if uses_files_api(config, parts):
                sent = [_upload(client, part, config.timeout_s, uploaded)
                        if isinstance(part, bytes) else types.Part.from_text(text=part)
                        for part in parts]
            else:
                sent = [types.Part.from_bytes(data=part, mime_type=WAV)
                        if isinstance(part, bytes) else types.Part.from_text(text=part)
                        for part in parts]
            response = client.models.generate_content(
                model=config.model, contents=[types.Content(role="user", parts=sent)])
    finally:
        for file in uploaded:
            _delete(client, file)
    text, finish_reason = gemini_text(response)
    return JudgeReply(text=text, model_version=response.model_version,
                      usage=usage_counts(response.usage_metadata), prompt_version=prompt.version,
                      finish_reason=finish_reason)


def _upload(client: genai.Client, wav: bytes, timeout_s: float,
            uploaded: list[types.File]) -> types.Part:
    """Put one clip up through the Files API; wait while Google still processes it."""
    try:
        file = client.files.upload(file=io.BytesIO(wav), config=types.UploadFileConfig(
            mime_type=WAV, display_name="s2s-arena-judge-audio.wav"))
    except KeyError as exc:  # no upload URL: base_url is not the Gemini API
        raise PermanentError(f"the Files API did not start an upload: {exc}") from exc
    except ValueError as exc:  # the upload was cut off before it was finalised
        raise TransientError(f"the Files API upload did not finish: {exc}") from exc
    uploaded.append(file)
    deadline = time.monotonic() + timeout_s
    while file.state == types.FileState.PROCESSING:
        if time.monotonic() > deadline:
            raise TransientError(f"the Files API still processes {file.name} after "
                                 f"{timeout_s:g} s")
        time.sleep(FILE_POLL_S)
        file = client.files.get(name=file.name)
    if file.state == types.FileState.FAILED:
        why = f": {file.error.message}" if file.error and file.error.message else ""
        raise PermanentError(f"the Files API could not process the judge's audio{why}")
    if not file.uri:
        raise PermanentError(f"the Files API gave no URI for {file.name}")
    return types.Part.from_uri(file_uri=file.uri, mime_type=file.mime_type or WAV)


def _delete(client: genai.Client, file: types.File) -> None:
    """Best effort: an uploaded file left behind expires on its own after 48 hours."""
    try:
        client.files.delete(name=file.name)
    except Exception as exc:  # noqa: BLE001 — never let cleanup hide the answer or its error
        log.warning("could not delete the judge's uploaded audio %s: %s", file.name,
                    describe_error(exc))


def gemini_text(response: types.GenerateContentResponse) -> tuple[str, str | None]:
    """The answer's text (thought parts left out) and finish reason, or a PermanentError that
    says why there is none. Shared by every text request to Gemini (judges, dataset LLM)."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        why = f" ({feedback.block_reason_message})" if feedback.block_reason_message else ""
        raise PermanentError(f"the prompt was blocked: {enum_name(feedback.block_reason)}"
                             f"{why}")
    if not response.candidates:
        raise PermanentError("Gemini returned no candidates (no answer and no block reason)")
    candidate = response.candidates[0]
    reason = enum_name(candidate.finish_reason) if candidate.finish_reason else None
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought).strip()
    if not text:
        raise PermanentError(f"Gemini returned no answer text (finish reason {reason or 'none'})"
                             + FINISH_HINTS.get(reason or "", ""))
    return text, reason


# --- OpenAI-compatible ------------------------------------------------------------------------------

def ask_openai(config: OpenAIPairwise, audio: JudgeAudio, environ: Mapping[str, str]
               ) -> JudgeReply:
    api_key = secret(config.api_key_env, environ) if config.api_key_env else NO_KEY
    client = openai_client(config.base_url, api_key, config.timeout_s)
    prompt = pairwise_prompt(config)
    content = [openai_part(part) for part in request_parts(prompt, audio, config.audio_layout)]
    with openai_errors(config.base_url, config.timeout_s):
        response = client.chat.completions.create(
            model=config.model, messages=[{"role": "user", "content": content}],
            modalities=["text"])
    text, finish_reason = openai_text(config.base_url, response)
    return JudgeReply(text=text, model_version=getattr(response, "model", None) or None,
                      usage=int_usage(getattr(response, "usage", None)),
                      prompt_version=prompt.version, finish_reason=finish_reason)


def openai_part(part: str | bytes) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    return {"type": "input_audio",
            "input_audio": {"data": base64.b64encode(part).decode("ascii"), "format": "wav"}}


@contextmanager
def openai_errors(base_url: str, timeout_s: float) -> Iterator[None]:
    """Our errors for the openai SDK's, classified as the `openai_chat_audio` adapter does."""
    try:
        yield
    except openai.APIStatusError as exc:  # RateLimitError, InternalServerError, ... included
        raise error_for_status(exc.status_code, error_message(exc), exc.response.headers,
                               exc.body) from exc
    except openai.APITimeoutError as exc:  # before APIConnectionError, its base class
        raise TransientError(f"{base_url} did not answer within {timeout_s:g} s") from exc
    except openai.APIConnectionError as exc:
        raise TransientError(f"could not reach {base_url}: "
                             f"{describe_error(exc.__cause__ or exc)}") from exc
    except openai.APIError as exc:  # a reply the SDK could not read
        raise api_error(exc) from exc
    except json.JSONDecodeError as exc:  # a 200 that says application/json but is not
        raise PermanentError(f"{base_url} answered with broken JSON: {exc}") from exc


def openai_text(base_url: str, response: Any) -> tuple[str, str | None]:
    """choices[0]'s text (a string, or a list of text parts) and finish reason, or a
    PermanentError saying why there is none. Shared by every chat completion read as text
    (judges, dataset LLM)."""
    if not hasattr(response, "choices"):  # the SDK hands over a body it cannot parse as is
        raise PermanentError(f"{base_url} did not answer with a chat completion: "
                             f"{shorten(str(response))!r}")
    choices = list(response.choices or [])
    if not choices:
        raise PermanentError(f"{base_url} answered with no choices")
    choice = choices[0]
    message = get_field(choice, "message")
    reason = get_field(choice, "finish_reason")
    text = _content_text(get_field(message, "content")).strip()
    if text:
        return text, reason
    refusal = get_field(message, "refusal")
    if refusal:
        raise PermanentError(f"the model refused: {shorten(str(refusal))!r}")
    if reason == "content_filter":
        raise PermanentError("the answer was blocked by the provider's content filter "
                             "(finish_reason content_filter)")
    raise PermanentError(f"the model answered with no text (finish_reason {reason or 'none'})")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif get_field(part, "type") in (None, "text", "output_text") and \
                    isinstance(get_field(part, "text"), str):
                pieces.append(get_field(part, "text"))
        return "".join(pieces)
    return ""


def int_usage(usage: Any) -> dict[str, int]:
    """Token counts as a flat dict of ints: {"prompt_tokens": 64, ...,
    "prompt_tokens_details.audio_tokens": 52}."""
    if usage is None:
        return {}
    if not isinstance(usage, dict):
        usage = usage.model_dump(mode="json", exclude_none=True)
    flat: dict[str, int] = {}
    for name, value in usage.items():
        if isinstance(value, int) and not isinstance(value, bool):
            flat[name] = value
        elif isinstance(value, dict):
            flat.update({f"{name}.{inner}": count for inner, count in value.items()
                         if isinstance(count, int) and not isinstance(count, bool)})
    return flat


ASKERS: dict[str, Callable[[Any, JudgeAudio, Mapping[str, str]], JudgeReply]] = {
    "gemini_pairwise": ask_gemini,
    "openai_pairwise": ask_openai,
}

"""Gemini through google-genai: the prompt's WAV goes in as inline audio; the spoken answer comes
back as inline audio parts (raw PCM from the speaking models), often beside a text transcript.

Gemini answers in text unless it is asked for audio (`voice` in the config) and the model can
speak, so a text-only reply is refused with a message that says how to fix the config.
"""

from __future__ import annotations

from typing import Any

import httpx
from google.genai import types

from app.inference.adapters.base import (
    Adapter,
    Generated,
    PermanentError,
    PromptAudio,
)
from app.inference.configs import GeminiAdapter
from app.inference.gemini_client import client_for, gemini_errors

PROBE_TIMEOUT_S = 2.0
DEFAULT_PCM_RATE = 24_000  # what Gemini's speaking models send when the MIME type omits it
# Raw 16-bit PCM, as Gemini labels it ("audio/L16;codec=pcm;rate=24000", "audio/pcm;rate=16000").
# Gemini sends it little-endian, whatever RFC 2586 says about L16.
PCM_TYPES = frozenset({"audio/l16", "audio/pcm", "audio/raw"})


class Gemini(Adapter):
    kind = "gemini"
    config: GeminiAdapter

    def generate(self, prompt: PromptAudio) -> Generated:
        config = self.config
        api_key = self.secret(config.api_key_env)  # before any request: a missing one is permanent
        client = client_for(api_key, config.base_url, config.timeout_s)
        with gemini_errors(timeout_s=config.timeout_s):
            response = client.models.generate_content(
                model=config.model,
                contents=[types.Content(role="user", parts=[
                    types.Part.from_bytes(data=prompt.wav, mime_type="audio/wav"),
                ])],
                config=self._generation_config(),
            )
        return self._answer(response)

    def probe(self) -> str | None:
        """Any HTTP answer (even 404) shows a custom endpoint is up; only silence warns.
        Google's own endpoint is not probed."""
        if self.config.base_url is None:
            return None
        try:
            httpx.get(self.config.base_url, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return f"{self.config.base_url} does not answer now: {str(exc) or type(exc).__name__}"
        return None

    def _generation_config(self) -> types.GenerateContentConfig:
        config = self.config
        speech: dict[str, Any] = {}
        if config.voice is not None:
            speech = {
                "response_modalities": ["AUDIO"],
                "speech_config": types.SpeechConfig(voice_config=types.VoiceConfig(
                    prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=config.voice),
                )),
            }
        return types.GenerateContentConfig(
            system_instruction=config.system_prompt,
            max_output_tokens=config.max_output_tokens,
            **speech,
        )

    def _answer(self, response: types.GenerateContentResponse) -> Generated:
        """The spoken answer in a reply, or a PermanentError that says why there is none."""
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            why = f" ({feedback.block_reason_message})" if feedback.block_reason_message else ""
            raise PermanentError(f"blocked: {enum_name(feedback.block_reason)}{why}")
        if not response.candidates:
            raise PermanentError("Gemini returned no candidates (no answer and no block reason)")
        candidate = response.candidates[0]
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        if not parts:
            reason = enum_name(candidate.finish_reason) if candidate.finish_reason else "none given"
            raise PermanentError(f"Gemini returned an empty answer (finish reason {reason})"
                                 + FINISH_HINTS.get(reason, ""))

        transcript = "".join(part.text for part in parts
                             if part.text is not None and not part.thought).strip()
        audio = [part.inline_data for part in parts
                 if part.inline_data is not None and part.inline_data.data
                 and (part.inline_data.mime_type or "").lower().startswith("audio/")]
        if not audio:
            raise PermanentError(self._text_only(transcript))
        return Generated(
            **reply_audio(audio),
            transcript=transcript or None,
            model_version=response.model_version,
            usage=usage_counts(response.usage_metadata),
        )

    def _text_only(self, transcript: str) -> str:
        config = self.config
        said = f'"{_start(transcript)}"' if transcript else "nothing"
        fix = (f"{config.model} may not speak with voice {config.voice!r}; choose a model that "
               "answers in audio" if config.voice else
               "set `voice` to one of the model's prebuilt voices to ask for audio, on a model "
               "that speaks")
        return f"the model answered in text only ({said}); the arena needs a spoken answer: {fix}"


FINISH_HINTS = {
    "MAX_TOKENS": ": the answer ran out of tokens; raise max_output_tokens or leave it unset",
    "SAFETY": ": the answer was withheld by Gemini's safety filters",
}


def reply_audio(blobs: list[types.Blob]) -> dict[str, Any]:
    """Raw PCM parts are joined into one answer; otherwise the first audio file is the answer."""
    first_type, rate = _pcm_type(blobs[0].mime_type or "")
    if first_type not in PCM_TYPES:
        return {"audio": blobs[0].data, "pcm_rate": None}
    chunks = []
    for blob in blobs:
        mime_type, blob_rate = _pcm_type(blob.mime_type or "")
        if mime_type not in PCM_TYPES:
            continue
        if blob_rate != rate:
            raise PermanentError(f"Gemini sent raw audio at two sample rates ({rate} and "
                                 f"{blob_rate} Hz) in one answer")
        chunks.append(blob.data)
    return {"audio": b"".join(chunks), "pcm_rate": rate}


def _pcm_type(mime_type: str) -> tuple[str, int]:
    """("audio/l16", 24000) from "audio/L16;codec=pcm;rate=24000"."""
    base, *params = (piece.strip() for piece in mime_type.split(";"))
    rate = DEFAULT_PCM_RATE
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "rate":
            try:
                rate = int(value.strip())
            except ValueError:
                raise PermanentError(f"Gemini sent audio of type {mime_type!r}, whose rate is "
                                     "not a number") from None
    return base.lower(), rate


def usage_counts(metadata: types.GenerateContentResponseUsageMetadata | None) -> dict[str, int]:
    """The token counts (prompt_token_count, candidates_token_count, total_token_count, ...)."""
    if metadata is None:
        return {}
    return {name: value for name, value in metadata.model_dump(exclude_none=True).items()
            if isinstance(value, int) and not isinstance(value, bool)}


def _start(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def enum_name(value: Any) -> str:
    """An SDK enum's wire name ("SAFETY"), or the raw value when the SDK does not know it."""
    return str(getattr(value, "value", value))

"""Scoring one response with the ParaS2S pipeline judge (§3.2, Appendix A.11.5): three requests,
the score as a verdict, or an error that says whether to retry.

`score(config, response_audio=..., prompt_transcript=..., prompt_styles=...)` asks, in order:
1. the ASR stage for the response's transcript c_o (the paper uses Whisper-v3);
2. the caption stage, an audio LLM, for its speaking style s_o (the paper uses AudioReasoner),
   with `CAPTION_PROMPT`;
3. the scorer, a text LLM that hears nothing (the paper uses GPT-4.1), for a 1–5 score against
   the guideline r, given the prompt's transcript c_i and style labels s_i, c_o and s_o.

The response is sent as the pairwise judge hears it (app.judges.audio): 16 kHz mono 16-bit WAV at
-23 LUFS, so no model is scored for the level it speaks at. A "gemini" stage is one
generateContent request with the clip inline. An "openai" ASR stage is one request to the
transcription API (POST /audio/transcriptions, as OpenAI's whisper-1 and gpt-4o-transcribe and
vLLM's Whisper-large-v3 serve it), which gives a verbatim transcript by construction rather than
by instruction; an "openai" caption stage is a chat completion with an `input_audio` part and
text-only output; an "openai" scorer is a text-only chat completion.

Like the pairwise judge (app.judges.clients, whose helpers it uses), a call never retries: each
stage is one request, and a TransientError (429, 408, 5xx, timeouts, with the wait the server
asked for) or PermanentError (other 4xx, a blocked or empty reply, a missing secret) goes to the
Celery task, its message naming the stage. A retry starts again from the transcript. Every
secret is looked up before the first request, so a missing one costs no calls. A score reply
that cannot be read is not an error: the result has `score` None and says why in `invalid`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import soundfile as sf
from google.genai import types

from app.audio.codec import read_canonical, wav_bytes
from app.inference.adapters.base import AdapterError, PermanentError
from app.inference.adapters.gemini import usage_counts
from app.inference.adapters.openai_chat_audio import NO_KEY, openai_client, shorten
from app.inference.gemini_client import client_for, gemini_errors
from app.judges.audio import JUDGE_RATE, prepare
from app.judges.clients import (
    WAV,
    gemini_text,
    int_usage,
    openai_part,
    openai_text,
    secret,
    openai_errors,
)
from app.judges.configs import PipelinePointwise, Stage
from app.judges.parsing import parse_score
from app.judges.prompts import (
    CAPTION_PROMPT,
    SCORE_JSON_PROMPT,
    SCORE_PROMPT,
    SCORING_GUIDELINE,
    TextPrompt,
    render_score_prompt,
)

STYLES = ("emotion", "sarcasm", "age", "gender")
NO_SPEECH = "(no speech)"  # the transcript of a response without words
MAX_INLINE_BYTES = 18_000_000  # base64 audio in one Gemini request (the request limit is 20 MB)

# Ours, for an audio LLM as the ASR stage: the paper uses Whisper-v3, which needs no prompt.
TRANSCRIPT_PROMPT = TextPrompt(
    version="arena-transcript-v1",
    template=(
        "Transcribe the speech in this audio verbatim, in the language spoken. Reply with the "
        "words only: no labels, timestamps, notes, or descriptions of the voice or of sounds. "
        f"If there is no speech, reply {NO_SPEECH}"
    ),
)


@dataclass(frozen=True)
class PointwiseResult:
    """What the pipeline made of one response: its transcript and style caption, the score (None
    when the scorer's reply could not be read, with `invalid` saying why), the raw reply of each
    stage in order, the token counts of all three summed, and the scoring prompt's version."""

    transcript: str
    caption: str
    score: int | None
    reason: str | None
    invalid: str | None
    replies: list[str]
    usage: dict[str, int] = field(default_factory=dict)
    prompt_version: str = SCORE_JSON_PROMPT.version


@dataclass(frozen=True)
class StageReply:
    """One stage's answer: its text and the token counts the server reported."""

    text: str
    usage: dict[str, int]


def score(config: PipelinePointwise, *, response_audio: bytes, prompt_transcript: str,
          prompt_styles: Mapping[str, str | None],
          environ: Mapping[str, str] | None = None) -> PointwiseResult:
    """Score one response (canonical FLAC bytes) of a prompt with this transcript and style
    labels (emotion, sarcasm, age, gender; a missing or empty one reads as "unknown").
    `environ` is where the API keys are looked up (os.environ when None)."""
    if unknown := set(prompt_styles) - set(STYLES):
        raise ValueError(f"no style labels {sorted(unknown)}; the labels are {list(STYLES)}")
    environ = os.environ if environ is None else environ
    stages = {"ASR": config.asr, "caption": config.caption, "scorer": config.scorer}
    keys = {}
    for name, stage in stages.items():  # every secret before any request
        with _stage(name, stage):
            keys[name] = stage_key(stage, environ)
    wav = response_wav(response_audio)
    timeout_s = config.timeout_s

    with _stage("ASR", config.asr):
        transcript = transcribe(config.asr, keys["ASR"], wav, timeout_s)
    with _stage("caption", config.caption):
        caption = ask_stage(config.caption, keys["caption"], [wav, CAPTION_PROMPT.render()],
                       timeout_s)
    prompt = score_prompt(config)
    request = render_score_prompt(
        prompt_transcript=prompt_transcript, response_transcript=transcript.text,
        response_caption=caption.text, prompt=prompt,
        **{name: prompt_styles.get(name) or None for name in STYLES})
    with _stage("scorer", config.scorer):
        scored = ask_stage(config.scorer, keys["scorer"], [request], timeout_s)

    verdict = parse_score(scored.text)
    usage: dict[str, int] = {}
    for reply in (transcript, caption, scored):
        for name, count in reply.usage.items():
            usage[name] = usage.get(name, 0) + count
    return PointwiseResult(
        transcript=transcript.text, caption=caption.text, score=verdict.score,
        reason=verdict.reason, invalid=verdict.invalid,
        replies=[transcript.text, caption.text, scored.text], usage=usage,
        prompt_version=prompt.version)


def score_prompt(config: PipelinePointwise) -> TextPrompt:
    """The A.11.5 scoring prompt in the config's answer format, with the config's guideline in
    place of the paper's when it has one; its version then carries the guideline's hash."""
    base = SCORE_JSON_PROMPT if config.answer_format == "json" else SCORE_PROMPT
    if config.guideline is None:
        return base
    if not base.template.startswith(SCORING_GUIDELINE):
        raise RuntimeError(f"{base.version} does not open with the guideline")
    digest = hashlib.sha256(config.guideline.encode()).hexdigest()[:12]
    return TextPrompt(
        version=f"{base.version}+guideline-{digest}",
        # "$" is string.Template's: the guideline is text, never placeholders.
        template=config.guideline.replace("$", "$$") + base.template[len(SCORING_GUIDELINE):],
    )


def response_wav(flac: bytes) -> bytes:
    """The response as the judge hears it: 16 kHz mono 16-bit WAV at -23 LUFS."""
    try:
        samples, rate = read_canonical(flac)
    except (sf.SoundFileError, ValueError) as exc:
        raise PermanentError(f"the response's audio does not decode: {exc}") from exc
    return wav_bytes(prepare(samples, rate), JUDGE_RATE)


@contextmanager
def _stage(name: str, stage: Stage) -> Iterator[None]:
    """Errors raised inside say which stage, and which model, they came from."""
    try:
        yield
    except AdapterError as exc:
        exc.message = f"the {name} stage ({stage.kind} {stage.model}): {exc.message}"
        exc.args = (exc.message,)
        raise


def stage_key(stage: Stage, environ: Mapping[str, str]) -> str:
    if stage.api_key_env is None:  # an "openai" stage on a server that wants no key
        return NO_KEY
    return secret(stage.api_key_env, environ)


def transcribe(stage: Stage, api_key: str, wav: bytes, timeout_s: float) -> StageReply:
    """An ASR stage's transcript of one clip (NO_SPEECH when it holds no words): the
    transcription API for an "openai" stage, `TRANSCRIPT_PROMPT` to an audio LLM otherwise.
    Also the WER filter of `s2s-arena dataset synthesize`."""
    if stage.kind == "openai":
        return transcription(stage, api_key, wav, timeout_s)
    return ask_stage(stage, api_key, [wav, TRANSCRIPT_PROMPT.render()], timeout_s)


def ask_stage(stage: Stage, api_key: str, parts: list[str | bytes], timeout_s: float
              ) -> StageReply:
    """One request of text pieces (str) and WAV clips (bytes), answered in text."""
    if stage.kind == "gemini":
        return _ask_gemini(stage, api_key, parts, timeout_s)
    return _ask_openai(stage, api_key, parts, timeout_s)


def _ask_gemini(stage: Stage, api_key: str, parts: list[str | bytes], timeout_s: float
                ) -> StageReply:
    inline = sum(4 * -(-len(part) // 3) for part in parts if isinstance(part, bytes))
    if inline > MAX_INLINE_BYTES:
        raise PermanentError(f"the response is too long to send inline ({inline} bytes of "
                             f"base64, at most {MAX_INLINE_BYTES})")
    client = client_for(api_key, stage.base_url, timeout_s)
    sent = [types.Part.from_bytes(data=part, mime_type=WAV) if isinstance(part, bytes)
            else types.Part.from_text(text=part) for part in parts]
    with gemini_errors(timeout_s=timeout_s):
        response = client.models.generate_content(
            model=stage.model, contents=[types.Content(role="user", parts=sent)])
    text, _ = gemini_text(response)
    return StageReply(text, usage_counts(response.usage_metadata))


def _ask_openai(stage: Stage, api_key: str, parts: list[str | bytes], timeout_s: float
                ) -> StageReply:
    """A chat completion; with audio in it, text-only output is asked for, as audio models
    (gpt-4o-audio-preview, Qwen2.5-Omni) otherwise may answer in speech. OpenAI's examples put
    the text before the audio."""
    base_url = stage.base_url or ""
    client = openai_client(base_url, api_key, timeout_s)
    texts = [part for part in parts if isinstance(part, str)]
    clips = [part for part in parts if isinstance(part, bytes)]
    request: dict = {"model": stage.model}
    if clips:
        content = [openai_part(part) for part in (*texts, *clips)]
        request.update(messages=[{"role": "user", "content": content}], modalities=["text"])
    else:
        request.update(messages=[{"role": "user", "content": "\n\n".join(texts)}])
    with openai_errors(base_url, timeout_s):
        response = client.chat.completions.create(**request)
    text, _ = openai_text(base_url, response)
    return StageReply(text, int_usage(getattr(response, "usage", None)))


def transcription(stage: Stage, api_key: str, wav: bytes, timeout_s: float) -> StageReply:
    """The transcription API's text; an empty one is a response without words, not a failure
    (Whisper answers "" for silence)."""
    base_url = stage.base_url or ""
    client = openai_client(base_url, api_key, timeout_s)
    with openai_errors(base_url, timeout_s):
        response = client.audio.transcriptions.create(
            model=stage.model, file=("response.wav", wav, WAV), response_format="json")
    text = getattr(response, "text", None)
    if not isinstance(text, str):
        raise PermanentError(f"{base_url} did not answer with a transcription: "
                             f"{shorten(str(response))!r}")
    return StageReply(text.strip() or NO_SPEECH, int_usage(getattr(response, "usage", None)))

"""Transcribing a synthesised clip, and its word error rate against the script (the WER filter of
ParaS2S §3.1: a clip whose transcript strays too far from its script is dropped).

The ASR is pluggable. The remote ones go through the pointwise judge's ASR stage: "openai" is an
OpenAI-compatible transcription endpoint (POST /audio/transcriptions: whisper-1,
gpt-4o-transcribe, Whisper-large-v3 on vLLM), "gemini" a Gemini model asked for a verbatim
transcript. "pocketsphinx" is offline (CMU PocketSphinx with its US English model, `pip install
pocketsphinx`): English only, and far less accurate than Whisper on synthetic or noisy speech,
so give it a lenient threshold. Error rates are jiwer's: word error rate after lower-casing and
removing punctuation, or character error rate for languages written without spaces (Chinese,
Japanese).
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import jiwer
import numpy as np
import soundfile as sf
import soxr

from app.datasets.construction.limits import service_name
from app.datasets.construction.llm import DEFAULT_KEYS, OPENAI_URL, Usage
from app.inference.adapters.base import PermanentError

DEFAULT_ASR_MODELS = {"openai": "whisper-1", "gemini": "gemini-2.5-flash"}
SPHINX_LANGUAGES = {"en", "en-us", "en-gb", "english"}
CHARACTER_LANGUAGES = {"zh", "cmn", "chinese", "ja", "japanese", "yue", "cantonese"}

_WORDS = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                        jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                        jiwer.ReduceToListOfListOfWords()])


@dataclass(frozen=True)
class ASRConfig:
    kind: Literal["openai", "gemini", "pocketsphinx"]
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 120.0

    def stage(self):
        from app.judges.configs import Stage

        return Stage(kind=self.kind, model=self.model or DEFAULT_ASR_MODELS[self.kind],
                     base_url=self.base_url or (OPENAI_URL if self.kind == "openai" else None),
                     api_key_env=self.api_key_env or DEFAULT_KEYS[self.kind])

    def describe(self) -> str:
        if self.kind == "pocketsphinx":
            return "pocketsphinx (offline, US English)"
        stage = self.stage()
        return service_name(stage.kind, stage.model, stage.base_url)


class ASR:
    def __init__(self, config: ASRConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        self.remote = config.kind != "pocketsphinx"
        self.stage = config.stage() if self.remote else None
        # the remote service whose limits a request waits for; None offline
        self.service = config.describe() if self.remote else None
        self.environ = environ
        self.api_key: str | None = None

    def check(self) -> None:
        """Look the key up, or load the offline model, before the first clip."""
        if not self.remote:
            _sphinx()
            return
        from app.judges.pointwise import stage_key

        self.api_key = stage_key(self.stage, self.environ)

    def transcribe(self, wav: bytes, language: str = "en") -> tuple[str, Usage]:
        """One request: the clip's transcript ("" when it holds no speech)."""
        from app.judges.pointwise import NO_SPEECH, transcribe

        if not self.remote:
            return _sphinx_transcript(wav, language), Usage()
        if self.api_key is None:
            self.check()
        reply = transcribe(self.stage, self.api_key, wav, self.config.timeout_s)
        text = "" if reply.text.strip() == NO_SPEECH else reply.text.strip()
        usage = reply.usage
        return text, Usage(usage.get("prompt_token_count", usage.get("input_tokens", 0)),
                           usage.get("candidates_token_count", usage.get("output_tokens", 0)), 1)


def error_rate(reference: str, hypothesis: str, language: str = "en") -> float:
    """WER of the transcript against the script (CER for Chinese and Japanese)."""
    if language.strip().lower() in CHARACTER_LANGUAGES:
        reference, hypothesis = _characters(reference), _characters(hypothesis)
        if not reference:
            return 0.0 if not hypothesis else 1.0
        return float(jiwer.cer(reference, hypothesis or " "))
    if not _WORDS(reference)[0]:
        return 0.0 if not _WORDS(hypothesis)[0] else 1.0
    if not _WORDS(hypothesis)[0]:
        return 1.0  # nothing heard: every word deleted
    return float(jiwer.wer(reference, hypothesis, reference_transform=_WORDS,
                           hypothesis_transform=_WORDS))


def _characters(text: str) -> str:
    """Letters and digits only, one character a token: CER ignores spacing and punctuation."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower()
                   if unicodedata.category(ch)[0] in "LN")


SPHINX_RATE = 16_000
_decoder = None


def _sphinx():
    """PocketSphinx's decoder with its bundled US English model, loaded once per process."""
    global _decoder
    if _decoder is None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise PermanentError("--asr pocketsphinx needs the pocketsphinx package: pip "
                                 "install pocketsphinx") from None
        _decoder = Decoder(samprate=SPHINX_RATE, loglevel="FATAL")
    return _decoder


def _sphinx_transcript(wav: bytes, language: str) -> str:
    if language.strip().lower() not in SPHINX_LANGUAGES:
        raise PermanentError(f"pocketsphinx transcribes English only, not {language!r}")
    samples, rate = sf.read(io.BytesIO(wav), dtype="float64", always_2d=True)
    samples = samples.mean(axis=1)
    if rate != SPHINX_RATE:
        samples = soxr.resample(samples, rate, SPHINX_RATE)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder = _sphinx()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.strip() if hypothesis is not None else ""

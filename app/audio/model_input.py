"""A prompt as a model hears it: mono 16-bit WAV at the model's input rate (the S2S-Arena paper,
Appendix A.4: each model gets the prompt in the rate and format it expects).

Every prompt goes to many models, and most models share a handful of input rates (16 and
24 kHz), so converting a prompt is done once per (prompt, rate, format) and kept in the audio
store under a key derived from the prompt's own key, as the served clips are
(app/audio/serving.py). Decoding the canonical FLAC and resampling it is most of the arena's own
CPU time in an inference task; reading the converted clip back is a file read. Stored audio
never changes under its key, so an entry never goes stale; changing the conversion means
bumping CONVERSION_VERSION.
"""

from __future__ import annotations

import hashlib
import io

import soundfile as sf
import soxr

from app.audio.codec import wav_bytes
from app.audio.storage import AudioStorage

CONVERSION_VERSION = 1
FORMAT = "wav"  # the one format adapters take today: 16-bit PCM, mono


def input_key(source_key: str, rate: int) -> str:
    """The storage key of the clip under `source_key` converted for a model that takes `rate`."""
    digest = hashlib.sha256(
        f"model-input:{CONVERSION_VERSION}:{FORMAT}:{rate}:{source_key}".encode()).hexdigest()
    return f"{digest[:2]}/{digest[:32]}.{FORMAT}"


def prompt_wav(storage: AudioStorage, source_key: str, rate: int) -> bytes:
    """The clip under `source_key` as WAV at `rate`: from the store, or converted and kept
    there for the next model. Two tasks that convert the same clip at once both write the
    same bytes; the store replaces a file whole, so a reader never sees half of one."""
    key = input_key(source_key, rate)
    try:
        return storage.get(key)
    except FileNotFoundError:
        pass
    wav = convert(storage.get(source_key), rate)
    storage.put_at(key, wav)
    return wav


def convert(data: bytes, rate: int) -> bytes:
    """A canonical clip (mono FLAC) -> 16-bit WAV at `rate`, resampled in int16 throughout."""
    samples, source_rate = sf.read(io.BytesIO(data), dtype="int16")
    if source_rate != rate:
        samples = soxr.resample(samples, source_rate, rate, quality="HQ")
    return wav_bytes(samples, rate)

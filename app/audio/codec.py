"""Validate uploaded audio and turn it into the arena's one canonical form.

Canonical audio is mono, 16-bit FLAC at `AudioSettings.sample_rate`, with no metadata. WAV,
FLAC, MP3 and OGG are accepted. Everything that fails to decode, is empty, too long, too big or
holds non-finite samples is refused with a message that says which file and why.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from app.config import AudioSettings
from app.errors import InvalidAudio, TooLarge

ACCEPTED_FORMATS = {"WAV", "WAVEX", "FLAC", "MP3", "OGG", "RF64"}
CANONICAL_FORMAT = "FLAC"
CANONICAL_SUBTYPE = "PCM_16"


@dataclass(frozen=True)
class CanonicalAudio:
    data: bytes  # FLAC file bytes
    sample_rate: int
    duration_s: float


def canonicalise(raw: bytes, settings: AudioSettings, *, name: str = "audio") -> CanonicalAudio:
    """Decode `raw`, check it, and return it re-encoded in canonical form."""
    samples, rate = decode(raw, settings, name=name)
    if rate != settings.sample_rate:
        samples = soxr.resample(samples, rate, settings.sample_rate, quality="HQ")
        rate = settings.sample_rate
    samples = np.clip(samples, -1.0, 1.0)
    return CanonicalAudio(encode(samples, rate), rate, len(samples) / rate)


def decode(raw: bytes, settings: AudioSettings, *, name: str = "audio") -> tuple[np.ndarray, int]:
    """Decode to mono float32 samples, refusing anything that is not sound audio."""
    if len(raw) == 0:
        raise InvalidAudio(f"{name}: the file is empty")
    if len(raw) > settings.max_bytes:
        raise TooLarge(
            f"{name}: the file is {len(raw) / 1e6:.1f} MB; the limit is "
            f"{settings.max_bytes / 1e6:.1f} MB"
        )
    _check_riff_complete(raw, name)
    try:  # one open: the header is checked before the samples are read
        with sf.SoundFile(io.BytesIO(raw)) as handle:
            if handle.format not in ACCEPTED_FORMATS:
                raise InvalidAudio(
                    f"{name}: {handle.format} audio is not accepted (WAV, FLAC, MP3, OGG)")
            if handle.frames > 0 and handle.frames / handle.samplerate > settings.max_seconds:
                raise InvalidAudio(
                    f"{name}: {handle.frames / handle.samplerate:.1f} s long; the limit is "
                    f"{settings.max_seconds:.0f} s"
                )
            try:
                samples = handle.read(dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise InvalidAudio(f"{name}: the audio could not be decoded ({exc})") from exc
            rate = handle.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidAudio(
            f"{name}: not a readable audio file (WAV, FLAC, MP3 or OGG expected)"
        ) from exc
    if samples.shape[0] == 0:
        raise InvalidAudio(f"{name}: the audio holds no samples")
    if not np.isfinite(samples).all():
        raise InvalidAudio(f"{name}: the audio holds NaN or infinite samples")
    if samples.shape[0] / rate > settings.max_seconds:
        raise InvalidAudio(f"{name}: longer than the limit of {settings.max_seconds:.0f} s")
    return samples.mean(axis=1, dtype=np.float32), int(rate)


def encode(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=CANONICAL_FORMAT, subtype=CANONICAL_SUBTYPE)
    return buffer.getvalue()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV of float samples in [-1, 1] (or int16 samples as they are), built
    directly: libsndfile through a Python file object costs ten times as much."""
    if samples.dtype != np.int16:
        samples = np.round(np.clip(samples, -1.0, 1.0) * 32767)
    return pcm16_wav(samples.astype("<i2").tobytes(), rate)


def pcm16_wav(pcm: bytes, rate: int) -> bytes:
    """A WAV header in front of raw little-endian 16-bit mono PCM."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1,
                         1, rate, 2 * rate, 2, 16, b"data", len(pcm))
    return header + pcm


def mono_at(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Float samples at any rate (mono, or channels in the last axis) -> float64 mono at
    `target` Hz, with NaN and infinities made silent or full scale."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    if rate != target and len(samples):
        samples = soxr.resample(samples, rate, target, quality="HQ")
    return samples.astype(np.float64)


def read_canonical(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, int(rate)


def _check_riff_complete(raw: bytes, name: str) -> None:
    """libsndfile quietly plays a truncated WAV; refuse one whose data chunk is cut short."""
    if len(raw) < 12 or raw[:4] not in (b"RIFF", b"RIFX") or raw[8:12] != b"WAVE":
        return
    endian = "<" if raw[:4] == b"RIFF" else ">"
    offset = 12
    while offset + 8 <= len(raw):
        chunk_id = raw[offset:offset + 4]
        (size,) = struct.unpack(endian + "I", raw[offset + 4:offset + 8])
        if chunk_id == b"data":
            if size != 0xFFFFFFFF and offset + 8 + size > len(raw):
                missing = offset + 8 + size - len(raw)
                raise InvalidAudio(
                    f"{name}: the WAV file is truncated ({missing} bytes of audio data missing)"
                )
            return
        offset += 8 + size + (size & 1)
    raise InvalidAudio(f"{name}: the WAV file has no audio data (no data chunk)")

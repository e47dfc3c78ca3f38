"""The audio a pairwise judge hears: the prompt and two responses, at one rate and one loudness.

A judge must not prefer a response because it is louder, or hear a sample rate or level that
gives a model away, so every clip is brought to the same form before it is sent:

1. decoded from the arena's canonical FLAC and resampled to 16 kHz mono (soxr, HQ): the rate
   audio LLMs take in (Gemini downsamples to 16 kHz; Qwen2.5-Omni's Whisper encoder hears 16 kHz);
2. normalised to -23 LUFS integrated loudness (ITU-R BS.1770, by app/audio/loudness.py, which
   also levels what people hear: a clip too short for BS.1770's gating is matched by RMS,
   digital silence is left as it is, and the gain is held to [-40, +30] dB), and clipped to
   [-1, 1];
3. written as 16-bit WAV.

The judge gets either the three clips as separate parts, or one clip in the order the S2S-Arena
paper splices them (§4.1, A.5): prompt, separator, first response, separator, second response.
A separator is 0.4 s of silence, a beep, 0.4 s of silence: one 150 ms 1 kHz beep before the first
response and two, 100 ms apart, before the second, so the boundaries are audible, cannot be
mistaken for speech or for a pause inside an answer, and tell which response comes next. The
beeps sit at -20 dBFS peak, about the level of the normalised speech, with 10 ms raised-cosine
edges so they do not click.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.audio import loudness
from app.audio.codec import mono_at, read_canonical, wav_bytes
from app.judges.prompts import AudioSlot

JUDGE_RATE = 16_000
TARGET_LUFS = -23.0
MAX_GAIN_DB = loudness.MAX_GAIN_DB  # the gain limits of app/audio/loudness.py
MIN_GAIN_DB = loudness.MIN_GAIN_DB

PAUSE_S = 0.4
BEEP_S = 0.15
BEEP_GAP_S = 0.1
BEEP_HZ = 1000.0
BEEP_PEAK = 0.1  # -20 dBFS
BEEP_FADE_S = 0.01

Layout = Literal["concatenated", "parts"]
_WAV_HEADER = 44  # app.audio.codec.pcm16_wav writes the canonical 44-byte header


@dataclass(frozen=True)
class JudgeAudio:
    """The clips of one battle as a judge hears them: 16-bit mono WAV at 16 kHz each, in the
    order INPUT, FIRST, SECOND, and the same three spliced into one WAV with separators."""

    parts: list[tuple[AudioSlot, bytes]]
    concatenated: bytes
    sample_rate: int = JUDGE_RATE

    def clip(self, slot: AudioSlot) -> bytes:
        """The WAV for one slot."""
        for part_slot, wav in self.parts:
            if part_slot is slot:
                return wav
        raise KeyError(slot)

    def total_bytes(self, layout: Layout) -> int:
        """How many bytes of WAV a request in this layout carries (before any base64)."""
        if layout == "concatenated":
            return len(self.concatenated)
        if layout == "parts":
            return sum(len(wav) for _, wav in self.parts)
        raise ValueError(f"unknown audio layout {layout!r}")

    def swapped(self) -> JudgeAudio:
        """The same battle with the two responses in the other order, for asking a judge both
        ways; bit for bit what `judge_audio(prompt, second, first)` gives, without redoing the
        resampling and loudness work."""
        return _assemble(_pcm(self.clip(AudioSlot.INPUT)), _pcm(self.clip(AudioSlot.SECOND)),
                         _pcm(self.clip(AudioSlot.FIRST)))


def judge_audio(prompt: bytes, first: bytes, second: bytes) -> JudgeAudio:
    """The judge's audio for a prompt and two responses, each given as canonical FLAC bytes."""
    return _assemble(*(_quantise(prepare(*read_canonical(clip))) for clip in (prompt, first,
                                                                               second)))


def prepare(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float samples at any rate (mono, or channels in the last axis) -> float64 mono at 16 kHz,
    loudness-normalised and within [-1, 1]."""
    samples = mono_at(samples, rate, JUDGE_RATE)
    return np.clip(samples * 10 ** (gain_db(samples, JUDGE_RATE) / 20), -1.0, 1.0)


def gain_db(samples: np.ndarray, rate: int) -> float:
    """The gain that brings `samples` to TARGET_LUFS (see app/audio/loudness.py)."""
    return loudness.gain_db(samples, rate, TARGET_LUFS)


@functools.cache
def separator(beeps: int) -> np.ndarray:
    """Pause, `beeps` beeps (BEEP_GAP_S apart), pause, as 16-bit samples at 16 kHz (read-only:
    it is shared)."""
    pause = np.zeros(_samples(PAUSE_S), dtype=np.float64)
    gap = np.zeros(_samples(BEEP_GAP_S), dtype=np.float64)
    pieces = [pause]
    for index in range(beeps):
        if index:
            pieces.append(gap)
        pieces.append(_beep())
    pieces.append(pause)
    pcm = _quantise(np.concatenate(pieces))
    pcm.flags.writeable = False
    return pcm


def _beep() -> np.ndarray:
    n = _samples(BEEP_S)
    tone = BEEP_PEAK * np.sin(2 * np.pi * BEEP_HZ * np.arange(n) / JUDGE_RATE)
    fade = _samples(BEEP_FADE_S)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    tone[:fade] *= ramp
    tone[n - fade:] *= ramp[::-1]
    return tone


def _samples(seconds: float) -> int:
    return round(seconds * JUDGE_RATE)


def _quantise(samples: np.ndarray) -> np.ndarray:
    return np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")


def _pcm(wav: bytes) -> np.ndarray:
    return np.frombuffer(wav, dtype="<i2", offset=_WAV_HEADER)


def _assemble(prompt: np.ndarray, first: np.ndarray, second: np.ndarray) -> JudgeAudio:
    clips = {AudioSlot.INPUT: prompt, AudioSlot.FIRST: first, AudioSlot.SECOND: second}
    spliced = np.concatenate([prompt, separator(1), first, separator(2), second])
    return JudgeAudio(parts=[(slot, wav_bytes(pcm, JUDGE_RATE)) for slot, pcm in clips.items()],
                      concatenated=wav_bytes(spliced, JUDGE_RATE))

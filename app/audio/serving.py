"""The audio a person hears: every clip in one form, so that nothing in it gives a model away.

A clip served to a rater (a battle's prompt and answers, a rating task's request and answer) is
made from its canonical FLAC the same way, whatever model made it:

1. decoded and resampled to 24 kHz mono (soxr, HQ) if the canonical rate differs;
2. trimmed of leading and trailing silence: everything before the first and after the last
   10 ms frame whose RMS level comes within 40 dB of the clip's loudest frame goes (relative
   to the clip, so a quiet and a loud copy of one answer are cut alike), keeping 100 ms of pad
   on each side. Digital silence (no frame above -80 dBFS) is kept as it is;
3. loudness-normalised to -20 LUFS integrated (ITU-R BS.1770, app/audio/loudness.py). Where the
   gain would push a sample past -1 dBFS, a limiter lowers the gain around that peak only (a
   gain curve that is the running minimum of the gain each sample allows, smoothed by a moving
   average of the same 5 ms width, so it never lets a sample past the ceiling), and the clip is
   measured again and brought back to the target, up to four times;
4. written as 16-bit mono FLAC with no metadata but the STREAMINFO block (libFLAC's vendor
   string and any tags are removed).

Clips are prepared once, when the battle or task that plays them is served, and stored under a
key derived from the canonical clip's key and PROCESSING_VERSION; serving a clip is then a file
read, so response times do not depend on which model made it. Changing the processing means
bumping PROCESSING_VERSION: the new clips are made as they are next served.
"""

from __future__ import annotations

import hashlib
import io
import struct

import numpy as np
import soundfile as sf
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from app.audio import loudness
from app.audio.codec import mono_at, read_canonical
from app.audio.storage import AudioStorage

PROCESSING_VERSION = 1
SERVED_RATE = 24_000
SERVED_TYPE = "audio/flac"
TARGET_LUFS = -20.0
CEILING = 10 ** (-1.0 / 20)  # -1 dBFS sample peak
FRAME_S = 0.01
TRIM_BELOW_PEAK_DB = 40.0
TRIM_FLOOR_DBFS = -80.0
PAD_S = 0.1
LIMITER_WINDOW_S = 0.005
LEVELLING_ROUNDS = 4
LEVEL_TOLERANCE_LU = 0.05


def served_key(source_key: str) -> str:
    """The storage key of the served form of the canonical clip stored under `source_key`."""
    digest = hashlib.sha256(f"served:{PROCESSING_VERSION}:{source_key}".encode()).hexdigest()
    return f"{digest[:2]}/{digest[:32]}.flac"


def prepare(storage: AudioStorage, source_key: str) -> str:
    """Make the served form of a canonical clip unless it is there already; its key."""
    key = served_key(source_key)
    if not storage.exists(key):
        storage.put_at(key, render(*read_canonical(storage.get(source_key))))
    return key


def read(storage: AudioStorage, source_key: str) -> bytes:
    """The served clip's bytes (made now if it was not prepared)."""
    return storage.get(prepare(storage, source_key))


def render(samples: np.ndarray, rate: int) -> bytes:
    """Samples at any rate (mono, or channels in the last axis) -> the served FLAC bytes."""
    return flac_bytes(level(trim(mono_at(samples, rate, SERVED_RATE), SERVED_RATE), SERVED_RATE))


def trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """The clip without its leading and trailing silence (see the module's docstring)."""
    frame = max(1, round(FRAME_S * rate))
    count = len(samples) // frame
    if count == 0:
        return samples
    frames = samples[:count * frame].reshape(count, frame)
    with np.errstate(divide="ignore"):
        levels = 10 * np.log10(np.mean(np.square(frames), axis=1))
    threshold = max(float(levels.max()) - TRIM_BELOW_PEAK_DB, TRIM_FLOOR_DBFS)
    loud = np.flatnonzero(levels >= threshold)
    if len(loud) == 0:
        return samples
    pad = round(PAD_S * rate)
    start = max(0, loud[0] * frame - pad)
    end = min(len(samples), (loud[-1] + 1) * frame + pad)
    if loud[-1] == count - 1:  # the loud part runs into the unframed tail: keep the tail
        end = len(samples)
    return samples[start:end]


def level(samples: np.ndarray, rate: int) -> np.ndarray:
    """The clip at TARGET_LUFS with no sample past CEILING (see the module's docstring)."""
    gain_db = loudness.gain_db(samples, rate, TARGET_LUFS)
    out = samples * 10 ** (gain_db / 20)
    if len(out) == 0 or np.abs(out).max() <= CEILING:  # a plain gain: no need to measure again
        return out
    for _ in range(LEVELLING_ROUNDS):
        out = limit(samples * 10 ** (gain_db / 20))
        correction = loudness.gain_db(out, rate, TARGET_LUFS)
        if abs(correction) <= LEVEL_TOLERANCE_LU or gain_db >= loudness.MAX_GAIN_DB:
            break
        gain_db = min(gain_db + correction, loudness.MAX_GAIN_DB)
    return out


def limit(samples: np.ndarray) -> np.ndarray:
    """`samples` with the gain lowered around every peak past CEILING, and only there."""
    peaks = np.abs(samples)
    if len(samples) == 0 or peaks.max() <= CEILING:
        return samples
    allowed = np.minimum(1.0, CEILING / np.maximum(peaks, 1e-12))
    width = 2 * round(LIMITER_WINDOW_S * SERVED_RATE / 2) + 1  # odd, so both filters centre
    # Each smoothed value averages minima over windows that all contain the sample itself, so
    # it is never above what that sample allows.
    gain = uniform_filter1d(minimum_filter1d(allowed, width, mode="nearest"), width,
                            mode="nearest")
    return np.clip(samples * np.minimum(gain, allowed), -CEILING, CEILING)


def flac_bytes(samples: np.ndarray) -> bytes:
    """16-bit mono FLAC at SERVED_RATE with STREAMINFO as its only metadata block."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), SERVED_RATE, format="FLAC", subtype="PCM_16")
    return strip_flac_metadata(buffer.getvalue())


def strip_flac_metadata(data: bytes) -> bytes:
    """A FLAC file with every metadata block but STREAMINFO removed (vendor strings, tags,
    pictures, padding, seek tables)."""
    if data[:4] != b"fLaC":
        raise ValueError("not a FLAC file")
    offset, streaminfo = 4, None
    while True:
        header = data[offset]
        size = int.from_bytes(data[offset + 1:offset + 4], "big")
        if header & 0x7F == 0:
            streaminfo = data[offset + 4:offset + 4 + size]
        offset += 4 + size
        if header & 0x80:
            break
    if streaminfo is None:
        raise ValueError("a FLAC file without STREAMINFO")
    return b"fLaC" + struct.pack(">B", 0x80) + len(streaminfo).to_bytes(3, "big") + streaminfo \
        + data[offset:]

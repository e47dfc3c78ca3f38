"""Background noise mixed into a clip at a set signal-to-noise ratio.

Noise comes from a folder with one subfolder per category (`airport/`, `street/`, `cafe/`, ...,
the S2S-Arena seeds used eight) holding audio files, or, by default, from four synthetic kinds
made on the fly: white, pink and brown noise, and mains hum. Which category and file a clip gets,
and where in the file its noise starts, is drawn from the clip's id, so a resumed run mixes the
same noise as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from app.errors import InvalidInput

SYNTHETIC = ("white", "pink", "brown", "hum")
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg"}


@dataclass(frozen=True)
class Noise:
    category: str
    source: str  # the file, relative to the noise folder, or "synthetic"
    samples: np.ndarray


def synthetic(kind: str, count: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """`count` samples of a synthetic noise, unit RMS."""
    if kind == "hum":  # 50 Hz mains hum with its odd harmonics, and a little hiss
        t = np.arange(count) / rate
        noise = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k
                    for k in (1, 3, 5, 7)) + 0.05 * rng.standard_normal(count)
    elif kind == "white":
        noise = rng.standard_normal(count)
    elif kind in ("pink", "brown"):  # white noise shaped to 1/f or 1/f^2 power
        spectrum = np.fft.rfft(rng.standard_normal(count))
        frequency = np.fft.rfftfreq(count, 1 / rate)
        frequency[0] = frequency[1] if count > 1 else 1.0
        spectrum /= np.sqrt(frequency) if kind == "pink" else frequency
        noise = np.fft.irfft(spectrum, n=count)
    else:
        raise InvalidInput(f"no synthetic noise {kind!r}; there are {', '.join(SYNTHETIC)}")
    noise = np.asarray(noise, dtype=np.float64)
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


class NoiseBank:
    """Noise by category: from a folder, or the synthetic kinds when `folder` is None."""

    def __init__(self, folder: Path | None, *, category: str | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        if self.folder is None:
            self.files: dict[str, list[Path]] = {kind: [] for kind in SYNTHETIC}
        else:
            if not self.folder.is_dir():
                raise InvalidInput(f"{self.folder}: no such noise folder")
            self.files = {
                sub.name: sorted(f for f in sub.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
                for sub in sorted(self.folder.iterdir()) if sub.is_dir()}
            self.files = {name: files for name, files in self.files.items() if files}
            if not self.files:
                raise InvalidInput(f"{self.folder} holds no category folders with audio files "
                                   "(for example airport/clip1.wav)")
        if category is not None and category not in self.files:
            raise InvalidInput(f"no noise category {category!r}; there are "
                               f"{', '.join(sorted(self.files))}")
        self.category = category

    def categories(self) -> list[str]:
        return [self.category] if self.category else sorted(self.files)

    def pick(self, key: str, count: int, rate: int) -> Noise:
        """`count` samples of noise at `rate` for the clip called `key`."""
        rng = random.Random(hashlib.sha256(key.encode()).hexdigest())
        category = self.category or rng.choice(sorted(self.files))
        files = self.files[category]
        if not files:
            generator = np.random.default_rng(rng.getrandbits(64))
            return Noise(category, "synthetic", synthetic(category, count, rate, generator))
        path = rng.choice(files)
        try:
            samples, file_rate = sf.read(path, dtype="float64", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise InvalidInput(f"noise file {path} does not decode: {exc}") from exc
        samples = samples.mean(axis=1)
        if file_rate != rate:
            samples = soxr.resample(samples, file_rate, rate)
        if len(samples) == 0 or not np.any(samples):
            raise InvalidInput(f"noise file {path} is silent")
        start = rng.randrange(len(samples))
        looped = np.resize(np.roll(samples, -start), count)  # repeats a short file
        return Noise(category, str(path.relative_to(self.folder)), looped)


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Speech plus noise scaled so that 10·log10(P_speech / P_noise) = snr_db; the sum is scaled
    down as a whole if it would clip, which keeps the ratio."""
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)[: len(speech)]
    speech_power = float(np.mean(speech ** 2))
    noise_power = float(np.mean(noise ** 2))
    if speech_power == 0 or noise_power == 0:
        return speech
    mixed = speech + noise * np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    peak = float(np.max(np.abs(mixed)))
    return mixed * (0.99 / peak) if peak > 0.99 else mixed

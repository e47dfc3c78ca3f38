"""The served form of a clip (app/audio/serving.py): one rate, trimmed, at one loudness, under
the ceiling, with no metadata."""

from __future__ import annotations

import io

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from app.audio import serving
from app.audio.storage import LocalStorage
from tests.conftest import DATA

RATE = serving.SERVED_RATE


def speech() -> tuple[np.ndarray, int]:
    return sf.read(DATA / "cmu-arctic" / "slt_arctic_a0009.wav", dtype="float64")


def decode(data: bytes) -> np.ndarray:
    samples, rate = sf.read(io.BytesIO(data), dtype="float64")
    assert rate == RATE and samples.ndim == 1
    return samples


def lufs(samples: np.ndarray) -> float:
    return pyloudnorm.Meter(RATE).integrated_loudness(samples)


@pytest.mark.parametrize("gain", [0.05, 0.3, 1.0, 8.0])  # -26 dB to clipped
def test_any_level_comes_out_at_the_target_under_the_ceiling(gain):
    samples, rate = speech()
    out = decode(serving.render(np.clip(samples * gain, -1, 1), rate))
    assert abs(lufs(out) - serving.TARGET_LUFS) < 0.2
    assert np.abs(out).max() <= serving.CEILING + 1 / 32768


def test_a_clip_with_loud_peaks_is_limited_not_lowered():
    """Speech with a few full-scale clicks: the limiter holds the clicks under the ceiling and
    the speech still reaches the target."""
    samples, rate = speech()
    samples = samples * 0.1
    samples[::rate // 2] = 1.0
    out = decode(serving.render(samples, rate))
    assert np.abs(out).max() <= serving.CEILING + 1 / 32768
    assert abs(lufs(out) - serving.TARGET_LUFS) < 0.2


def test_silence_around_the_sound_is_trimmed_to_a_short_pad():
    samples, rate = speech()
    padded = np.concatenate([np.zeros(2 * rate), samples, np.zeros(3 * rate)])
    plain, trimmed = decode(serving.render(samples, rate)), decode(serving.render(padded, rate))
    assert abs(len(trimmed) - len(plain)) <= 2 * serving.PAD_S * RATE
    assert len(trimmed) / RATE < len(samples) / rate + 2 * serving.PAD_S + 0.02


def test_silent_and_very_short_clips_are_served_as_they_are():
    silent = decode(serving.render(np.zeros(RATE), RATE))
    assert len(silent) == RATE and not silent.any()
    beep = 0.2 * np.sin(2 * np.pi * 440 * np.arange(RATE // 10) / RATE)  # 100 ms: no gating
    out = decode(serving.render(beep, RATE))
    level = 20 * np.log10(np.sqrt(np.mean(out ** 2)))
    assert abs(level - serving.TARGET_LUFS) < 0.5  # measured by RMS instead


def test_other_rates_and_stereo_become_mono_at_the_served_rate():
    samples, rate = speech()
    stereo = np.stack([samples, samples], axis=1)
    out = decode(serving.render(stereo, rate))
    assert abs(len(out) / RATE - len(samples) / rate) < 0.25


def test_only_streaminfo_is_left():
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", RATE, 1, format="FLAC", subtype="PCM_16") as handle:
        handle.title = "Secret Model"
        handle.write(np.zeros(RATE))
    tagged = buffer.getvalue()
    assert b"Secret Model" in tagged
    stripped = serving.strip_flac_metadata(tagged)
    assert b"Secret Model" not in stripped and b"libFLAC" not in stripped
    assert stripped[4] == 0x80  # STREAMINFO, the last block
    assert np.array_equal(sf.read(io.BytesIO(stripped))[0], sf.read(io.BytesIO(tagged))[0])
    with pytest.raises(ValueError):
        serving.strip_flac_metadata(b"RIFF....")


def test_a_clip_is_made_once_and_then_read(tmp_path):
    from app.audio.codec import encode

    storage = LocalStorage(tmp_path)
    samples, rate = speech()
    source = storage.put(encode(samples, rate))
    key = serving.prepare(storage, source)
    assert key == serving.served_key(source) != source
    made = (tmp_path / key).stat().st_mtime_ns
    assert serving.prepare(storage, source) == key
    assert (tmp_path / key).stat().st_mtime_ns == made  # not made again
    assert serving.read(storage, source) == storage.get(key)

"""Audio intake: real clips in every accepted format, and every kind of bad file refused."""

import io

import numpy as np
import pytest
import soundfile as sf

from app.audio.codec import canonicalise, read_canonical
from app.config import AudioSettings
from app.errors import InvalidAudio, TooLarge
from tests.conftest import DATA, tone

SETTINGS = AudioSettings()


@pytest.mark.parametrize("path", [
    DATA / "cmu-arctic" / "slt_arctic_a0009.wav",  # real speech, 16 kHz WAV
    DATA / "talk-arena" / "jeopardy.mp3",  # a real spoken prompt, MP3
])
def test_real_speech_becomes_canonical_flac(path):
    clip = canonicalise(path.read_bytes(), SETTINGS, name=path.name)
    samples, rate = read_canonical(clip.data)
    info = sf.info(io.BytesIO(clip.data))
    assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_16", 1)
    assert rate == SETTINGS.sample_rate == 24_000
    original = sf.info(str(path))
    assert clip.duration_s == pytest.approx(original.duration, abs=0.06)
    assert np.abs(samples).max() > 0.05  # still speech, not silence


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("WAV", "FLOAT")])
def test_other_formats_are_accepted(fmt, subtype):
    clip = canonicalise(tone(1.0, 44_100, fmt=fmt, subtype=subtype), SETTINGS)
    assert clip.duration_s == pytest.approx(1.0, abs=0.01)


def test_stereo_is_mixed_to_mono():
    buffer = io.BytesIO()
    stereo = np.stack([np.full(8000, 0.2), np.full(8000, -0.2)], axis=1)
    sf.write(buffer, stereo, 16_000, format="WAV")
    samples, _ = read_canonical(canonicalise(buffer.getvalue(), SETTINGS).data)
    assert samples.ndim == 1 and np.abs(samples).max() < 0.01


def _refused(data: bytes, error=InvalidAudio, settings=SETTINGS) -> str:
    with pytest.raises(error) as caught:
        canonicalise(data, settings, name="clip.wav")
    return caught.value.message


def test_empty_file():
    assert "empty" in _refused(b"")


def test_not_audio():
    assert "not a readable audio file" in _refused(b"%PDF-1.4 this is a document, not sound" * 20)


def test_truncated_wav():
    whole = (DATA / "cmu-arctic" / "slt_arctic_a0009.wav").read_bytes()
    assert "truncated" in _refused(whole[: len(whole) // 2])


def test_wav_with_no_samples():
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(0), 16_000, format="WAV")
    message = _refused(buffer.getvalue())
    assert "no samples" in message or "no audio data" in message or "not a readable" in message


def test_nan_samples():
    buffer = io.BytesIO()
    samples = np.zeros(1600, dtype=np.float32)
    samples[100] = np.nan
    sf.write(buffer, samples, 16_000, format="WAV", subtype="FLOAT")
    assert "NaN" in _refused(buffer.getvalue())


def test_too_long():
    assert "limit" in _refused(tone(3.0), settings=AudioSettings(max_seconds=2))


def test_too_big():
    message = _refused(tone(2.0), TooLarge, settings=AudioSettings(max_bytes=10_000))
    assert "MB" in message

"""The judge's audio: 16 kHz mono WAV at one loudness, the spliced clip with its separators, and
clips that are too short or too quiet to measure. Loudness is checked with pyloudnorm, the
BS.1770 meter, on the WAV bytes a judge would receive."""

from __future__ import annotations

import io
import math

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from app.audio.codec import canonicalise, encode
from app.config import AudioSettings
from app.judges.audio import (
    JUDGE_RATE,
    MAX_GAIN_DB,
    TARGET_LUFS,
    gain_db,
    judge_audio,
    prepare,
    separator,
)
from app.judges.prompts import AudioSlot
from tests.conftest import DATA

RATE = AudioSettings().sample_rate  # canonical storage rate (24 kHz)


def canonical(name: str, scale: float = 1.0) -> bytes:
    """A test recording in the arena's canonical form, its level scaled by `scale`."""
    flac = canonicalise((DATA / name).read_bytes(), AudioSettings()).data
    samples, rate = sf.read(io.BytesIO(flac), dtype="float32")
    return encode(samples * scale, rate)


def tone(seconds: float, amplitude: float, hz: float = 440.0, rate: int = RATE) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return encode(amplitude * np.sin(2 * np.pi * hz * t), rate)


def read(wav: bytes) -> tuple[np.ndarray, int]:
    info = sf.info(io.BytesIO(wav))
    assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
    samples, rate = sf.read(io.BytesIO(wav), dtype="float64")
    return samples, rate


def lufs(wav: bytes) -> float:
    samples, rate = read(wav)
    return pyloudnorm.Meter(rate).integrated_loudness(samples)


@pytest.fixture(scope="module")
def speech() -> tuple[bytes, bytes, bytes]:
    """Real speech at very different levels: quiet, as recorded, and loud MP3."""
    return (canonical("cmu-arctic/slt_arctic_a0009.wav", 0.05),
            canonical("cmu-arctic/awb_arctic_a0007.wav"),
            canonical("talk-arena/jeopardy.mp3", 1.5))


def test_every_clip_is_16_khz_mono_16_bit(speech):
    audio = judge_audio(*speech)
    assert [slot for slot, _ in audio.parts] == [AudioSlot.INPUT, AudioSlot.FIRST,
                                                 AudioSlot.SECOND]
    for wav in [wav for _, wav in audio.parts] + [audio.concatenated]:
        _, rate = read(wav)
        assert rate == JUDGE_RATE == audio.sample_rate


def test_each_part_is_at_the_target_loudness(speech):
    before = [lufs_of_flac(clip) for clip in speech]
    assert max(before) - min(before) > 20  # the inputs really differ
    audio = judge_audio(*speech)
    for _, wav in audio.parts:
        assert abs(lufs(wav) - TARGET_LUFS) < 0.5
        samples, _ = read(wav)
        assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0


def lufs_of_flac(flac: bytes) -> float:
    samples, rate = sf.read(io.BytesIO(flac), dtype="float64")
    return pyloudnorm.Meter(rate).integrated_loudness(samples)


def test_a_quiet_tone_is_raised_to_the_target():
    audio = judge_audio(tone(1.0, 0.01), tone(2.0, 0.9, 220.0), tone(0.6, 0.2, 1000.0))
    for _, wav in audio.parts:
        assert abs(lufs(wav) - TARGET_LUFS) < 0.5


def test_duration_survives_resampling(speech):
    audio = judge_audio(*speech)
    for (_, wav), flac in zip(audio.parts, speech):
        info = sf.info(io.BytesIO(flac))
        assert abs(read(wav)[0].size - info.frames * JUDGE_RATE / info.samplerate) <= 1


def test_the_concatenated_clip_is_the_parts_with_separators_between(speech):
    audio = judge_audio(*speech)
    pcm = {slot: np.frombuffer(wav, dtype="<i2", offset=44) for slot, wav in audio.parts}
    spliced = np.frombuffer(audio.concatenated, dtype="<i2", offset=44)
    one, two = separator(1), separator(2)
    assert spliced.size == sum(part.size for part in pcm.values()) + one.size + two.size
    expected = np.concatenate([pcm[AudioSlot.INPUT], one, pcm[AudioSlot.FIRST], two,
                               pcm[AudioSlot.SECOND]])
    np.testing.assert_array_equal(spliced, expected)
    assert read(audio.concatenated)[0].size == spliced.size  # the header counts every sample


def test_separators_are_silence_then_one_or_two_beeps_then_silence():
    assert separator(1).size == round(0.95 * JUDGE_RATE)
    assert separator(2).size == round(1.2 * JUDGE_RATE)
    for beeps in (1, 2):
        samples = separator(beeps).astype(np.float64) / 32767
        pause = round(0.4 * JUDGE_RATE)
        assert not samples[:pause].any() and not samples[-pause:].any()
        assert bursts(samples) == beeps
        assert np.abs(samples).max() == pytest.approx(0.1, abs=1e-3)  # audible: -20 dBFS peak
        spectrum = np.abs(np.fft.rfft(samples))
        assert np.fft.rfftfreq(samples.size, 1 / JUDGE_RATE)[spectrum.argmax()] == \
            pytest.approx(1000, abs=2)


def bursts(samples: np.ndarray) -> int:
    """How many separate stretches of sound (10 ms frames above -40 dBFS) a clip holds."""
    frame = JUDGE_RATE // 100
    loud = [np.sqrt(np.mean(samples[i:i + frame] ** 2)) > 0.01
            for i in range(0, samples.size - frame + 1, frame)]
    return sum(1 for before, now in zip([False] + loud, loud) if now and not before)


def test_total_bytes(speech):
    audio = judge_audio(*speech)
    assert audio.total_bytes("concatenated") == len(audio.concatenated)
    assert audio.total_bytes("parts") == sum(len(wav) for _, wav in audio.parts)
    with pytest.raises(ValueError):
        audio.total_bytes("mono")  # type: ignore[arg-type]


def test_silence_stays_silent():
    silent = encode(np.zeros(RATE), RATE)
    audio = judge_audio(silent, silent, encode(np.zeros(RATE // 10), RATE))
    for _, wav in audio.parts:
        samples, _ = read(wav)
        assert samples.size and not samples.any()


def test_clips_too_short_or_too_quiet_to_measure_are_matched_by_rms():
    short = tone(0.2, 0.3, 1000.0)  # under one 400 ms gating block
    near_silent = tone(1.0, 10 ** (-75 / 20), 1000.0)  # -78 dBFS RMS: under the -70 LUFS gate
    dither = encode(np.random.default_rng(0).normal(0, 2e-5, RATE), RATE)  # -94 dBFS
    audio = judge_audio(short, near_silent, dither)

    samples, _ = read(audio.clip(AudioSlot.INPUT))
    rms_db = 20 * math.log10(np.sqrt(np.mean(samples ** 2)))
    assert rms_db == pytest.approx(TARGET_LUFS, abs=0.5)  # for 1 kHz, LUFS = dBFS RMS

    samples, _ = read(audio.clip(AudioSlot.FIRST))
    rms_db = 20 * math.log10(np.sqrt(np.mean(samples ** 2)))
    assert rms_db == pytest.approx(-75 - 3.01 + MAX_GAIN_DB, abs=0.5)  # the gain is held back

    samples, _ = read(audio.clip(AudioSlot.SECOND))
    assert np.abs(samples).max() < 1e-3  # silence by our measure: no gain


def test_the_gain_is_always_finite():
    for samples in (np.zeros(0), np.zeros(10), np.full(100, 1e-12), np.ones(JUDGE_RATE),
                    np.full(JUDGE_RATE, np.float32(1e-30))):
        assert math.isfinite(gain_db(samples, JUDGE_RATE))


def test_a_loud_clip_is_brought_down_and_clipped_within_full_scale():
    square = encode(np.sign(np.sin(2 * np.pi * 50 * np.arange(RATE) / RATE)), RATE)
    samples = prepare(*sf.read(io.BytesIO(square), dtype="float32"))
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert abs(pyloudnorm.Meter(JUDGE_RATE).integrated_loudness(samples) - TARGET_LUFS) < 0.5


def test_prepare_takes_any_rate_and_stereo():
    t = np.arange(48_000) / 48_000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 300 * t)] * 2, axis=1)
    samples = prepare(stereo, 48_000)
    assert samples.ndim == 1 and samples.size == JUDGE_RATE
    assert abs(pyloudnorm.Meter(JUDGE_RATE).integrated_loudness(samples) - TARGET_LUFS) < 0.5


def test_the_same_clips_give_the_same_bytes(speech):
    first, second = judge_audio(*speech), judge_audio(*speech)
    assert first.parts == second.parts and first.concatenated == second.concatenated


def test_swapped_is_the_battle_in_the_other_order(speech):
    prompt, first, second = speech
    audio = judge_audio(prompt, first, second)
    other_way = judge_audio(prompt, second, first)
    assert audio.swapped() == other_way
    assert audio.swapped().swapped() == audio
